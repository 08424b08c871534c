"""The shipped policy's `lone_harvester` rule: one account confidently extraction-shaped on its own
is observed, then answered without its reasoning, then throttled; nothing weaker acts, organic
accounts are never refused or protected, and an account that turns out to be a campaign's member
goes over to the campaign's rule."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from extractguard.contracts.schemas import validate
from extractguard.detection.detectors import ExtractionDetector
from extractguard.detection.windows import EntityWindows
from extractguard.enforcement.book import EnforcementBook
from extractguard.enforcement.policy import shipped_policy
from extractguard_gateway.enforcement.cache import DecisionCache, Identity
from extractguard_gateway.enforcement.protection import Protection
from tests.unit.test_detectors import WINDOW_MS, harvesting_event, organic_stream
from tests.unit.test_enforcement import campaign

MIN = 60_000


def extraction(account: str, severity: str = "critical", false_alarms: float | None = 0.0) -> dict[str, Any]:
    return {
        "schema_version": 1, "detection_id": f"{abs(hash(account)) % 16**32:032x}", "detector": "extraction",
        "detector_version": "1", "entity_kind": "account", "entity": account,
        "score": 0.8 if severity == "critical" else 0.5, "threshold": 0.36, "window_start_ms": 0,
        "window_end_ms": MIN, "detected_at_ms": MIN, "severity": severity,
        "evidence": {"summary": f"account {account}: extraction-shaped use", "features": [], "accounts": [account],
                     "accounts_total": 1, "expected_false_alarms_per_day": false_alarms},
    }  # fmt: skip


def test_a_lone_harvester_is_observed_for_half_an_hour_protected_for_an_hour_then_throttled_never_suspended() -> None:
    book = EnforcementBook(shipped_policy())
    (observed,) = book.detection(extraction("solo"), now_ms=0)
    validate("enforcement_decision", observed)
    assert (observed["rule"], observed["action"], observed["status"]) == ("lone_harvester", "observe", "active")
    assert observed["evidence"]["detector"] == "extraction" and "rung 1/3 (observe)" in observed["reason"]
    assert book.detection(extraction("solo"), now_ms=29 * MIN) == []
    superseded, protected = book.detection(extraction("solo"), now_ms=30 * MIN)
    assert superseded["status"] == "superseded"
    assert (protected["action"], protected["status"], protected["level"]) == ("protect_reasoning", "active", 1)
    assert protected["effect"]["kind"] == "annotate" and not protected["approval"]["required"]
    assert book.detection(extraction("solo"), now_ms=89 * MIN) == []
    _, throttled = book.detection(extraction("solo"), now_ms=90 * MIN)
    assert (throttled["action"], throttled["status"], throttled["level"]) == ("throttle", "active", 2)
    assert throttled["effect"]["kind"] == "limit" and throttled["effect"]["rate_factor"] == 0.25
    assert book.detection(extraction("solo"), now_ms=5 * 60 * MIN) == []  # the top rung: no suspension


@pytest.mark.parametrize(
    "detection",
    [
        extraction("warned", severity="warning"),  # shaped, not confidently
        extraction("learning", false_alarms=None),  # a detector that does not know its false-alarm rate yet
        extraction("noisy", false_alarms=3.0),  # one that would raise three a day at its threshold
        {**extraction("key"), "entity_kind": "api_key"},
    ],
    ids=["warning", "unknown-rate", "noisy", "api-key"],
)
def test_weaker_evidence_decides_nothing(detection: dict[str, Any]) -> None:
    assert EnforcementBook(shipped_policy()).detection(detection, now_ms=0) == []


def test_a_lone_harvester_found_in_a_campaign_climbs_with_the_campaign() -> None:
    book = EnforcementBook(shipped_policy())
    book.detection(extraction("a"), now_ms=0)
    members = ["a", "b", "c", "d", "e"]
    record = {**campaign(members), "score": 40.0}
    decided = book.campaign(record, now_ms=MIN)
    assert {d["entity"] for d in decided if d["status"] == "active" and d["scope"] == "account"} == set(members)
    assert book.decisions["account:a"]["rule"] == "extraction_campaign"
    book.campaign(record, now_ms=7 * MIN)
    assert {book.decisions[f"account:{m}"]["action"] for m in members} == {"protect_reasoning"}
    book.campaign(record, now_ms=18 * MIN)
    assert {book.decisions[f"account:{m}"]["action"] for m in members} == {"throttle"}


def _stream(rng: random.Random, minutes: int) -> Iterator[dict[str, Any]]:
    """The detectors' organic world (300 accounts on their own /24s) and one account harvesting
    from its own address at about one request a minute."""
    for event in organic_stream(rng, minutes):
        yield event
        if rng.random() < 0.005:
            yield harvesting_event(rng, event["event_time_ms"], "solo", "203.0.113.0/24")


def test_the_harvester_is_protected_then_throttled_and_no_organic_request_is_refused_or_protected() -> None:
    rng = random.Random(11)
    detector = ExtractionDetector()
    windows = EntityWindows(WINDOW_MS, 5_000)
    book = EnforcementBook(shipped_policy())
    cache = DecisionCache()
    refused: dict[str, int] = {}
    protected: dict[str, int] = {}
    first_refusal_ms = first_protected_ms = None
    decided: dict[str, int] = {}  # action -> when first decided
    for event in _stream(rng, 135):
        now = event["event_time_ms"]
        verdict = cache.verdict(Identity(account=event["account_id"], ip_prefix=event["client_ip_prefix"]), now)
        if not verdict.admitted:
            refused[event["account_id"]] = refused.get(event["account_id"], 0) + 1
            first_refusal_ms = first_refusal_ms or now
        elif Protection.from_annotations(verdict.annotations) is not None:
            protected[event["account_id"]] = protected.get(event["account_id"], 0) + 1
            first_protected_ms = first_protected_ms or now
        detector.learn_event(event)
        for window in windows.add(event):
            for finding in detector.update(window):
                for decision in book.detection(finding.to_detection(0, window.end_ms), window.end_ms):
                    cache.apply(decision)
                    decided.setdefault(decision["action"], decision["decided_at_ms"])
    assert set(refused) == {"solo"} and set(protected) == {"solo"}, (refused, protected)
    solo = book.decisions["account:solo"]
    assert (solo["rule"], solo["action"]) == ("lone_harvester", "throttle")
    assert first_refusal_ms is not None and first_refusal_ms >= solo["decided_at_ms"]
    assert first_protected_ms is not None and first_protected_ms >= decided["protect_reasoning"]
    assert decided["protect_reasoning"] - decided["observe"] >= 30 * MIN  # observed for half an hour first
    assert decided["throttle"] - decided["protect_reasoning"] >= 60 * MIN  # then protected for an hour
