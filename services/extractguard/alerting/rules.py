"""Alert rules: which detections page someone, and which alert they update.

A rule matches detections by detector, entity kind and minimum severity; its dedup key is stable
per rule and entity, so a burst on one proxy prefix that lasts an hour is one alert that updates,
not sixty pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True, slots=True)
class AlertRule:
    name: str
    summary: str
    detectors: frozenset[str]
    entity_kinds: frozenset[str] | None = None
    min_severity: str = "warning"

    def covers(self, detection: dict[str, Any]) -> bool:
        """Whether the detection is of this rule's kind, whatever its severity."""
        return detection["detector"] in self.detectors and (
            self.entity_kinds is None or detection["entity_kind"] in self.entity_kinds
        )

    def matches(self, detection: dict[str, Any]) -> bool:
        return self.covers(detection) and SEVERITY_RANK[detection["severity"]] >= SEVERITY_RANK[self.min_severity]

    def dedup_key(self, detection: dict[str, Any]) -> str:
        return f"{self.name}:{detection['entity_kind']}:{detection['entity']}"


DEFAULT_RULES: tuple[AlertRule, ...] = (
    AlertRule(
        "shared_infrastructure_burst",
        "Many accounts behind one piece of infrastructure suddenly busy",
        frozenset({"burst"}),
        frozenset({"ip_prefix", "asn", "tls_ja4", "sdk"}),
    ),
    AlertRule(
        "template_burst",
        "One prompt template suddenly in heavy use",
        frozenset({"burst"}),
        frozenset({"template"}),
    ),
    AlertRule(
        "account_burst",
        "An account (or its org or API key) far above its normal volume",
        frozenset({"burst"}),
        frozenset({"account", "org", "api_key"}),
    ),
    AlertRule(
        "model_burst",
        "A model suddenly in heavy extraction-shaped use",
        frozenset({"burst"}),
        frozenset({"model"}),
    ),
    AlertRule(
        "lockstep_model_pivot",
        "A cohort of accounts moved to a newly launched model in lockstep",
        frozenset({"launch"}),
        frozenset({"model"}),
    ),
    AlertRule("traffic_mix_drift", "Extraction-shaped share of traffic shifted", frozenset({"mix_drift"})),
    AlertRule(
        "extraction_campaign",
        "Accounts linked into one actor harvesting the model",
        frozenset({"campaign"}),
        frozenset({"campaign"}),
    ),
)
#: Rules an operator can switch on (EXTRACTGUARD_ALERTER_EXTRA_RULES); off by default because a
#: campaign pages once for all its accounts, where this pages once per account.
OPTIONAL_RULES: tuple[AlertRule, ...] = (
    AlertRule(
        "extraction_behaviour",
        "An account uses the model the way harvesting does",
        frozenset({"extraction"}),
        frozenset({"account"}),
    ),
)
