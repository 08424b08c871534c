"""The enforcement topics and their payloads, as the enforcer, the CLI, the lander and the bouncers
share them: `enforcement.decisions` (enforcement_decision v1, keyed by target, compacted),
`enforcement.approvals` (enforcement_approval v1) and `enforcement.reports` (bouncer_report v1).

The gateway distribution names the same topics for its bouncers (it cannot import this package);
`test_enforcement` checks the two agree.
"""

from __future__ import annotations

from typing import Any

from extractguard.contracts.schemas import Payload, validate
from extractguard_gateway.enforcement.decisions import target_key

ENFORCEMENT_DECISIONS = "enforcement.decisions"
ENFORCEMENT_APPROVALS = "enforcement.approvals"
ENFORCEMENT_REPORTS = "enforcement.reports"


def decision_key(decision: dict[str, Any]) -> bytes:
    """The record key of a decision: its target, so compaction keeps the newest per target."""
    return target_key(decision["scope"], decision["entity"]).encode()


def valid_decision(decision: dict[str, Any]) -> Payload:
    """A decision checked against its schema before it is produced (raises InvalidMessage)."""
    return validate("enforcement_decision", decision)
