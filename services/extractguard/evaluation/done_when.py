"""The acceptance criteria of detection at the public case's rates, checked on a scorecard.

Each campaign is judged by its kind (`CampaignSpec.kind`, by default its name): a `hydra` fleet at
about one request per account per hour must be found within an hour of event time with at most
1% of its requests served first, member recall >= 95% and cluster precision >= 99% (alerts'
figures: what paged); a `low_and_slow` campaign (one request per account every four hours) within
a day with >= 80% of its members named by then (`member_recall_within_1d`); a `small_fleet` (a
few hundred accounts) and a `refusal_mapping` sweep within three hours; an `actor` — one of several
campaigns of one scenario that share commodity tooling — found as its own actor: cluster precision
>= 95% on what paged and on the resolved campaign that names it; a `reseller_end_users` harvest with
>= 80% of its end users named and none of the reseller's honest end users flagged. Every other
campaign must be detected. Over all scenarios, organic accounts flagged <= 0.1%, organic pages <= 1
a day, and no look-alike class paged.

>>> from extractguard.evaluation.scoring import Truth, score_scenario
>>> truth = Truth()
>>> for i in range(100): truth.observe(f"c{i}", "campaign", "campaign", "hydra", 1_000 + i)
>>> for i in range(10): truth.observe(f"o{i}", "organic", "eval_harness", None, 500)
>>> alert = {"dedup_key": "k", "accounts": [f"c{i}" for i in range(96)], "last_seen_ms": 1_001}
>>> verdict = done_when([score_scenario("s", 86_400, truth, [alert])])
>>> verdict["criteria"]["hydra"][0]["passed"], verdict["organic_pages_per_day"], verdict["all_passed"]
(True, 0.0, True)
>>> organic = {"dedup_key": "o", "accounts": ["o1"], "last_seen_ms": 2_000}
>>> verdict = done_when([score_scenario("s", 86_400, truth, [alert, organic])])
>>> verdict["lookalike_classes_paged"], verdict["organic_flagged_fraction_ok"], verdict["all_passed"]
({'s': ['eval_harness']}, False, False)

A slow campaign named in full only on its second day was not found "within a day at 80%":

>>> slow = Truth(kinds={"low_and_slow": "low_and_slow"})
>>> for i in range(10): slow.observe(f"s{i}", "campaign", "campaign", "low_and_slow", 0)
>>> day_one = {"dedup_key": "a", "accounts": [f"s{i}" for i in range(5)], "last_seen_ms": 3_600_000}
>>> day_two = {"dedup_key": "a", "accounts": [f"s{i}" for i in range(10)], "last_seen_ms": 90_000_000}
>>> (c,) = score_scenario("slow", 2 * 86_400, slow, [day_one, day_two]).campaigns
>>> c.member_recall, c.member_recall_within_1d, done_when([score_scenario("slow", 2 * 86_400, slow,
...     [day_one, day_two])])["criteria"]["low_and_slow"][0]["passed"]
(1.0, 0.5, False)

Two actors that share tooling, paged as one, are one wrong answer rather than two right ones:

>>> shared = Truth(kinds={"lab_a": "actor", "lab_b": "actor"})
>>> for i in range(10): shared.observe(f"a{i}", "campaign", "campaign", "lab_a", 0)
>>> for i in range(10): shared.observe(f"b{i}", "campaign", "campaign", "lab_b", 0)
>>> merged = {"dedup_key": "m", "accounts": [f"a{i}" for i in range(10)] + ["b0", "b1"], "last_seen_ms": 60_000}
>>> rows = done_when([score_scenario("tooling", 86_400, shared, [merged])])["criteria"]["actor"]
>>> [(row["campaign"], row["detected"], row["cluster_precision"], row["passed"]) for row in rows]
[('lab_a', True, 0.8333, False), ('lab_b', False, None, False)]
"""

from __future__ import annotations

from typing import Any

from extractguard.evaluation.scoring import CampaignScore, ScenarioScore

HYDRA_WITHIN_S = 3_600
HYDRA_MAX_REQUESTS_BEFORE = 0.01
HYDRA_MIN_RECALL = 0.95
HYDRA_MIN_PRECISION = 0.99
SLOW_WITHIN_S = 86_400
SLOW_MIN_RECALL = 0.80
WITHIN_3H_S = 10_800
ACTOR_MIN_PRECISION = 0.95
RESELLER_MIN_RECALL = 0.80
MAX_ORGANIC_FLAGGED = 0.001
MAX_ORGANIC_PAGES_PER_DAY = 1.0


