"""Enforcement: the policy file, the action registry, the decision book's ladder, expiry and
approval gate, and the bouncer's cache (strongest decision wins, throttling admits its share,
an expired decision stops applying without any message)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest

from extractguard.contracts.enforcement import ENFORCEMENT_DECISIONS, ENFORCEMENT_REPORTS
from extractguard.contracts.schemas import validate
from extractguard.enforcement.actions import REGISTRY
from extractguard.enforcement.actions.base import Action, Params, register, registry
from extractguard.enforcement.book import EnforcementBook
from extractguard.enforcement.facts import AccountFact, AccountFacts
from extractguard.enforcement.policy import PolicyError, load_policy, shipped_policy
from extractguard_gateway.enforcement import feed
from extractguard_gateway.enforcement.cache import DecisionCache, Identity

MIN = 60_000
POLICY = """\
version: 1
revision: test-1
approval:
  min_accounts: 50
  long_standing: {min_account_age_days: 365, min_monthly_spend_usd: 100}
rules:
  - name: campaign
    when: {source: campaign, min_members: 3, min_shaped_share: 0.5}
    targets: [account, ip_prefix]
    ladder:
      - {action: observe, ttl: 1h, escalate_after: 5m}
      - {action: throttle, ttl: 1h, escalate_after: 10m, params: {rate_factor: 0.25, retry_after_s: 30}}
      - {action: suspend, ttl: 2h}
    remember: 1d
    min_prefix_sharers: 1
