"""What the default enforcement policy would have done to a scenario: its decisions replayed over
the scenario's own requests, in event time.

While a scenario streams, `RequestLog.observe` keeps each request's time and who sent it (account,
API key hash, org, IP prefix: the identities decisions name). Afterwards `score_enforcement` merges
the run's detections (the campaign resolver's campaign detections among them, read back as the
campaign records they restate) with those requests in event-time order: each piece of evidence
goes through the enforcer's `EnforcementBook` (the policy, its ladder and approval gate) and each
decision into a bouncer's `DecisionCache`, which answers every request as a bouncer would
(throttling admits its share, an expired decision stops applying). A decision that waits for a
person is approved `approval_delay_s` after it was made: the time an operator takes to read the
page.

Scorecard keys: per campaign `served_after_detection_fraction` — its requests from its detection
(the first alert pointing at it) on that the policy would still have served, over all its requests
(None when never detected) — and per scenario `organic_requests_refused`, the organic requests any
decision would have refused (429, 401 or 403), and `organic_requests_protected`, the organic
requests answered under `protect_reasoning` (their reasoning withheld).

Reasoning: per campaign, the reasoning tokens (the events' `reasoning_output_tokens`) its requests
were served before its first decision, and from it on those served and those withheld
(`protect_reasoning`) or never answered (refused).

>>> log = RequestLog()
>>> for t in range(0, 1_800_000, 10_000):
...     for account in ("c1", "c2", "c3", "c4", "c5"):
...         log.observe(account, "campaign", t, {"account_id": account})
...     log.observe("o1", "organic", t, {"account_id": "o1"})
>>> updates = [{"detector": "campaign", "entity_kind": "campaign", "entity": "cmp-000000000001", "score": 40.0,
...     "detected_at_ms": t, "evidence": {"summary": "campaign cmp-000000000001 (growing): 5 accounts",
...     "accounts": ["c1", "c2", "c3", "c4", "c5"], "features": [{"name": "members", "value": 5},
...     {"name": "shaped_members", "value": 5}]}} for t in range(60_000, 1_800_000, 60_000)]
>>> outcome = replay(log, updates, {"c1": "x", "c2": "x", "c3": "x", "c4": "x", "c5": "x"}, {"x": 60_000})
>>> outcome.organic_requests_refused, outcome.requests_after_detection["x"], outcome.served_after_detection["x"]
(0, 870, 480)

With each campaign request carrying 100 reasoning tokens, its harvest of reasoning stops once the
shipped ladder protects it: served in full only on the observe rung (its first decision at one
minute, escalated at the first update more than five minutes later: 36 ten-second steps of five
accounts), while the organic account keeps everything:

>>> log = RequestLog()
>>> for t in range(0, 3_600_000, 10_000):
...     for account in ("c1", "c2", "c3", "c4", "c5"):
...         log.observe(account, "campaign", t, {"account_id": account, "reasoning_output_tokens": 100})
...     log.observe("o1", "organic", t, {"account_id": "o1", "reasoning_output_tokens": 100})
>>> updates = [{**updates[0], "detected_at_ms": t} for t in range(60_000, 3_600_000, 60_000)]
>>> outcome = replay(log, updates, {f"c{i}": "x" for i in range(1, 6)}, {"x": 60_000})
>>> reasoning = outcome.reasoning["x"]
>>> reasoning.before_decision, reasoning.served_after_decision, reasoning.withheld_after_decision > 0
(3000, 18000, True)
>>> outcome.organic_requests_protected
0
"""

from __future__ import annotations

import heapq
import re
from array import array
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from extractguard.enforcement.book import EnforcementBook
from extractguard.enforcement.policy import Policy, shipped_policy
from extractguard.evaluation.scoring import ScenarioScore
from extractguard_gateway.enforcement.cache import DecisionCache, Identity
from extractguard_gateway.enforcement.protection import Protection

APPROVAL_DELAY_S = 900.0
_STATUS = re.compile(r"^campaign \S+ \((\w+)\)")


class RequestLog:
    """Each request's event time, identities (interned) and reasoning tokens (a few bytes a request)."""

    def __init__(self) -> None:
        self.times = array("q")
        self.who = array("l")  # index into `identities`
        self.reasoning = array("l")  # the response's reasoning tokens (0: none or unknown)
        self.identities: list[Identity] = []
        self._index: dict[tuple[str | None, ...], int] = {}
        self.label: dict[str, str] = {}

    def observe(self, account_id: str, label: str, event_time_ms: int, event: dict[str, Any]) -> None:
        key = (account_id, event.get("api_key_hash"), event.get("org_id"), event.get("client_ip_prefix"))
        index = self._index.get(key)
        if index is None:
            index = self._index[key] = len(self.identities)
            self.identities.append(Identity(account_id, key[1], key[2], key[3]))
        self.times.append(event_time_ms)
        self.who.append(index)
        self.reasoning.append(event.get("reasoning_output_tokens") or 0)
        self.label.setdefault(account_id, label)