def _hydra(scenario: str, c: CampaignScore) -> dict[str, Any]:
    before = c.requests_before_detection_fraction
    precision = c.cluster_precision
    return {
        "scenario": scenario,
        "campaign": c.name,
        "detected_within_1h": c.detected_within_1h,
        "requests_before_detection_fraction": before,
        "member_recall": c.member_recall,
        "cluster_precision": precision,
        "passed": c.detected_within_1h
        and before is not None
        and before <= HYDRA_MAX_REQUESTS_BEFORE
        and c.member_recall >= HYDRA_MIN_RECALL
        and precision is not None
        and precision >= HYDRA_MIN_PRECISION,
    }


def _low_and_slow(scenario: str, c: CampaignScore) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "campaign": c.name,
        "detected_within_1d": c.detected_within_1d,
        "member_recall_within_1d": c.member_recall_within_1d,
        "member_recall": c.member_recall,
        # "Found within a day at >= 80% recall": the recall held a day after its first request.
        "passed": c.detected_within_1d and c.member_recall_within_1d >= SLOW_MIN_RECALL,
    }


def _within_3h(scenario: str, c: CampaignScore) -> dict[str, Any]:
    seconds = c.seconds_to_detect
    return {
        "scenario": scenario,
        "campaign": c.name,
        "seconds_to_detect": seconds,
        "member_recall": c.member_recall,
        "passed": seconds is not None and seconds <= WITHIN_3H_S,
    }


def _actor(scenario: str, c: CampaignScore) -> dict[str, Any]:
    precision, resolved = c.cluster_precision, c.resolved_cluster_precision
    return {
        "scenario": scenario,
        "campaign": c.name,
        "detected": c.detected,
        "cluster_precision": precision,
        "resolved_as": c.resolved_as,
        "resolved_cluster_precision": resolved,
        "passed": c.detected
        and precision is not None
        and precision >= ACTOR_MIN_PRECISION
        and c.resolved_as >= 1
        and resolved is not None
        and resolved >= ACTOR_MIN_PRECISION,
    }


def _reseller(scenario: str, c: CampaignScore, s: ScenarioScore) -> dict[str, Any]:
    honest = s.organic_classes.get("reseller")
    honest_flagged = honest.flagged if honest is not None else 0
    return {
        "scenario": scenario,
        "campaign": c.name,
        "member_recall": c.member_recall,
        "honest_end_users_flagged": honest_flagged,
        "passed": c.member_recall >= RESELLER_MIN_RECALL and honest_flagged == 0,
    }


def done_when(scenarios: list[ScenarioScore]) -> dict[str, Any]:
    """The done-when figures and whether each holds, as named keys for the scorecard."""
    criteria: dict[str, list[dict[str, Any]]] = {
        "hydra": [], "low_and_slow": [], "small_fleet": [], "refusal_mapping": [], "actor": [],
        "reseller_end_users": [],
    }  # fmt: skip
    missed = []
    for s in scenarios:
        for c in s.campaigns:
            if not c.detected:
                missed.append(f"{s.name}/{c.name}")
            if c.kind == "hydra":
                criteria["hydra"].append(_hydra(s.name, c))
            elif c.kind == "low_and_slow":
                criteria["low_and_slow"].append(_low_and_slow(s.name, c))
            elif c.kind in ("small_fleet", "refusal_mapping"):
                criteria[c.kind].append(_within_3h(s.name, c))
            elif c.kind == "actor":
                criteria["actor"].append(_actor(s.name, c))
            elif c.kind == "reseller_end_users":
                criteria["reseller_end_users"].append(_reseller(s.name, c, s))
    organic = sum(s.organic_accounts for s in scenarios)
    flagged = sum(s.organic_accounts_flagged for s in scenarios)
    days = sum(s.duration_s for s in scenarios) / 86_400
    fraction = round(flagged / organic, 5) if organic else 0.0
    pages = round(sum(s.organic_alerts for s in scenarios) / days, 2) if days else 0.0
    paged = {s.name: s.lookalike_classes_paged for s in scenarios if s.lookalike_classes_paged}
    verdict: dict[str, Any] = {
        "every_campaign_detected": not missed,
        "campaigns_missed": missed,
        "criteria": criteria,
        "organic_flagged_fraction": fraction,
        "organic_flagged_fraction_ok": fraction <= MAX_ORGANIC_FLAGGED,
        "organic_pages_per_day": pages,
        "organic_pages_per_day_ok": pages <= MAX_ORGANIC_PAGES_PER_DAY,
        "lookalike_classes_paged": paged,
    }
    verdict["all_passed"] = (
        verdict["every_campaign_detected"]
        and all(row["passed"] for rows in criteria.values() for row in rows)
        and verdict["organic_flagged_fraction_ok"]
        and verdict["organic_pages_per_day_ok"]
        and not paged
    )
    return verdict
