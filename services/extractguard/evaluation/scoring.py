"""Score what the pipeline alerted on against the ground truth of a scenario.

Definitions (the scorecard repeats them):

- An alert version (every delivery of an alert, as produced to `alerts`) *points at* campaign C
  when C's members are more than half of the labelled accounts it names.
- `detected`: some alert points at C. `seconds_to_detect`: event time from C's first request to
  the end of the window of the first alert pointing at it (`last_seen_ms`: the earliest event
  time at which that alert could have been raised).
- `requests_before_detection_fraction`: C's requests sent before that moment, over all of them.
- The red-team view, what the attacker reads: `requests_before_detection` and
  `output_tokens_before_detection` (the harvest C took before its first alert; all of it when
  never detected); `accounts_burned` (C's members named by any alert, which an operator would
  suspend) and `accounts_burned_fraction`; `requests_by_unburned_accounts` and
  `output_tokens_by_unburned_accounts` (what C's never-named members took over the whole run).
- `detected_within_1h` / `detected_within_1d`: `seconds_to_detect` at most 3,600 / 86,400.
- `member_recall`: C's members named by alerts pointing at C, over C's members.
  `member_recall_within_1d`: the same, counting only alert versions raised within a day of C's
  first request (`last_seen_ms` at most 86,400 s after it): what an operator held after a day.
- `cluster_precision`: of all accounts named by alerts pointing at C, the share that are members.
- `flagged_fraction` of an organic class: its accounts named by any alert, over its accounts.
- `organic_false_positive_rate`: organic accounts named by any alert, over organic accounts.
- `organic_alerts_per_day` (also `organic_pages_per_day`): alerts (distinct dedup keys) that point
  at no campaign, per day of scenario event time. `organic_flagged_fraction` is
  `organic_false_positive_rate` by the issue's name; `lookalike_classes_paged` lists the organic
  classes other than `regular` with any account named by any alert.
- With the default enforcement policy applied (`enforcement_replay`): `served_after_detection_fraction`,
  C's requests from its detection on that the policy would still have served, over all of C's
  requests; `organic_requests_refused`, the organic requests it would have refused;
  `organic_requests_protected`, those it would have answered without their reasoning.
- Resolved campaigns (the resolver's latest record of each campaign id, merged ones left out)
  point at C by the same majority rule. `resolved_as`: how many point at C (1 = found as one
  actor); `resolved_member_recall` and `resolved_cluster_precision` are computed over their
  members; `organic_in_campaigns` counts, per organic class, the accounts that are members of any
  resolved campaign.

>>> truth = Truth()
>>> for i in range(4): truth.observe(f"c{i}", "campaign", "campaign", "hydra", 1_000 + i)
>>> for i in range(6): truth.observe(f"o{i}", "organic", "regular", None, 500)
>>> alert = {"dedup_key": "k", "accounts": ["c0", "c1", "c2", "o0"], "last_seen_ms": 61_000}
>>> score = score_scenario("s", 86_400, truth, [alert])
>>> c = score.campaigns[0]
>>> (c.detected, c.seconds_to_detect, c.member_recall, c.cluster_precision)
(True, 60.0, 0.75, 0.75)
>>> (score.organic_false_positive_rate, score.organic_alerts_per_day)
(0.1667, 0.0)
>>> (c.requests_before_detection, c.accounts_burned, c.requests_by_unburned_accounts, c.detected_within_1h)
(4, 3, 1, True)
"""

from __future__ import annotations

import bisect
from array import array
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

#: Organic classes that are the ordinary population, not look-alikes: people, and apps' backends.
ORDINARY = frozenset({"regular", "app_backend"})


@dataclass(slots=True)
class Truth:
    """Ground truth gathered while a scenario streams: who is who, and when campaigns sent."""

    label: dict[str, str] = field(default_factory=dict)
    klass: dict[str, str] = field(default_factory=dict)
    campaign: dict[str, str] = field(default_factory=dict)
    campaign_times: dict[str, array[int]] = field(default_factory=dict)
    #: Output tokens of each campaign request, in the order of `campaign_times`.
    campaign_tokens: dict[str, array[int]] = field(default_factory=dict)
    requests_by_class: Counter[str] = field(default_factory=Counter)
    #: Per campaign member: requests and output tokens (for what its unburned accounts took).
    member_requests: Counter[str] = field(default_factory=Counter)
    member_tokens: Counter[str] = field(default_factory=Counter)
    #: What each campaign is judged as by the done-when criteria (its kind; default its name).
    kinds: dict[str, str] = field(default_factory=dict)

    def observe(
        self,
        account_id: str,
        label: str,
        klass: str,
        campaign: str | None,
        event_time_ms: int,
        output_tokens: int = 0,
    ) -> None:
        if account_id not in self.label:
            self.label[account_id] = label
            self.klass[account_id] = klass
            if campaign is not None:
                self.campaign[account_id] = campaign
        self.requests_by_class[klass] += 1
        if campaign is not None:
            times = self.campaign_times.get(campaign)
            if times is None:
                times = self.campaign_times[campaign] = array("q")
                self.campaign_tokens[campaign] = array("q")
            times.append(event_time_ms)  # streams are in event-time order, so this stays sorted
            self.campaign_tokens[campaign].append(output_tokens)
            self.member_requests[account_id] += 1
            self.member_tokens[account_id] += output_tokens

    def members(self, campaign: str) -> set[str]:
        return {a for a, c in self.campaign.items() if c == campaign}


