"""Detectors: one contract over all of them, then each one's promise on synthetic streams."""

from __future__ import annotations

import pickle
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from extractguard.detection.detectors import (
    BurstDetector,
    Detector,
    ExtractionDetector,
    LaunchDetector,
    MixDriftDetector,
)
from extractguard.detection.engine import DetectionEngine
from extractguard.detection.windows import EntityWindows
from extractguard.settings import DetectionSettings

WINDOW_MS = 60_000
START_MS = 1_795_000_000_000


def synthetic_event(rng: random.Random, ts: int, account: str, prefix: str, logprobs: bool = False) -> dict[str, Any]:
    """An ordinary chat request: follow-up turns, modest answers, an account a year old."""
    return {
        "event_time_ms": ts, "account_id": account, "client_ip_prefix": prefix, "client_asn": 64500,
        "tls_ja4": None, "input_tokens": rng.randint(10, 500), "output_tokens": rng.randint(10, 500),
        "request_logprobs": logprobs, "turn_index": rng.choice([0, 0, 1, 2, 3]), "request_model": "m-old",
        "account_created_ms": START_MS - 365 * 86_400_000,
        "prompt_sketch": {"template_hash": f"{rng.randrange(40):016x}", "cot_elicitation": False},
    }  # fmt: skip


def harvesting_event(rng: random.Random, ts: int, account: str, prefix: str) -> dict[str, Any]:
    """A harvesting request: single turn, long answer, logprobs, step-by-step, a day-old account."""
    return {
        **synthetic_event(rng, ts, account, prefix, logprobs=True), "turn_index": 0,
        "output_tokens": rng.randint(2000, 4000), "account_created_ms": START_MS - 86_400_000,
        "prompt_sketch": {"template_hash": f"{rng.getrandbits(64):016x}", "cot_elicitation": True},
    }  # fmt: skip


def organic_stream(rng: random.Random, minutes: int, accounts: int = 300) -> Iterator[dict[str, Any]]:
    """Stationary traffic: each account on its own /24, Poisson-ish arrivals, 1% logprobs."""
    rates = [min(rng.lognormvariate(-0.5, 1.0), 12) for _ in range(accounts)]
    for minute in range(minutes):
        events = []
        for i, rate in enumerate(rates):
            for _ in range(_poisson(rng, rate)):
                ts = START_MS + minute * WINDOW_MS + rng.randrange(WINDOW_MS)
                events.append(synthetic_event(rng, ts, f"o{i}", f"10.{i // 250}.{i % 250}.0/24", rng.random() < 0.01))
        yield from sorted(events, key=lambda e: e["event_time_ms"])


def _poisson(rng: random.Random, mean: float) -> int:
    count, total = 0, rng.expovariate(1.0)
    while total < mean:
        count += 1
        total += rng.expovariate(1.0)
    return count


def with_campaign(base: Iterator[dict[str, Any]], rng: random.Random, from_minute: int) -> Iterator[dict[str, Any]]:
    """Adds 100 accounts behind one /24 at 4 requests per minute each, all asking for logprobs."""
    start = START_MS + from_minute * WINDOW_MS
    for event in base:
        yield event
        if event["event_time_ms"] >= start and rng.random() < 0.6:
            for _ in range(1):
                account = f"c{rng.randrange(100)}"
                yield harvesting_event(rng, event["event_time_ms"], account, "185.220.101.0/24")


def _launch_at_minute_8() -> LaunchDetector:
    return LaunchDetector([("m-new", START_MS + 8 * WINDOW_MS)])


DETECTORS: list[Callable[[], Detector]] = [BurstDetector, MixDriftDetector, ExtractionDetector, _launch_at_minute_8]


def run(detector: Detector, events: Iterator[dict[str, Any]]) -> list[list[Any]]:
    windows = EntityWindows(WINDOW_MS, 5_000)
    per_window: list[list[Any]] = []
    for event in events:
        detector.learn_event(event)
        for window in windows.add(event):
            per_window.append(detector.update(window))
    return per_window


