"""A gateway that gives no ASN, org, signup date or prompt (gateway_event v2) still gets every
event counted and scored, and what it did not give is no entity: not one shared ASN or org, no
template of the empty prompt, no link fingerprint."""

from __future__ import annotations

import random
from typing import Any

from extractguard.detection.engine import DetectionEngine
from extractguard.settings import DetectionSettings
from tests.unit.test_detectors import organic_stream, with_campaign

ABSENT = ("client_asn", "org_id", "account_created_ms")


def _stream(drop_sketch: bool) -> list[dict[str, Any]]:
    rng = random.Random(5)
    events = list(with_campaign(organic_stream(rng, 12), rng, from_minute=8))
    for event in events:
        for name in ABSENT:
            event.pop(name, None)
        if drop_sketch:
            event.pop("prompt_sketch", None)
    return events


def test_events_without_asn_org_or_signup_date_are_scored_and_make_no_shared_entity() -> None:
    events = _stream(drop_sketch=False)
    engine = DetectionEngine(DetectionSettings())
    detections = engine.process(events, partition=0)
    assert engine.events_seen == len(events)
    assert detections, "the campaign is still found from what the gateway did give"
    assert {d["entity_kind"] for d in detections} <= {"account", "ip_prefix", "api_key", "model", "template", "sdk",
                                                      "tls_ja4", "global"}  # fmt: skip
    fingerprints = {fp for _, _, shares, _ in engine.take_link_shares() for fp, _, _ in shares}
    assert fingerprints and not {fp for fp in fingerprints if fp.startswith(("asn:", "signup_cohort:"))}


def test_events_without_a_prompt_sketch_are_counted_without_a_template() -> None:
    events = _stream(drop_sketch=True)
    engine = DetectionEngine(DetectionSettings())
    closed = []
    for event in events:
        engine.behaviour.learn_event(event)
        closed += engine.windows.add(event)
    assert closed and all(not window.of_kind("template") for window in closed)
    assert sum(s.requests for w in closed for s in w.of_kind("account").values()) > 0
    assert not any(w.of_kind("asn") or w.of_kind("org") for w in closed)
    engine = DetectionEngine(DetectionSettings())
    engine.process(events, partition=0)  # every detector takes them
    assert engine.events_seen == len(events)