@dataclass(slots=True)
class CampaignScore:
    name: str
    accounts: int
    requests: int
    detected: bool
    seconds_to_detect: float | None
    requests_before_detection_fraction: float | None
    member_recall: float
    cluster_precision: float | None
    alerts: int
    first_request_ms: int
    detected_at_ms: int | None
    #: Each rule's share of the detection: alerts pointing at the campaign, by rule, and which came first.
    alerts_by_rule: dict[str, int] = field(default_factory=dict)
    first_rule: str | None = None
    resolved_as: int = 0
    resolved_member_recall: float = 0.0
    resolved_cluster_precision: float | None = None
    kind: str = ""
    output_tokens: int = 0
    # The red-team view (see the definitions above).
    requests_before_detection: int = 0
    output_tokens_before_detection: int = 0
    accounts_burned: int = 0
    accounts_burned_fraction: float = 0.0
    requests_by_unburned_accounts: int = 0
    output_tokens_by_unburned_accounts: int = 0
    detected_within_1h: bool = False
    detected_within_1d: bool = False
    member_recall_within_1d: float = 0.0
    served_after_detection_fraction: float | None = None  # with the default policy (enforcement_replay)


@dataclass(slots=True)
class ClassScore:
    accounts: int
    requests: int
    flagged: int
    flagged_fraction: float


@dataclass(slots=True)
class ScenarioScore:
    name: str
    duration_s: float
    events: int
    campaigns: list[CampaignScore]
    organic_classes: dict[str, ClassScore]
    organic_accounts: int
    organic_accounts_flagged: int
    organic_false_positive_rate: float
    organic_alerts: int
    organic_alerts_per_day: float
    alerts: int
    alerts_by_rule: dict[str, int]
    organic_in_campaigns: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # The done-when figures by the names (same values as the fields above).
    organic_flagged_fraction: float = 0.0
    organic_pages_per_day: float = 0.0
    lookalike_classes_paged: list[str] = field(default_factory=list)
    organic_requests_refused: int | None = None  # with the default policy (enforcement_replay)
    organic_requests_protected: int | None = None  # answered under protect_reasoning (enforcement_replay)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def points_at(accounts: list[str], truth: Truth) -> str | None:
    """The campaign whose members are more than half of the labelled accounts named, if any."""
    labelled = [truth.campaign.get(a) for a in accounts if a in truth.label]
    if not labelled:
        return None
    campaign, count = Counter(labelled).most_common(1)[0]
    return campaign if campaign is not None and count * 2 > len(labelled) else None