"""


def campaign(members: list[str], total: int | None = None, shaped: float = 1.0, **extra: Any) -> dict[str, Any]:
    n = total or len(members)
    return {
        "schema_version": 1, "campaign_id": "cmp-0123456789ab", "status": "growing", "first_seen_ms": 0,
        "last_seen_ms": 0, "updated_ms": 0, "severity": "warning", "score": 50.0, "members": members,
        "members_total": n, "shaped_members": int(n * shaped),
        "fingerprints": [{"fingerprint": "ip_prefix:198.51.100.0/24", "weight": 9.0, "sharers": n}], **extra,
    }  # fmt: skip


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def active(decisions: list[dict[str, Any]]) -> dict[str, str]:
    return {f"{d['scope']}:{d['entity']}": d["action"] for d in decisions if d["status"] == "active"}


def test_the_shipped_policy_loads_and_names_only_registered_actions() -> None:
    policy = shipped_policy()
    assert {rung.action for rule in policy.rules for rung in rule.ladder} <= set(REGISTRY)
    assert policy.approval.min_accounts == 500


@pytest.mark.parametrize(
    ("fragment", "replacement", "line", "field"),
    [
        ("action: suspend", "action: banish", 13, "rules[0].ladder[2]"),
        ("rate_factor: 0.25", "rate_factor: 4", 12, "rules[0].ladder[1]"),
        ("min_shaped_share: 0.5", "min_shaped_share: 2", 8, "rules[0].when.min_shaped_share"),
        ("ttl: 2h", "ttl: soon", 13, "rules[0].ladder[2].ttl"),
    ],
)
def test_a_bad_policy_is_refused_with_its_line_and_field(
    policy_file: Path, fragment: str, replacement: str, line: int, field: str
) -> None:
    policy_file.write_text(POLICY.replace(fragment, replacement))
    with pytest.raises(PolicyError) as raised:
        load_policy(policy_file)
    assert (raised.value.line, raised.value.field) == (line, field), str(raised.value)


def test_a_ladder_that_goes_down_is_refused(policy_file: Path) -> None:
    policy_file.write_text(POLICY.replace("action: observe, ttl: 1h", "action: suspend, ttl: 1h"))
    with pytest.raises(PolicyError, match="only goes up"):
        load_policy(policy_file)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_action_renders_an_effect_the_decision_schema_accepts(name: str, policy_file: Path) -> None:
    implementation = REGISTRY[name]
    effect = implementation.effect(implementation.params({}))
    book = EnforcementBook(load_policy(policy_file))
    decision = book.campaign(campaign(["a", "b", "c"]), now_ms=0)[0]
    validate("enforcement_decision", {**decision, "action": name, "effect": effect})


def test_a_campaign_is_observed_then_throttled_then_suspended_and_the_ladder_expires(policy_file: Path) -> None:
    book = EnforcementBook(load_policy(policy_file))
    members = ["a", "b", "c"]
    first = book.campaign(campaign(members), now_ms=0)
    assert active(first) == {"account:a": "observe", "account:b": "observe", "account:c": "observe",
                             "ip_prefix:198.51.100.0/24": "observe"}  # fmt: skip
    assert book.campaign(campaign(members), now_ms=4 * MIN) == []  # the rung holds until escalate_after
    second = book.campaign(campaign(members), now_ms=5 * MIN)
    assert set(active(second).values()) == {"throttle"}
    superseded = [d for d in second if d["status"] == "superseded"]
    assert {d["decision_id"] for d in superseded} == {d["supersedes"] for d in second if d["status"] == "active"}
    third = book.campaign(campaign(members), now_ms=15 * MIN)
    assert set(active(third).values()) == {"suspend"}
    assert book.campaign(campaign(members), now_ms=60 * MIN) == []  # at the top
    for record in first + second + third:
        validate("enforcement_decision", record)
    assert book.expire_due(now_ms=15 * MIN + 2 * 3_600_000 - 1) == []
    expired = book.expire_due(now_ms=15 * MIN + 2 * 3_600_000)
    assert {d["status"] for d in expired} == {"expired"} and len(expired) == 4
    # A repeat within `remember` of the expiry goes back to the top, not to observe.
    again = book.campaign(campaign(members), now_ms=20 * 3_600_000)
    assert set(active(again).values()) == {"suspend"}
    # Much later it starts over.
    book.expire_due(now_ms=30 * 3_600_000)
    fresh = book.campaign(campaign(members), now_ms=30 * 3_600_000 + 2 * 86_400_000)
    assert set(active(fresh).values()) == {"observe"}


def test_unshaped_campaigns_and_campaign_detections_decide_nothing(policy_file: Path) -> None:
    book = EnforcementBook(load_policy(policy_file))
    assert book.campaign(campaign(["a", "b", "c", "d"], shaped=0.25), now_ms=0) == []
    assert book.campaign(campaign(["a", "b"]), now_ms=0) == []
    assert book.detection({"entity_kind": "campaign"}, now_ms=0) == []


def test_a_large_campaign_waits_for_a_person_and_is_enforced_only_once_approved(policy_file: Path) -> None:
    book = EnforcementBook(load_policy(policy_file))
    members = [f"m{i}" for i in range(60)]
    observed = book.campaign(campaign(members), now_ms=0)
    assert {d["status"] for d in observed} == {"active"}  # observing needs no one's approval
    waiting = book.campaign(campaign(members), now_ms=5 * MIN)
    pending = [d for d in waiting if d["status"] == "pending_approval"]
    assert len(pending) == 61 and {d["effect"]["kind"] for d in pending} == {"none"}
    assert pending[0]["approval"]["reason"].startswith("the evidence names 60 accounts")
    assert book.campaign(campaign(members), now_ms=20 * MIN) == []  # no escalation while waiting
    group = pending[0]["group_id"]
    assert {d["group_id"] for d in pending} == {group}
    approved = book.approve(group, by="oncall", now_ms=30 * MIN, note="case 1")
    assert len(approved) == 61 and {d["effect"]["kind"] for d in approved} == {"limit"}
    assert approved[0]["approval"] == {"required": True, "reason": pending[0]["approval"]["reason"], "by": "oncall",
                                       "at_ms": 30 * MIN, "note": "case 1"}  # fmt: skip
    assert approved[0]["expires_at_ms"] == 30 * MIN + 3_600_000
    for record in approved:
        validate("enforcement_decision", record)


def test_an_escalation_waiting_for_a_person_keeps_the_rung_in_force(policy_file: Path) -> None:
    book, cache = EnforcementBook(load_policy(policy_file)), DecisionCache()
    members = [f"m{i}" for i in range(60)]
    feed = book.campaign(campaign(members), now_ms=0)
    throttle = [d for d in book.campaign(campaign(members), now_ms=5 * MIN) if d["status"] == "pending_approval"]
    feed += throttle + book.approve(throttle[0]["group_id"], by="oncall", now_ms=6 * MIN)
    suspend = [d for d in book.campaign(campaign(members), now_ms=17 * MIN) if d["status"] == "pending_approval"]
    assert len(suspend) == 61 and {d["action"] for d in suspend} == {"suspend"}
    feed += suspend
    for record in feed:
        validate("enforcement_decision", record)
        cache.apply(record)
    # While the suspension waits, the member is still throttled (a quarter admitted), not let go.
    verdicts = [cache.verdict(Identity(account="m1"), now_ms=18 * MIN).status for _ in range(8)]
    assert sorted(verdicts) == [200, 200, 429, 429, 429, 429, 429, 429]
    assert suspend[0]["approval"]["reason"].endswith("throttle stays in force meanwhile")
    assert suspend[0]["expires_at_ms"] == 6 * MIN + 3_600_000  # lapses with the throttle it would replace
    assert cache.verdict(Identity(account="m1"), now_ms=6 * MIN + 3_600_000).status == 200
    for record in book.approve(suspend[0]["group_id"], by="oncall", now_ms=20 * MIN):
        cache.apply(record)
    assert cache.verdict(Identity(account="m1"), now_ms=21 * MIN).status == 403
    # Rejecting an escalation lifts what it would have replaced too.
    other = EnforcementBook(load_policy(policy_file))
    other.campaign(campaign(members), now_ms=0)
    group = next(d for d in other.campaign(campaign(members), 5 * MIN) if d["status"] == "pending_approval")
    other.approve(group["group_id"], by="oncall", now_ms=6 * MIN)
    waiting = next(d for d in other.campaign(campaign(members), 17 * MIN) if d["status"] == "pending_approval")
    assert {d["effect"]["kind"] for d in other.reject(waiting["group_id"], by="oncall", now_ms=18 * MIN)} == {"none"}


def test_a_member_joining_a_campaign_starts_at_its_rung_under_its_approval(policy_file: Path) -> None:
    book = EnforcementBook(load_policy(policy_file))
    members = [f"m{i}" for i in range(60)]
    book.campaign(campaign(members), now_ms=0)
    group = next(d for d in book.campaign(campaign(members), now_ms=5 * MIN) if d["status"] == "pending_approval")
    book.approve(group["group_id"], by="oncall", now_ms=6 * MIN)
    joined = book.campaign(campaign([*members, "late"]), now_ms=7 * MIN)
    assert [(d["entity"], d["action"], d["status"]) for d in joined] == [("late", "throttle", "active")]
    assert joined[0]["approval"]["by"] == "oncall"  # covered by its campaign's approval of this rung
    assert joined[0]["approval"]["reason"].startswith("covered by the approval of cmp-")


def test_a_long_standing_paying_account_waits_while_its_neighbours_are_throttled(policy_file: Path) -> None:
    facts = AccountFacts({"old": AccountFact(created_ms=0, monthly_spend_usd=500.0),
                          "young": AccountFact(created_ms=399 * 86_400_000, monthly_spend_usd=500.0)})  # fmt: skip
    book = EnforcementBook(load_policy(policy_file), facts)
    now = 400 * 86_400_000
    book.campaign(campaign(["old", "young", "x"]), now_ms=now)
    second = {d["entity"]: d for d in book.campaign(campaign(["old", "young", "x"]), now_ms=now + 5 * MIN)
              if d["status"] != "superseded"}  # fmt: skip
    assert second["old"]["status"] == "pending_approval"
    assert second["old"]["evidence"]["account_age_days"] == pytest.approx(400.0 + 5 / 1440)
    assert second["young"]["status"] == second["x"]["status"] == "active"
    rejected = book.reject(second["old"]["decision_id"], by="am", now_ms=now + 6 * MIN)
    assert [d["status"] for d in rejected] == ["rejected"]
    assert all(d["entity"] != "old" for d in book.campaign(campaign(["old", "young", "x"]), now_ms=now + 20 * MIN))


def test_the_book_rebuilt_from_its_records_goes_on_where_it_was(policy_file: Path) -> None:
    book = EnforcementBook(load_policy(policy_file))
    records = book.campaign(campaign(["a", "b", "c"]), now_ms=0) + book.campaign(campaign(["a", "b", "c"]), 5 * MIN)
    rebuilt = EnforcementBook(load_policy(policy_file))
    rebuilt.restore(orjson.loads(orjson.dumps(r)) for r in records)
    assert set(active(rebuilt.campaign(campaign(["a", "b", "c"]), now_ms=15 * MIN)).values()) == {"suspend"}


class _Canary(Action):
    """What the watermark canary will be: annotate the request with the pool it is routed to."""

    name = "test_canary"
    strength = 10

    class CanaryParams(Params):
        pool: str

    parameters: ClassVar[type[Params]] = CanaryParams

    def effect(self, params: Params) -> dict[str, Any]:
        assert isinstance(params, self.CanaryParams)
        return {"kind": "annotate", "annotations": {"watermark_pool": params.pool}}


def test_a_new_action_is_one_registered_class_and_bouncers_apply_it_unchanged(policy_file: Path) -> None:
    register(_Canary)
    try:
        _canary_decides(policy_file)
    finally:
        registry().pop("test_canary")


def _canary_decides(policy_file: Path) -> None:
    policy_file.write_text(POLICY.replace("action: observe, ttl: 1h", "action: test_canary, ttl: 1h, params: "
                                          "{pool: wm-7}"))  # fmt: skip
    book = EnforcementBook(load_policy(policy_file))
    decision = book.campaign(campaign(["a", "b", "c"]), now_ms=0)[0]
    assert decision["effect"] == {"kind": "annotate", "annotations": {"watermark_pool": "wm-7"}}
    validate("enforcement_decision", decision)
    cache = DecisionCache()
    cache.apply(decision)
    verdict = cache.verdict(Identity(account="a"), now_ms=1)
    assert verdict.admitted and verdict.annotations == {"watermark_pool": "wm-7"}


def _decision(entity: str, kind: str, scope: str = "account", **effect: Any) -> dict[str, Any]:
    return {"decision_id": f"dec-{abs(hash((entity, kind))) % 16**16:016x}", "scope": scope, "entity": entity,
            "action": kind, "status": "active", "expires_at_ms": 10_000, "updated_at_ms": 1,
            "effect": {"kind": kind, **effect}}  # fmt: skip


def test_the_cache_applies_the_strongest_decision_and_throttling_admits_its_share() -> None:
    cache = DecisionCache()
    cache.apply(_decision("a-1", "limit", rate_factor=0.25, retry_after_s=30))
    cache.apply(_decision("198.51.100.0/24", "deny", scope="ip_prefix"))
    verdicts = [cache.verdict(Identity(account="a-1"), now_ms=5) for _ in range(100)]
    assert sum(v.admitted for v in verdicts) == 25
    assert {v.headers.get("Retry-After") for v in verdicts if not v.admitted} == {"30"}
    assert not verdicts[0].admitted  # refused from the first request on
    both = cache.verdict(Identity(account="a-1", ip_prefix="198.51.100.0/24"), now_ms=5)
    assert both.status == 403
    assert cache.verdict(Identity(account="a-1", ip_prefix="198.51.100.0/24"), now_ms=10_000).status == 200
    counts = cache.take_counts()
    assert sum(n for (_d, _a, _e, outcome), n in counts.items() if outcome == "throttled") == 75
    assert not cache.take_counts()


def test_the_cache_keeps_the_newest_version_of_a_target_and_forgets_on_a_tombstone() -> None:
    cache = DecisionCache()
    newer = {**_decision("a-1", "deny"), "updated_at_ms": 5}
    assert cache.apply(newer)
    assert not cache.apply({**_decision("a-1", "none"), "updated_at_ms": 4})
    assert cache.verdict(Identity(account="a-1"), now_ms=6).status == 403
    assert cache.apply({**newer, "status": "expired", "effect": {"kind": "none"}, "updated_at_ms": 6})
    assert cache.verdict(Identity(account="a-1"), now_ms=7).outcome == "admitted"
    assert cache.apply(None, key="account:a-1") and len(cache) == 0


def test_a_challenge_answers_401_with_a_challenge_body() -> None:
    cache = DecisionCache()
    cache.apply(_decision("a-1", "challenge", challenge={"verify_url": "https://verify.example/a"}))
    verdict = cache.verdict(Identity(account="a-1"), now_ms=5)
    assert verdict.status == 401 and "WWW-Authenticate" in verdict.headers
    assert verdict.body["error"]["challenge"]["verify_url"] == "https://verify.example/a"


def test_the_gateway_names_the_topics_the_contracts_declare() -> None:
    assert (feed.DECISIONS_TOPIC, feed.REPORTS_TOPIC) == (ENFORCEMENT_DECISIONS, ENFORCEMENT_REPORTS)


def test_reports_count_per_decision_and_outcome_on_the_report_schema() -> None:
    cache = DecisionCache()
    cache.apply(_decision("a-1", "deny"))
    for _ in range(3):
        cache.verdict(Identity(account="a-1"), now_ms=5)
    records = feed.report_records(cache, "litellm", "pod-1", 0, 30_000)
    assert [(r["outcome"], r["requests"]) for r in records] == [("denied", 3)]
    validate("bouncer_report", records[0])


def test_a_changed_policy_is_reloaded_and_a_broken_one_keeps_the_last(policy_file: Path) -> None:
    import os

    from extractguard.enforcement.service import PolicyFile

    loaded = PolicyFile(policy_file)
    assert loaded.reload_if_changed() is None
    policy_file.write_text(POLICY.replace("revision: test-1", "revision: test-2"))
    os.utime(policy_file, (1, 1))
    assert loaded.reload_if_changed() is not None and loaded.policy.revision == "test-2"
    policy_file.write_text(POLICY.replace("action: suspend", "action: banish"))
    os.utime(policy_file, (2, 2))
    assert loaded.reload_if_changed() is None and loaded.policy.revision == "test-2"


def _burst(expected_false_alarms: float | None, severity: str = "critical") -> dict[str, Any]:
    return {
        "schema_version": 1, "detection_id": "8686b980eda314412aeb79a6f354bf9f", "detector": "burst",
        "detector_version": "1", "entity_kind": "ip_prefix", "entity": "185.220.101.0/24", "score": 41.7,
        "threshold": 8.0, "window_start_ms": 0, "window_end_ms": 60_000, "detected_at_ms": 60_000,
        "severity": severity, "evidence": {"summary": "burst", "features": [], "accounts": ["a", "b"],
                                           "expected_false_alarms_per_day": expected_false_alarms},
    }  # fmt: skip


def test_a_burst_acts_on_its_prefix_only_from_a_detector_that_knows_its_false_alarm_rate() -> None:
    book = EnforcementBook(shipped_policy())
    assert book.detection(_burst(None), now_ms=0) == []  # still learning its false-alarm rate
    assert book.detection(_burst(5.0), now_ms=0) == []  # too many false alarms a day to act alone
    assert book.detection(_burst(0.2, severity="warning"), now_ms=0) == []
    (decision,) = book.detection(_burst(0.2), now_ms=0)
    assert (decision["scope"], decision["entity"], decision["action"]) == ("ip_prefix", "185.220.101.0/24", "observe")
    assert decision["evidence"]["expected_false_alarms_per_day"] == 0.2
    validate("enforcement_decision", decision)


def test_the_replay_counts_what_a_prefix_decision_would_refuse_an_honest_neighbour(policy_file: Path) -> None:
    from extractguard.evaluation.enforcement_replay import RequestLog, replay

    log = RequestLog()
    members = ["c1", "c2", "c3"]
    for t in range(0, 3_600_000, 60_000):
        for account in members:
            log.observe(account, "campaign", t, {"client_ip_prefix": "198.51.100.0/24"})
        log.observe("honest", "organic", t, {"client_ip_prefix": "198.51.100.0/24"})  # behind the same proxy
        log.observe("elsewhere", "organic", t, {"client_ip_prefix": "203.0.113.0/24"})
    records = [{**campaign(members), "updated_ms": t} for t in range(600_000, 3_600_000, 120_000)]
    outcome = replay(log, [], {a: "x" for a in members}, {"x": 600_000}, load_policy(policy_file), campaigns=records)
    assert outcome.requests_after_detection["x"] == 150
    assert outcome.served_after_detection["x"] < 150 * 0.3
    assert outcome.organic_accounts_refused == {"honest"}  # the prefix decision hits it, not the other one
    assert outcome.organic_requests_refused > 0


CANARY_POLICY = """\
version: 1
revision: canary-1
rules:
  - name: canary
    when: {source: campaign, min_members: 3, min_shaped_share: 0.5}
    targets: [account]
    ladder:
      - {action: watermark_canary, ttl: 1d, params: {pools: [canary-00, canary-01]}}
    remember: 1d
