"""The enforcement policy: a declarative, versioned YAML file that maps evidence to a ladder of
actions. `policies/default.yaml` in this package is the shipped default.

A rule matches campaigns (score, size, shaped share, status) or detections (detector, entity kind,
severity, score, the false alarms per day expected at its threshold), optionally by account age
and spend where they are known, and names what it targets: a campaign's member accounts and its
shared IP prefixes, or a detection's entity and accounts. Its ladder is the actions a target goes
through while the evidence keeps coming: each rung has a TTL, and a target still matched
`escalate_after` into a rung moves up one; a target matched again within `remember` of its last
decision's expiry starts one rung above it. The approval gate holds every rung but `observe` for a
person when the evidence names at least `min_accounts` accounts, or the account is a long-standing
paying one; meanwhile the decision is recorded and enforces nothing.

The file is validated at load; an error names the file, the line and the field:

>>> import tempfile, pathlib
>>> bad = pathlib.Path(tempfile.mkdtemp()) / "policy.yaml"
>>> _ = bad.write_text("version: 1\\nrevision: r1\\nrules:\\n  - name: x\\n    when: {source: campaign}\\n"
...                    "    ladder:\\n      - {action: throttle, ttl: 1h, params: {rate_factor: 3}}\\n")
>>> try:
...     load_policy(bad)
... except PolicyError as error:
...     print(str(error).split(": ", 1)[0].rsplit("/", 1)[1], error.field)
policy.yaml:7 rules[0].ladder[0]
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from extractguard.enforcement.actions import REGISTRY, Action, action
from extractguard.enforcement.actions.base import Params
from extractguard.yaml_documents import DocumentError, load_document

SHIPPED_POLICY = Path(__file__).parent / "policies" / "default.yaml"
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(value: Any) -> Any:
    """'90', '90s', '30m', '2h', '1d' or a number, as seconds.

    >>> seconds("2h"), seconds(90)
    (7200.0, 90)
    """
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if not match:
            raise ValueError(f"{value!r} is not a duration like 90s, 30m, 2h or 1d")
        return float(match[1]) * _UNIT_S[match[2]]
    return value


Duration = Annotated[float, BeforeValidator(seconds), Field(ge=0)]


class PolicyError(DocumentError):
    """A policy file that does not load: says which file, line and field, and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rung(_Strict):
    action: str
    ttl: Duration = Field(gt=0, description="How long the decision is enforced before it expires.")
    escalate_after: Duration | None = Field(
        default=None, description="Still matched this long into the rung: the next rung (none: stay)."
    )
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_action(self) -> Rung:
        try:
            action(self.action).params(self.params)
        except ValidationError as error:
            first = error.errors()[0]
            raise ValueError(f"params of {self.action}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        except KeyError as error:
            raise ValueError(str(error)) from None
        return self

    def implementation(self) -> Action:
        return action(self.action)

    def validated_params(self) -> Params:
        return action(self.action).params(self.params)


class When(_Strict):
    """What evidence the rule matches; every condition given must hold (unknown facts pass)."""

    source: Literal["campaign", "detection"]
    # campaigns
    statuses: frozenset[str] = frozenset({"new", "growing", "active"})
    min_members: int = Field(default=1, ge=1)
    min_shaped_share: float = Field(default=0.0, ge=0, le=1)
    # detections
    detectors: frozenset[str] | None = None
    entity_kinds: frozenset[str] | None = None
    min_severity: Literal["info", "warning", "critical"] = "warning"
    max_expected_false_alarms_per_day: float | None = Field(
        default=None, ge=0, description="Only detectors that know their false-alarm rate, at most this per day."
    )
    # both
    min_score: float = 0.0
    max_account_age_days: float | None = Field(default=None, ge=0, description="Only accounts younger (when known).")

    def matches_campaign(self, record: dict[str, Any]) -> bool:
        if self.source != "campaign" or record["status"] not in self.statuses:
            return False
        total = int(record.get("members_total", len(record["members"])))
        shaped = int(record.get("shaped_members", 0)) / total if total else 0.0
        return total >= self.min_members and shaped >= self.min_shaped_share and record["score"] >= self.min_score

    def matches_detection(self, detection: dict[str, Any]) -> bool:
        if self.source != "detection":
            return False
        if self.detectors is not None and detection["detector"] not in self.detectors:
            return False
        if self.entity_kinds is not None and detection["entity_kind"] not in self.entity_kinds:
            return False
        if SEVERITY_RANK[detection["severity"]] < SEVERITY_RANK[self.min_severity]:
            return False
        if self.max_expected_false_alarms_per_day is not None:
            rate = detection["evidence"].get("expected_false_alarms_per_day")
            if rate is None or rate > self.max_expected_false_alarms_per_day:
                return False  # a detector still learning its false-alarm rate does not act alone
        return float(detection["score"]) >= self.min_score


Target = Literal["account", "ip_prefix", "entity"]


class Rule(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    when: When
    targets: frozenset[Target] = frozenset({"account"})
    ladder: list[Rung] = Field(min_length=1)
    remember: Duration = Field(default=7 * 86_400, description="A repeat within this after expiry goes a rung up.")
    max_targets: int = Field(default=100_000, ge=1, description="At most this many decisions per piece of evidence.")
    min_prefix_share: float = Field(
        default=0.5, gt=0, le=1, description="ip_prefix targets: the prefix's sharers over the campaign's members."
    )
    min_prefix_sharers: int = Field(default=5, ge=1, description="ip_prefix targets: at least this many sharers.")

    @field_validator("ladder")
    @classmethod
    def _rising(cls, ladder: list[Rung]) -> list[Rung]:
        strengths = [rung.implementation().strength for rung in ladder]
        if strengths != sorted(strengths):
            raise ValueError(f"a ladder only goes up: {[r.action for r in ladder]}")
        return ladder


class LongStanding(_Strict):
    """An account at least this old that pays at least this much a month (both must be known)."""

    min_account_age_days: float = Field(default=365, ge=0)
    min_monthly_spend_usd: float = Field(default=100, ge=0)


class Approval(_Strict):
    min_accounts: int = Field(default=500, ge=1, description="Evidence naming this many accounts waits for a person.")
    long_standing: LongStanding | None = LongStanding()
    pending_ttl: Duration = Field(default=86_400, gt=0, description="A decision not approved by then lapses.")


class Policy(_Strict):
    version: Literal[1]
    revision: str = Field(min_length=1, max_length=64, description="The policy's own version, on every decision.")
    name: str = Field(default="default", min_length=1, max_length=64)
    approval: Approval = Approval()
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Policy:
        names = [r.name for r in self.rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"rule names repeated: {repeated}")
        return self


def load_policy(path: Path | None = None) -> Policy:
    return load_document(path or SHIPPED_POLICY, Policy, PolicyError, "a mapping with `version`, `revision`, `rules`")


@cache
def shipped_policy() -> Policy:
    return load_policy(SHIPPED_POLICY)


__all__ = ["REGISTRY", "Policy", "PolicyError", "Rule", "Rung", "load_policy", "shipped_policy"]