@pytest.mark.parametrize("make", DETECTORS, ids=lambda m: m.__name__)
def test_contract_protocol_determinism_and_checkpoint(make: Callable[[], Detector]) -> None:
    detector = make()
    assert isinstance(detector, Detector)
    assert detector.name and detector.version
    rng = random.Random(1)
    events = list(with_campaign(organic_stream(rng, 12), rng, from_minute=8))
    half = len(events) // 2
    uninterrupted = make()
    expected = run(uninterrupted, iter(events))
    # Same input, same output: and a checkpoint taken midway resumes exactly.
    first = make()
    windows = EntityWindows(WINDOW_MS, 5_000)
    got: list[list[Any]] = []
    for event in events[:half]:
        first.learn_event(event)
        got += [first.update(w) for w in windows.add(event)]
    restored, windows = pickle.loads(pickle.dumps((first, windows)))
    for event in events[half:]:
        restored.learn_event(event)
        got += [restored.update(w) for w in windows.add(event)]
    assert [[(f.entity, round(f.score, 9)) for f in w] for w in got] == [
        [(f.entity, round(f.score, 9)) for f in w] for w in expected
    ]


@pytest.mark.parametrize("make", DETECTORS, ids=lambda m: m.__name__)
def test_silent_over_a_long_stationary_stream(make: Callable[[], Detector]) -> None:
    findings = run(make(), organic_stream(random.Random(2), minutes=60))
    assert sum(len(w) for w in findings) == 0


def test_burst_fires_on_the_campaign_prefix_within_one_window_and_names_its_accounts() -> None:
    rng = random.Random(3)
    per_window = run(BurstDetector(), with_campaign(organic_stream(rng, 14), rng, from_minute=8))
    fired_at = next(i for i, w in enumerate(per_window) if w)
    assert fired_at == 8  # the first window the campaign is active in
    finding = per_window[fired_at][0]
    assert (finding.entity_kind, finding.entity) == ("ip_prefix", "185.220.101.0/24")
    assert all(a.startswith("c") for a in finding.accounts) and len(finding.accounts) > 30
    assert finding.score >= finding.threshold
    assert {f.name for f in finding.features} >= {"requests", "distinct_accounts"}
    flagged = {f.entity for w in per_window for f in w}
    assert not any(e.startswith("10.") or e.startswith("o") for e in flagged)


def test_drift_fires_when_the_logprobs_share_jumps() -> None:
    rng = random.Random(4)
    per_window = run(MixDriftDetector(), with_campaign(organic_stream(rng, 14), rng, from_minute=8))
    fired = [i for i, w in enumerate(per_window) if w]
    assert fired and 8 <= fired[0] <= 9
    finding = next(f for f in per_window[fired[0]] if f.entity == "logprobs_share")
    assert any(f.baseline is not None and f.value > f.baseline for f in finding.features)


def test_drift_fires_when_a_sweep_moves_the_template_mix_and_not_before() -> None:
    rng = random.Random(8)
    per_window = run(MixDriftDetector(), with_campaign(organic_stream(rng, 90), rng, from_minute=70))
    fired = [i for i, w in enumerate(per_window) if any(f.entity == "template_mix_divergence" for f in w)]
    assert fired and 70 <= fired[0] <= 80, fired  # KSWIN tests the last 10 windows against the 30 before
    finding = next(f for f in per_window[fired[0]] if f.entity == "template_mix_divergence")
    value = finding.features[0]
    assert value.baseline is not None and value.value - value.baseline >= 0.15