"""


def test_the_watermark_canary_gives_each_campaign_a_key_of_its_own_and_the_gateway_routes_to_it(
    tmp_path: Path,
) -> None:
    from extractguard_gateway.watermark_pools import cohort_registry, route_annotated

    path = tmp_path / "policy.yaml"
    path.write_text(CANARY_POLICY)
    book = EnforcementBook(load_policy(path))

    def pools(records: list[dict[str, Any]]) -> dict[str, str | None]:
        for record in records:
            validate("enforcement_decision", record)
        return {r["entity"]: r["params"]["pool"] for r in records if r["status"] == "active"}

    first = book.campaign(campaign(["a1", "a2", "a3"], campaign_id="cmp-aaaaaaaaaaaa"), now_ms=0)
    second = book.campaign(campaign(["b1", "b2", "b3"], campaign_id="cmp-bbbbbbbbbbbb"), now_ms=MIN)
    third = book.campaign(campaign(["c1", "c2", "c3"], campaign_id="cmp-cccccccccccc"), now_ms=2 * MIN)
    assert set(pools(first).values()) == {"canary-00"} and set(pools(second).values()) == {"canary-01"}
    assert set(pools(third).values()) == {None}  # both pools held: recorded, nothing enforced
    assert {r["effect"]["kind"] for r in third} == {"none"}
    # A restarted enforcer reads its decisions back: a member joining later gets its campaign's pool.
    rebuilt = EnforcementBook(load_policy(path))
    rebuilt.restore(orjson.loads(orjson.dumps(r)) for r in first + second + third)
    joined = rebuilt.campaign(campaign(["a1", "a2", "a3", "a4"], campaign_id="cmp-aaaaaaaaaaaa"), now_ms=3 * MIN)
    assert pools(joined) == {"a4": "canary-00"}

    # The bouncer annotates the campaign's requests; the pool router sends them to the canary key.
    cache = DecisionCache()
    for record in first + second + joined:
        cache.apply(record)
    registry = cohort_registry(4, starts_ms=0, canaries=2)
    routes = {a: route_annotated(registry, cache.verdict(Identity(account=a), 4 * MIN).annotations, a, 4 * MIN)
              for a in ("a4", "b2", "honest")}  # fmt: skip
    assert (routes["a4"].key_id, routes["a4"].canary_campaign) == ("wm-canary-00-0", "cmp-aaaaaaaaaaaa")
    assert (routes["b2"].key_id, routes["b2"].canary_campaign) == ("wm-canary-01-0", "cmp-bbbbbbbbbbbb")
    assert routes["honest"].canary_campaign is None and routes["honest"].pool.startswith("cohort-")
