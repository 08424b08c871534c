"""One contract, every detector: the checks run over each name the registry holds (as river's
`estimator_checks` run over every estimator), so a new detector module is covered by adding it."""

from __future__ import annotations

import pickle
from functools import cache
from typing import Any

import orjson
import pytest

from extractguard.contracts.detectors import STREAM_DETECTORS
from extractguard.contracts.schemas import decode_valid, validate
from extractguard.detection.detectors import Detector, registered
from extractguard.detection.detectors.registry import UnknownDetector
from extractguard.detection.engine import DetectionEngine
from extractguard.gateway.events import build_event
from extractguard.settings import DetectionSettings
from extractguard.simulator.scenario import CampaignSpec, ModelLaunch, OrganicSpec
from extractguard.simulator.traffic import Scenario, generate

START_MS = 1_795_000_000_000 - 1_795_000_000_000 % 86_400_000
SCENARIO = Scenario(
    duration_s=1200,
    organic=OrganicSpec(accounts=150),
    launch=ModelLaunch(at_s=300),
    campaigns=[CampaignSpec(name="c", accounts=150, start_s=600, rate_per_min=6.0)],
)
#: Detectors the small stream above must make speak (the launch detector needs a day-scale cohort).
SPEAKS = {"burst", "mix_drift", "extraction"}


@cache
def _events() -> tuple[dict[str, Any], ...]:
    return tuple(
        decode_valid("gateway_event", orjson.dumps(build_event(r, b"k"))) for _, r in generate(SCENARIO, START_MS)
    )


def _settings(name: str) -> DetectionSettings:
    launches = [{"model": SCENARIO.launch.model, "at_ms": START_MS + 300_000}] if SCENARIO.launch else []
    return DetectionSettings(detectors=[name], launches=launches, link_accounts=False)  # type: ignore[arg-type]


def _run(engine: DetectionEngine, events: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    detections: list[dict[str, Any]] = []
    for i in range(0, len(events), 500):
        detections += engine.process([dict(e) for e in events[i : i + 500]], 0, offset=i)
    return detections


def test_the_registry_is_the_declared_list_in_build_order() -> None:
    assert registered() == STREAM_DETECTORS


def test_an_unknown_detector_is_refused_naming_the_registered_ones() -> None:
    with pytest.raises(UnknownDetector, match="burst"):
        DetectionEngine(DetectionSettings(detectors=["no_such_detector"]))


@pytest.mark.parametrize("name", registered())
def test_detector_contract(name: str) -> None:
    engine = DetectionEngine(_settings(name))
    (detector,) = engine.detectors
    assert isinstance(detector, Detector) and detector.name == name and detector.version
    events = _events()
    detections = _run(engine, events)
    if name in SPEAKS:
        assert detections, f"{name} found nothing in a stream with a campaign in it"
    for detection in detections:
        assert detection["detector"] == name
        validate("detection", detection)  # the contract of the detections topic
        assert detection["threshold"] is not None and detection["evidence"]

    # Deterministic, and the whole state checkpoints: half, pickled and restored, then the rest,
    # gives exactly the detections of an uninterrupted run.
    half = len(events) // 2
    first = DetectionEngine(_settings(name))
    before = _run(first, events[:half])
    restored = DetectionEngine.restore(first.checkpoint(), _settings(name))
    assert restored is not first and restored.detectors[0].name == name
    after = _run(restored, events[half:])
    assert [d["detection_id"] for d in before + after] == [d["detection_id"] for d in detections]
    assert pickle.loads(pickle.dumps(detector)).name == name