def test_extraction_names_the_harvesting_accounts_within_four_windows_and_only_them() -> None:
    rng = random.Random(6)
    per_window = run(ExtractionDetector(), with_campaign(organic_stream(rng, 20), rng, from_minute=8))
    flagged = {f.entity for w in per_window for f in w}
    assert not any(w for w in per_window[:8])
    assert len({f.entity for w in per_window[8:12] for f in w}) >= 40  # within 4 windows of the start
    assert len(flagged) >= 90 and all(a.startswith("c") for a in flagged)  # of the 100, and no one else
    finding = next(f for w in per_window for f in w)
    tells = {f.name: f for f in finding.features}
    assert tells["output_heavy"].value > tells["output_heavy"].baseline  # type: ignore[operator]
    assert finding.score >= finding.threshold
    assert finding.expected_false_alarms_per_day == 0.0  # the benign reference never reached the threshold


def test_volume_alone_does_not_page_a_burst_of_ordinary_accounts() -> None:
    from extractguard.detection.behaviour import AccountBehaviour

    def surge(harvest: bool) -> list[Any]:
        rng = random.Random(7)
        behaviour = AccountBehaviour()
        burst = BurstDetector(behaviour=behaviour)
        make = harvesting_event if harvest else synthetic_event
        events = organic_stream(rng, 14)
        start = START_MS + 8 * WINDOW_MS

        def mixed() -> Iterator[dict[str, Any]]:
            for event in events:
                yield event
                if event["event_time_ms"] >= start and rng.random() < 0.6:
                    yield make(rng, event["event_time_ms"], f"c{rng.randrange(100)}", "185.220.101.0/24")

        windows = EntityWindows(WINDOW_MS, 5_000)
        found = []
        for event in mixed():
            behaviour.learn_event(event)
            for window in windows.add(event):
                found += [f for f in burst.update(window) if f.entity == "185.220.101.0/24"]
        return found

    ordinary, harvesting = surge(harvest=False), surge(harvest=True)
    assert ordinary and {f.severity for f in ordinary} == {"info"}  # seen and recorded, not paged
    assert harvesting and "info" not in {f.severity for f in harvesting[1:]}


def test_engine_checkpoint_restores_the_same_future_detections() -> None:
    rng = random.Random(5)
    events = list(with_campaign(organic_stream(rng, 12), rng, from_minute=8))
    settings = DetectionSettings()
    whole = DetectionEngine(settings).process(events, partition=0)
    first = DetectionEngine(settings)
    cut = len(events) * 2 // 3
    part1 = first.process(events[:cut], partition=0)
    resumed = DetectionEngine.restore(first.checkpoint(), settings)
    part2 = resumed.process(events[cut:], partition=0)
    assert whole, "the campaign must be detected for this test to mean anything"
    assert part1 + part2 == whole


def test_verdicts_teach_the_extraction_score_what_the_tells_alone_miss() -> None:
    def stream() -> Iterator[dict[str, Any]]:
        # Aged accounts, no step-by-step, Poisson pacing: alone, their score stays under the bar.
        rng = random.Random(8)
        start = START_MS + 5 * WINDOW_MS
        for event in organic_stream(rng, 40):
            yield event
            if event["event_time_ms"] >= start and rng.random() < 0.5:
                harvest = harvesting_event(rng, event["event_time_ms"], f"c{rng.randrange(60)}", "185.220.101.0/24")
                harvest["account_created_ms"] = START_MS - 400 * 86_400_000
                harvest["prompt_sketch"] = {**harvest["prompt_sketch"], "cot_elicitation": False}
                harvest["request_logprobs"] = rng.random() < 0.3
                harvest["output_tokens"] = rng.choice([rng.randint(1200, 3000), rng.randint(100, 600)])
                yield harvest

    def flagged(verdicts: dict[str, bool] | None) -> set[str]:
        detector = ExtractionDetector()
        detector.verdicts = verdicts
        return {f.entity for w in run(detector, stream()) for f in w}

    unsupervised = flagged(None)
    campaign = {f"c{i}" for i in range(60)}
    # Verdicts on a third of the campaign's accounts and on some organic ones.
    verdicts = {f"c{i}": True for i in range(20)} | {f"o{i}": False for i in range(0, 300, 3)}
    taught = flagged(verdicts)
    assert len(unsupervised & campaign) < 10
    assert len(taught & campaign) >= 50  # including the accounts nobody gave a verdict on
    assert len(taught & (campaign - set(verdicts))) >= 30
    assert not {a for a in taught if a.startswith("o")}