def score_scenario(name: str, duration_s: float, truth: Truth, alert_versions: list[dict[str, Any]]) -> ScenarioScore:
    # Every version's accounts with its time, by the campaign it points at (None: none): what each
    # campaign's alerts named over the run, and within its first day.
    named_when: dict[str | None, list[tuple[int, list[str]]]] = defaultdict(list)
    first_at: dict[str, int] = {}
    first_rule: dict[str, str] = {}
    rules_by_target: dict[str | None, dict[str, str]] = defaultdict(dict)  # target -> dedup key -> rule
    keys_by_target: dict[str | None, set[str]] = defaultdict(set)
    flagged: set[str] = set()
    rules: dict[str, str] = {}
    for version in alert_versions:
        accounts = version["accounts"]
        target = points_at(accounts, truth)
        keys_by_target[target].add(version["dedup_key"])
        named_when[target].append((int(version["last_seen_ms"]), accounts))
        flagged.update(accounts)
        rule = version.get("rule", "?")
        rules[version["dedup_key"]] = rule
        rules_by_target[target][version["dedup_key"]] = rule
        if target is not None and version["last_seen_ms"] < first_at.get(target, version["last_seen_ms"] + 1):
            first_at[target] = version["last_seen_ms"]
            first_rule[target] = rule

    campaigns = []
    for campaign in sorted(truth.campaign_times):
        members = truth.members(campaign)
        times = truth.campaign_times[campaign]
        tokens = truth.campaign_tokens[campaign]
        detected_at = first_at.get(campaign)
        before = len(times) if detected_at is None else bisect.bisect_left(times, detected_at)
        burned = members & flagged
        unburned = members - flagged
        delay = None if detected_at is None else (detected_at - times[0]) / 1000
        day_end = times[0] + 86_400_000
        versions = named_when.get(campaign, [])
        named = {a for _at, accounts in versions for a in accounts}
        named_1d = {a for at, accounts in versions if at <= day_end for a in accounts}
        campaigns.append(
            CampaignScore(
                name=campaign,
                accounts=len(members),
                requests=len(times),
                detected=detected_at is not None,
                seconds_to_detect=None if detected_at is None else round((detected_at - times[0]) / 1000, 1),
                requests_before_detection_fraction=(
                    None if detected_at is None else round(bisect.bisect_left(times, detected_at) / len(times), 4)
                ),
                member_recall=round(len(named & members) / len(members), 4),
                cluster_precision=round(len(named & members) / len(named), 4) if named else None,
                alerts=len(keys_by_target.get(campaign, ())),
                first_request_ms=times[0],
                detected_at_ms=detected_at,
                alerts_by_rule=dict(Counter(rules_by_target.get(campaign, {}).values())),
                first_rule=first_rule.get(campaign),
                kind=truth.kinds.get(campaign, campaign),
                output_tokens=sum(tokens),
                requests_before_detection=before,
                output_tokens_before_detection=sum(tokens[:before]),
                accounts_burned=len(burned),
                accounts_burned_fraction=round(len(burned) / len(members), 4),
                requests_by_unburned_accounts=sum(truth.member_requests[a] for a in unburned),
                output_tokens_by_unburned_accounts=sum(truth.member_tokens[a] for a in unburned),
                detected_within_1h=delay is not None and delay <= 3_600,
                detected_within_1d=delay is not None and delay <= 86_400,
                member_recall_within_1d=round(len(named_1d & members) / len(members), 4),
            )
        )

    classes: dict[str, ClassScore] = {}
    organic = [a for a, label in truth.label.items() if label == "organic"]
    by_class: dict[str, list[str]] = defaultdict(list)
    for account in organic:
        by_class[truth.klass[account]].append(account)
    for klass, accounts in sorted(by_class.items()):
        hit = sum(a in flagged for a in accounts)
        classes[klass] = ClassScore(len(accounts), truth.requests_by_class[klass], hit, round(hit / len(accounts), 4))
    organic_flagged = sum(a in flagged for a in organic)
    organic_alerts = len(keys_by_target.get(None, ()))
    fp_rate = round(organic_flagged / len(organic), 4) if organic else 0.0
    per_day = round(organic_alerts / (duration_s / 86_400), 2)
    return ScenarioScore(
        name=name,
        duration_s=duration_s,
        events=sum(truth.requests_by_class.values()),
        campaigns=campaigns,
        organic_classes=classes,
        organic_accounts=len(organic),
        organic_accounts_flagged=organic_flagged,
        organic_false_positive_rate=fp_rate,
        organic_alerts=organic_alerts,
        organic_alerts_per_day=per_day,
        alerts=len(rules),
        alerts_by_rule=dict(Counter(rules.values())),
        organic_flagged_fraction=fp_rate,
        organic_pages_per_day=per_day,
        lookalike_classes_paged=sorted(k for k, c in classes.items() if k not in ORDINARY and c.flagged),
    )


def score_resolved_campaigns(score: ScenarioScore, truth: Truth, records: list[dict[str, Any]]) -> None:
    """Add the resolver's view to `score`: `records` are campaign/v1 records in topic order.

    >>> truth = Truth()
    >>> for i in range(4): truth.observe(f"c{i}", "campaign", "campaign", "hydra", 1_000 + i)
    >>> truth.observe("o0", "organic", "reseller", None, 500)
    >>> score = score_scenario("s", 86_400, truth, [])
    >>> score_resolved_campaigns(score, truth, [
    ...     {"campaign_id": "cmp-1", "status": "new", "members": ["c0", "c1"]},
    ...     {"campaign_id": "cmp-1", "status": "growing", "members": ["c0", "c1", "c2", "o0"]}])
    >>> c = score.campaigns[0]
    >>> (c.resolved_as, c.resolved_member_recall, c.resolved_cluster_precision, score.organic_in_campaigns)
    (1, 0.75, 0.75, {'reseller': 1})
    """
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        latest[record["campaign_id"]] = record
    resolved = [r for r in latest.values() if r["status"] != "merged"]
    in_any: set[str] = set()
    by_target: dict[str | None, list[set[str]]] = defaultdict(list)
    for record in resolved:
        members = set(record["members"])
        in_any |= members
        by_target[points_at(sorted(members), truth)].append(members)
    for campaign in score.campaigns:
        groups = by_target.get(campaign.name, [])
        named = set().union(*groups) if groups else set()
        members = truth.members(campaign.name)
        campaign.resolved_as = len(groups)
        campaign.resolved_member_recall = round(len(named & members) / len(members), 4) if members else 0.0
        campaign.resolved_cluster_precision = round(len(named & members) / len(named), 4) if named else None
    organic = Counter(truth.klass[a] for a in in_any if truth.label.get(a) == "organic")
    score.organic_in_campaigns = dict(sorted(organic.items()))
