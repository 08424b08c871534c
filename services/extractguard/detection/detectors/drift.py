"""Mix drift: the share of extraction-shaped requests in the whole traffic moves.

One River ADWIN per statistic (share of requests asking for logprobs, share eliciting step-by-step
reasoning) sees every event as 0 or 1. ADWIN flags a change in the mean when two sub-windows
differ beyond its confidence bound; we report it only when the shift is also large in absolute
terms (`min_effect`), because on a busy stream ADWIN can prove changes too small to matter.
The finding names the accounts that drove the shift in the window where it was seen.

>>> drift = MixDriftDetector(min_effect=0.1)
>>> from extractguard.detection.windows import ClosedWindow
>>> event = {"request_logprobs": False, "prompt_sketch": {"cot_elicitation": False}}
>>> for _ in range(3000): drift.learn_event(event)
>>> drift.update(ClosedWindow(0, 60_000, {}, 3000))
[]
>>> shifted = {"request_logprobs": True, "prompt_sketch": {"cot_elicitation": False}}
>>> for _ in range(1000): drift.learn_event(shifted)
>>> [f.entity for f in drift.update(ClosedWindow(60_000, 120_000, {}, 1000))]
['logprobs_share']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from river import drift

from extractguard.detection.findings import Feature, Finding
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

    def __init__(self, delta: float = 0.002, min_effect: float = 0.05, account_min_share: float = 0.5) -> None:
        self.delta = delta
        self.min_effect = min_effect
        self.account_min_share = account_min_share
        self.detectors = {name: drift.ADWIN(delta=delta) for name in STATISTICS}
        # statistic -> (mean before, mean after) of drifts seen since the last window closed
        self.pending: dict[str, tuple[float, float]] = {}

    def learn_event(self, event: dict[str, Any]) -> None:
        for name, statistic in STATISTICS.items():
            detector = self.detectors[name]
            before = detector.estimation
            detector.update(statistic(event))
            if detector.drift_detected:
                after = detector.estimation
                first_before = self.pending.get(name, (before, after))[0]
                self.pending[name] = (first_before, after)

    def update(self, window: ClosedWindow) -> list[Finding]:
        findings = []
        for name, (before, after) in sorted(self.pending.items()):
            effect = after - before
            if abs(effect) < self.min_effect:
                continue
            findings.append(self._finding(window, name, before, after))
        self.pending.clear()
        return findings

    def _finding(self, window: ClosedWindow, name: str, before: float, after: float) -> Finding:
        count = _ACCOUNT_COUNTS[name]
        drivers = [
            key[1]
            for key, stats in window.entities.items()
            if key[0] == "account" and stats.requests >= 3 and count(stats) >= self.account_min_share * stats.requests
        ] if after > before else []
        return Finding(
            detector=self.name,
            detector_version=self.version,
            entity_kind="global",
            entity=name,
            score=abs(after - before),
            threshold=self.min_effect,
            window_start_ms=window.start_ms,
            window_end_ms=window.end_ms,
            severity="warning",
            summary=(
                f"{name.replace('_', ' ')} moved from {before:.1%} to {after:.1%} of all requests; "
                f"{len(drivers)} accounts drove it in this window"
            ),
            features=[Feature(name, after, before), Feature("window_requests", window.requests)],
            accounts=drivers,
        )