def test_a_launch_surge_is_expected_and_a_lockstep_cohort_still_stands_out() -> None:
    from extractguard.detection.behaviour import AccountBehaviour

    launch_ms, pivot_ms = START_MS + 10 * WINDOW_MS, START_MS + 15 * WINDOW_MS

    def stream() -> Iterator[dict[str, Any]]:
        rng = random.Random(9)
        for event in organic_stream(rng, 40):
            if event["event_time_ms"] >= launch_ms and rng.random() < 0.05:
                event["request_model"] = "m-new"  # organic users try it, a little
            yield event
            if event["event_time_ms"] >= START_MS + 5 * WINDOW_MS and rng.random() < 0.3:
                pivoted = event["event_time_ms"] >= pivot_ms and rng.random() < 0.5
                yield {**synthetic_event(rng, event["event_time_ms"], f"c{rng.randrange(40)}", "185.220.101.0/24"),
                       "request_model": "m-new" if pivoted else "m-old",
                       "account_created_ms": START_MS - 86_400_000}  # fmt: skip

    behaviour = AccountBehaviour()
    launches = LaunchDetector([("m-new", launch_ms)], behaviour=behaviour)
    burst = BurstDetector(behaviour=behaviour, launches=launches)
    windows = EntityWindows(WINDOW_MS, 5_000)
    cohorts, surges = [], []
    for event in stream():
        behaviour.learn_event(event)
        launches.learn_event(event)
        for window in windows.add(event):
            cohorts += [(window.start_ms, f) for f in launches.update(window)]
            surges += [f for f in burst.update(window) if f.entity == "m-new"]
    assert cohorts, "the lockstep cohort must be found"
    first_ms, first = cohorts[0]
    assert first_ms - pivot_ms <= 10 * WINDOW_MS
    assert len(first.accounts) >= 10 and all(a.startswith("c") for a in first.accounts)
    assert not {a for _, f in cohorts for a in f.accounts if a.startswith("o")}
    assert all(f.severity == "info" for f in surges)  # the surge on the new model pages no one


def test_a_nightly_job_bursts_the_first_night_only_and_a_new_jump_still_fires() -> None:
    rng = random.Random(10)
    day0 = START_MS - START_MS % 86_400_000

    def stream() -> Iterator[dict[str, Any]]:
        for minute in range(3 * 1440):
            ts = day0 + minute * WINDOW_MS
            hour = minute % 1440 // 60
            events = [synthetic_event(rng, ts + rng.randrange(WINDOW_MS), f"o{i}", f"10.0.{i}.0/24") for i in range(10)]
            if hour == 2 and minute % 60 < 30:  # the batch job, 02:00-02:30 every night
                events += [synthetic_event(rng, ts + j * 500, "batch", "10.9.9.0/24") for j in range(100)]
            if minute == 2 * 1440 + 14 * 60:  # one jump, once, at 14:00 on the third day
                events += [synthetic_event(rng, ts + j * 300, "o3", "10.0.3.0/24") for j in range(150)]
            yield from sorted(events, key=lambda e: e["event_time_ms"])

    per_window = run(BurstDetector(), stream())
    nights = {
        day: [
            f for w in per_window for f in w if f.entity == "batch" and (f.window_start_ms - day0) // 86_400_000 == day
        ]
        for day in range(3)
    }
    assert nights[0] and not nights[1] and not nights[2]
    jump = [f for w in per_window for f in w if f.entity == "o3"]
    assert len(jump) == 1 and (jump[0].window_start_ms - day0) // 3_600_000 == 2 * 24 + 14