def campaign_record(detection: dict[str, Any]) -> dict[str, Any]:
    """The campaign record a campaign detection restates (what the enforcer reads on `campaigns`)."""
    evidence = detection["evidence"]
    features = {f["name"]: f["value"] for f in evidence["features"]}
    status = _STATUS.match(evidence["summary"])
    members = list(evidence["accounts"])
    fingerprints = [
        {"fingerprint": name.removeprefix("weight:"), "weight": value, "sharers": len(members)}
        for name, value in features.items() if name.startswith("weight:")
    ]  # fmt: skip
    return {
        "campaign_id": detection["entity"], "status": status[1] if status else "active", "score": detection["score"],
        "members": members, "members_total": int(features.get("members", len(members))),
        "shaped_members": int(features.get("shaped_members", 0)), "fingerprints": fingerprints,
    }  # fmt: skip


@dataclass
class ReasoningTake:
    """A campaign's reasoning tokens, around its first decision."""

    before_decision: int = 0  # served before any decision on it
    served_after_decision: int = 0  # served in full from its first decision on
    withheld_after_decision: int = 0  # protected (protect_reasoning) from then on
    refused_after_decision: int = 0  # of requests refused from then on (never answered)
    requests_protected: int = 0


@dataclass
class ReplayOutcome:
    requests_after_detection: Counter[str] = field(default_factory=Counter)
    served_after_detection: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)  # by campaign, or "organic"
    organic_requests_refused: int = 0
    organic_accounts_refused: set[str] = field(default_factory=set)
    decisions: Counter[str] = field(default_factory=Counter)  # "<action>/<status>"
    first_decision_ms: dict[str, int] = field(default_factory=dict)
    reasoning: defaultdict[str, ReasoningTake] = field(default_factory=lambda: defaultdict(ReasoningTake))
    organic_requests_protected: int = 0
    organic_accounts_protected: set[str] = field(default_factory=set)


def replay(
    log: RequestLog,
    detections: list[dict[str, Any]],
    campaign_of: dict[str, str],
    detected_at: dict[str, int | None],
    policy: Policy | None = None,
    approval_delay_s: float = APPROVAL_DELAY_S,
    campaigns: list[dict[str, Any]] | None = None,
) -> ReplayOutcome:
    """Apply `policy` (the shipped default) to the evidence, and the decisions to the requests.
    `campaigns`: the resolver's records in the order it made them (what the enforcer reads, with
    every fingerprint and its sharers), when the run kept them; else the campaign detections."""
    book = EnforcementBook(policy or shipped_policy())
    cache = DecisionCache()
    outcome = ReplayOutcome()
    if campaigns is not None:
        records = [{**r, "entity_kind": "campaign record", "detected_at_ms": r["updated_ms"]} for r in campaigns]
        detections = [d for d in detections if d["entity_kind"] != "campaign"] + records
    evidence = sorted(detections, key=lambda d: int(d["detected_at_ms"]))
    approvals: list[tuple[int, str]] = []
    next_evidence = 0

    def take(records: list[dict[str, Any]], now_ms: int) -> None:
        for record in records:
            cache.apply(record)
            outcome.decisions[f"{record['action']}/{record['status']}"] += 1
            campaign = campaign_of.get(record["entity"]) if record["scope"] == "account" else None
            if campaign is not None and record["status"] in ("active", "pending_approval"):
                outcome.first_decision_ms.setdefault(campaign, now_ms)
            if record["status"] == "pending_approval":
                heapq.heappush(approvals, (now_ms + int(approval_delay_s * 1000), record["group_id"]))

    def advance(now_ms: int) -> None:
        nonlocal next_evidence
        while approvals and approvals[0][0] <= now_ms:
            at, group = heapq.heappop(approvals)
            take(book.approve(group, by="eval: approved after the assumed delay", now_ms=at), at)
        while next_evidence < len(evidence) and int(evidence[next_evidence]["detected_at_ms"]) <= now_ms:
            detection = evidence[next_evidence]
            at = int(detection["detected_at_ms"])
            if detection["entity_kind"] == "campaign record":
                take(book.campaign(detection, at), at)
            elif detection["entity_kind"] == "campaign":
                take(book.campaign(campaign_record(detection), at), at)
            else:
                take(book.detection(detection, at), at)
            next_evidence += 1

    for t, who, reasoning in zip(log.times, log.who, log.reasoning, strict=True):
        advance(t)
        identity = log.identities[who]
        verdict = cache.verdict(identity, t)
        protected = verdict.admitted and Protection.from_annotations(verdict.annotations) is not None
        account = identity.account or ""
        campaign = campaign_of.get(account)
        if campaign is not None:
            start = detected_at.get(campaign)
            if start is not None and t >= start:
                outcome.requests_after_detection[campaign] += 1
                outcome.served_after_detection[campaign] += verdict.admitted
            harvest = outcome.reasoning[campaign]
            decided = outcome.first_decision_ms.get(campaign)
            if decided is None or t < decided:
                harvest.before_decision += reasoning
            elif not verdict.admitted:
                harvest.refused_after_decision += reasoning
            elif protected:
                harvest.withheld_after_decision += reasoning
            else:
                harvest.served_after_decision += reasoning
            harvest.requests_protected += protected
        elif protected and log.label.get(account) == "organic":
            outcome.organic_requests_protected += 1
            outcome.organic_accounts_protected.add(account)
        if not verdict.admitted:
            outcome.refused[campaign or "organic"] += 1
            if campaign is None and log.label.get(account) == "organic":
                outcome.organic_requests_refused += 1
                outcome.organic_accounts_refused.add(account)
    return outcome


