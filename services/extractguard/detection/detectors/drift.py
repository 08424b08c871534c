"""Mix drift: the share of extraction-shaped requests in the whole traffic moves.

One River ADWIN per statistic (share of requests asking for logprobs, share eliciting step-by-step
reasoning) sees every event as 0 or 1. ADWIN flags a change in the mean when two sub-windows
differ beyond its confidence bound. The size of the change is measured as the share in the window
where ADWIN noticed it against ADWIN's estimate just before, and reported only when it is also
large in absolute terms (`min_effect`): on a busy stream ADWIN can prove changes too small to matter.
The finding names the accounts that drove the shift in the window where it was seen: those that
used the statistic in at least half their requests and whose behaviour is extraction-shaped. A
shift with fewer than `min_drivers` such accounts is recorded as `info` (a benchmark run or a
launch moves the mix too); the rate of those per day is the false-alarm figure it states.

>>> from extractguard.detection.windows import ClosedWindow, EntityStats
>>> drift = MixDriftDetector(min_effect=0.1, min_drivers=1)
>>> quiet = {"event_time_ms": 1_000, "request_logprobs": False, "prompt_sketch": {}}
>>> for _ in range(3000): drift.learn_event(quiet)
>>> drift.update(ClosedWindow(0, 60_000, {("account", "a1"): EntityStats(requests=3000)}, 3000))
[]
>>> harvest = {"event_time_ms": 61_000, "request_logprobs": True, "prompt_sketch": {}}
>>> for _ in range(1000): drift.learn_event(harvest)
>>> window = ClosedWindow(60_000, 120_000, {("account", "x1"): EntityStats(requests=1000, logprobs=1000)}, 1000)
>>> [(f.entity, f.accounts) for f in drift.update(window)]
[('logprobs_share', ['x1'])]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from river import drift

from extractguard.detection.behaviour import DAY_MS, AccountBehaviour
from extractguard.detection.findings import Feature, Finding, Severity
from extractguard.detection.windows import ClosedWindow, EntityStats

STATISTICS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "logprobs_share": lambda e: bool(e["request_logprobs"]),
    "cot_elicitation_share": lambda e: bool(e["prompt_sketch"].get("cot_elicitation", False)),
}
_ACCOUNT_COUNTS: dict[str, Callable[[EntityStats], int]] = {
    "logprobs_share": lambda s: s.logprobs,
    "cot_elicitation_share": lambda s: s.cot,
}


class MixDriftDetector:
    name: ClassVar[str] = "mix_drift"
    version: ClassVar[str] = "1"

    def __init__(
        self,
        delta: float = 0.002,
        min_effect: float = 0.05,
        account_min_share: float = 0.5,
        behaviour: AccountBehaviour | None = None,
        min_drivers: int = 3,
    ) -> None:
        self.behaviour = behaviour
        self.min_drivers = min_drivers
        self.benign_shifts = 0
        self.first_window_ms: int | None = None
        self.last_window_ms = 0
        self.delta = delta
        self.min_effect = min_effect
        self.account_min_share = account_min_share
        self.detectors = {name: drift.ADWIN(delta=delta) for name in STATISTICS}
        # statistic -> (mean before the drift, event time at which ADWIN flagged it)
        self.pending: dict[str, tuple[float, int]] = {}

    def learn_event(self, event: dict[str, Any]) -> None:
        for name, statistic in STATISTICS.items():
            detector = self.detectors[name]
            before = detector.estimation
            detector.update(statistic(event))
            if detector.drift_detected and name not in self.pending:
                self.pending[name] = (before, event["event_time_ms"])

    def benign_shifts_per_day(self) -> float | None:
        if self.first_window_ms is None or self.last_window_ms - self.first_window_ms < 3_600_000:
            return None
        return round(self.benign_shifts * DAY_MS / (self.last_window_ms - self.first_window_ms), 3)

    def update(self, window: ClosedWindow) -> list[Finding]:
        if self.first_window_ms is None:
            self.first_window_ms = window.start_ms
        self.last_window_ms = window.end_ms
        findings = []
        for name, (before, flagged_ms) in sorted(self.pending.items()):
            if flagged_ms >= window.end_ms:
                continue  # flagged in a window that is still open
            del self.pending[name]
            count = _ACCOUNT_COUNTS[name]
            hits = sum(count(stats) for key, stats in window.entities.items() if key[0] == "account")
            share = hits / window.requests if window.requests else 0.0
            if abs(share - before) >= self.min_effect:
                findings.append(self._finding(window, name, before, share))
        return findings

    def _finding(self, window: ClosedWindow, name: str, before: float, after: float) -> Finding:
        count = _ACCOUNT_COUNTS[name]
        behaviour = self.behaviour
        threshold = behaviour.threshold() if behaviour is not None else 0.0
        drivers = (
            [
                key[1]
                for key, stats in window.entities.items()
                if key[0] == "account"
                and count(stats) >= self.account_min_share * stats.requests
                and count(stats) > 0
                and (behaviour is None or (behaviour.scoreable(key[1]) and behaviour.score(key[1]) >= threshold))
            ]
            if after > before
            else []
        )
        severity: Severity = "warning"
        if len(drivers) < self.min_drivers:
            severity = "info"
            self.benign_shifts += 1
        return Finding(
            detector=self.name,
            detector_version=self.version,
            entity_kind="global",
            entity=name,
            score=abs(after - before),
            threshold=self.min_effect,
            window_start_ms=window.start_ms,
            window_end_ms=window.end_ms,
            severity=severity,
            summary=(
                f"{name.replace('_', ' ')} moved from {before:.1%} to {after:.1%} of all requests; "
                f"{len(drivers)} extraction-shaped accounts drove it in this window"
            ),
            features=[Feature(name, after, before), Feature("window_requests", window.requests)],
            accounts=drivers,
            expected_false_alarms_per_day=self.benign_shifts_per_day(),
        )