def score_enforcement(
    score: ScenarioScore,
    log: RequestLog,
    detections: list[dict[str, Any]],
    campaign_of: dict[str, str],
    campaigns: list[dict[str, Any]] | None = None,
) -> None:
    """Add the policy's figures to a scenario's score (see the module doc for their meaning)."""
    detected_at = {c.name: c.detected_at_ms for c in score.campaigns}
    outcome = replay(log, detections, campaign_of, detected_at, campaigns=campaigns)
    for c in score.campaigns:
        c.served_after_detection_fraction = (
            None if c.detected_at_ms is None or not c.requests
            else round(outcome.served_after_detection[c.name] / c.requests, 4)
        )  # fmt: skip
    score.organic_requests_refused = outcome.organic_requests_refused
    score.organic_requests_protected = outcome.organic_requests_protected
    score.extra["enforcement"] = {
        "policy": shipped_policy().revision,
        "approval_delay_s": APPROVAL_DELAY_S,
        "decisions": dict(sorted(outcome.decisions.items())),
        "campaigns": {
            name: {
                "requests_after_detection": outcome.requests_after_detection[name],
                "served_after_detection": outcome.served_after_detection[name],
                "refused": outcome.refused[name],
                "first_decision_ms": outcome.first_decision_ms.get(name),
                "reasoning_tokens": asdict(outcome.reasoning[name]),
            }
            for name in detected_at
        },
        "organic_accounts_refused": len(outcome.organic_accounts_refused),
        "organic_accounts_protected": len(outcome.organic_accounts_protected),
    }


def enforcement_lines(scenarios: list[ScenarioScore]) -> list[str]:
    """The scorecard's section on the default policy (Markdown lines)."""
    lines = [
        "",
        "### With the default enforcement policy applied",
        "",
        f"Decisions of the shipped policy replayed over each scenario's requests (a decision waiting for a person "
        f"approved {APPROVAL_DELAY_S:.0f} s after it was made). Served after detection: the campaign's requests from "
        "its first alert on that the policy would still have served, over all its requests.",
        "",
        "| scenario | campaign | requests after detection | served after detection | served after detection "
        "fraction | organic requests refused |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for s in scenarios:
        figures = s.extra.get("enforcement", {}).get("campaigns", {})
        for c in s.campaigns:
            f = figures.get(c.name, {})
            fraction = "—" if c.served_after_detection_fraction is None else f"{c.served_after_detection_fraction:.2%}"
            after, served = f.get("requests_after_detection", 0), f.get("served_after_detection", 0)
            lines.append(
                f"| {s.name} | {c.name} | {after:,} | {served:,} | {fraction} | {s.organic_requests_refused} |"
            )
    lines += [
        "",
        "Reasoning tokens each campaign was served before its first decision, and from it on: served in full, "
        "withheld by `protect_reasoning`, or never answered (refused); organic requests protected.",
        "",
        "| scenario | campaign | reasoning before first decision | served after | withheld after | refused after "
        "| campaign requests protected | organic requests protected |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scenarios:
        figures = s.extra.get("enforcement", {}).get("campaigns", {})
        if not s.campaigns:  # organic only (control): what protection would cost it
            lines.append(f"| {s.name} | — | — | — | — | — | — | {s.organic_requests_protected} |")
        for c in s.campaigns:
            r = figures.get(c.name, {}).get("reasoning_tokens", {})
            lines.append(
                f"| {s.name} | {c.name} | {r.get('before_decision', 0):,} | {r.get('served_after_decision', 0):,} "
                f"| {r.get('withheld_after_decision', 0):,} | {r.get('refused_after_decision', 0):,} "
                f"| {r.get('requests_protected', 0):,} | {s.organic_requests_protected} |"
            )
    return lines
