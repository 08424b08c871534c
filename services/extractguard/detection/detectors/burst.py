"""Burst: an entity's request count in a window far above what is normal for it.

Per entity (account, IP prefix, ASN, TLS fingerprint, prompt template) a River `EWMean` learns the
entity's own normal per-window volume; per entity kind a River `Quantile` learns how busy the
busiest entities of that kind normally are. A new or quiet entity is held to the kind's high
quantile, a known one to the larger of its own normal and that quantile. An entity that has
burst once also gets a time-of-day memory — its usual count at each hour, learnt from then on —
so a job scheduled every night is a burst the first night and expected after. A window fires when the
count is both far above the expectation in Poisson terms (z >= threshold) and several times it
(ratio >= min_ratio), so big steady entities are not flagged for ordinary noise.

A campaign of many light accounts behind one proxy pool keeps every account under its rate limit,
but its prefixes, ASN and client fingerprint burst: those findings name the accounts behind them.

Volume alone does not page: a viral launch or a nightly batch job bursts too. A burst is a
`warning` (or `critical`) only when at least `shaped_share` of the accounts behind it behave in an
extraction-shaped way (see `AccountBehaviour`), and then it names those accounts; otherwise it is
recorded as `info`, visible in ClickHouse but below the alert rules. The rate of such benign
bursts per day of event time is the false-alarm figure every burst finding states.

>>> from extractguard.detection.windows import ClosedWindow, EntityStats
>>> burst = BurstDetector(threshold=8, warmup_windows=2)
>>> def window(i, n):
...     stats = {("ip_prefix", f"10.0.{p}.0/24"): EntityStats(requests=5, accounts={f"a{p}"}) for p in range(50)}
...     stats[("ip_prefix", "198.51.100.0/24")] = EntityStats(requests=n, accounts={"x1", "x2"})
...     return ClosedWindow(i * 60_000, (i + 1) * 60_000, stats, 250 + n)
>>> [len(burst.update(window(i, 5))) for i in range(5)]
[0, 0, 0, 0, 0]
>>> [f.entity for f in burst.update(window(5, 400))]
['198.51.100.0/24']
"""

from __future__ import annotations

import math
from array import array
from typing import Any, ClassVar

from river import stats

from extractguard.contracts.findings import BenignRate, Feature, Finding, Severity
from extractguard.detection.behaviour import DAY_MS, AccountBehaviour
from extractguard.detection.detectors.launch import LaunchDetector
from extractguard.detection.detectors.registry import DetectorContext, register
from extractguard.detection.windows import ENTITY_KINDS, ClosedWindow, EntityKey

KINDS = ENTITY_KINDS


def _hour(ts: int) -> int:
    return (ts // 3_600_000) % 24


class _Baseline:
    """An entity's exponentially weighted mean per-window count, as River's `EWMean` computes it
    (the first value starts it; then mean += fading_factor * (x - mean)), kept as a bare float
    because there is one per entity and millions of entities: an object per entity would cost
    ten times the memory and the time."""

    __slots__ = ("last_window", "mean")

    def __init__(self) -> None:
        self.mean = 0.0
        self.last_window = -1


class BurstDetector:
    name: ClassVar[str] = "burst"
    version: ClassVar[str] = "1"

    def __init__(
        self,
        threshold: float = 8.0,
        min_ratio: float = 3.0,
        min_requests: int = 20,
        warmup_windows: int = 3,
        fading_factor: float = 0.2,
        kind_quantile: float = 0.99,
        idle_windows_forgotten: int = 120,
        behaviour: AccountBehaviour | None = None,
        shaped_share: float = 0.5,
        launches: LaunchDetector | None = None,
        daily_memory_days: float = 8.0,
    ) -> None:
        self.behaviour = behaviour
        self.launches = launches
        # Entities that burst: per hour of the day, their usual count (kept `daily_memory_days`).
        self.daily: dict[EntityKey, tuple[list[float], int]] = {}
        self.daily_alpha = 0.3
        self.daily_memory_ms = int(daily_memory_days * DAY_MS)
        self.shaped_share = shaped_share
        self.benign = BenignRate()  # findings on non-extraction-shaped traffic: the false-alarm rate
        self.threshold = threshold
        self.min_ratio = min_ratio
        self.min_requests = min_requests
        self.warmup_windows = warmup_windows
        self.fading_factor = fading_factor
        self.idle_windows_forgotten = idle_windows_forgotten
        self.kind_levels = {kind: stats.Quantile(kind_quantile) for kind in KINDS}
        self.baselines: dict[EntityKey, _Baseline] = {}
        self.windows_seen = 0

    def __getstate__(self) -> dict[str, Any]:
        # Checkpoints pickle the engine every few seconds, and pickling one slotted object per
        # entity was most of that time: the baselines go as a key list and two arrays instead.
        state = self.__dict__.copy()
        baselines = self.baselines.values()
        state["baselines"] = (
            list(self.baselines),
            array("d", [b.mean for b in baselines]),
            array("q", [b.last_window for b in baselines]),
        )
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        keys, means, last_windows = state["baselines"]
        baselines: dict[EntityKey, _Baseline] = {}
        for key, mean, last_window in zip(keys, means, last_windows, strict=True):
            baseline = baselines[key] = _Baseline()
            baseline.mean, baseline.last_window = mean, last_window
        self.__dict__.update(state)
        self.baselines = baselines

    def learn_event(self, event: dict[str, Any]) -> None:
        return None  # window-level only

    def expected(self, key: EntityKey, hour: int | None = None) -> float:
        level = self.kind_levels[key[0]].get() or 0.0
        baseline = self.baselines.get(key)
        own = self._decayed(baseline) if baseline is not None else 0.0
        daily = self.daily.get(key)
        usual = daily[0][hour] if daily is not None and hour is not None else 0.0
        return max(own, level, usual, 1.0)

    def _decayed(self, baseline: _Baseline) -> float:
        # Windows where the entity was absent count as zero requests.
        idle = self.windows_seen - baseline.last_window - 1
        return baseline.mean * (1 - self.fading_factor) ** max(idle, 0)

    def update(self, window: ClosedWindow) -> list[Finding]:
        self.benign.observe(window.start_ms, window.end_ms)
        findings: list[Finding] = []
        hour = _hour(window.start_ms)
        if self.windows_seen >= self.warmup_windows:
            for key, entity in window.items():
                count = entity.requests
                if count < self.min_requests:
                    continue
                expected = self.expected(key, hour)
                z = (count - expected) / math.sqrt(expected)
                if z >= self.threshold and count >= self.min_ratio * expected:
                    findings.append(self._finding(window, key, entity, expected, z))
        self._learn(window)
        return findings

    def _finding(self, window: ClosedWindow, key: EntityKey, entity: Any, expected: float, z: float) -> Finding:
        kind, name = key
        # From now on, remember what is usual for this entity at each hour of the day: a job that
        # runs every night at two bursts the first night and is expected the next.
        daily = self.daily.get(key)
        self.daily[key] = ([0.0] * 24 if daily is None else daily[0], window.end_ms)
        requests = entity.requests
        severity: Severity = "critical" if z >= 3 * self.threshold else "warning"
        # Name the accounts that make the burst suspicious: an on-call engineer acts on them, and the
        # ordinary accounts behind a busy model or ASN are not suspects.
        named = self.behaviour.shaped(entity.accounts) if self.behaviour is not None else list(entity.accounts)
        shaped = len(named) / len(entity.accounts) if entity.accounts else 0.0
        surge = kind == "model" and self.launches is not None and self.launches.expected_surge(name, window.start_ms)
        if shaped < self.shaped_share or surge:
            # A surge on a freshly launched model is expected; who moves to it is the launch detector's question.
            severity = "info"
            self.benign.count()
            named = list(entity.accounts)
        return Finding(
            detector=self.name,
            detector_version=self.version,
            entity_kind=kind,
            entity=name,
            score=z,
            threshold=self.threshold,
            window_start_ms=window.start_ms,
            window_end_ms=window.end_ms,
            severity=severity,
            summary=(
                f"{kind} {name}: {requests} requests in {(window.end_ms - window.start_ms) // 1000}s "
                f"from {len(entity.accounts)} accounts, {requests / expected:.1f}x the expected {expected:.1f}; "
                f"{shaped:.0%} of the accounts extraction-shaped{'; expected after its launch' if surge else ''}"
            ),
            features=[
                Feature("requests", requests, expected),
                Feature("distinct_accounts", len(entity.accounts)),
                Feature("output_tokens_per_request", entity.output_tokens / requests),
                Feature("logprobs_share", entity.logprobs / requests),
                Feature("cot_elicitation_share", entity.cot / requests),
                Feature("extraction_shaped_share", shaped, self.shaped_share),
            ],
            accounts=named,
            expected_false_alarms_per_day=self.benign.per_day(),
        )

    def _learn(self, window: ClosedWindow) -> None:
        hour = _hour(window.start_ms)
        alpha = self.fading_factor
        keep = 1 - alpha
        baselines = self.baselines
        levels = self.kind_levels
        seen = self.windows_seen
        for key, entity in window.items():
            count = entity.requests
            baseline = baselines.get(key)
            if baseline is None:
                baseline = baselines[key] = _Baseline()
                baseline.mean = float(count)
            else:
                idle = seen - baseline.last_window - 1
                mean = baseline.mean * keep ** min(idle, 16) if idle > 0 else baseline.mean  # absent = zeros
                baseline.mean = mean + alpha * (count - mean)
            baseline.last_window = seen
            levels[key[0]].update(count)
            daily = self.daily.get(key)
            if daily is not None:
                profile = daily[0]
                profile[hour] += self.daily_alpha * (count - profile[hour])
        self.windows_seen += 1
        if self.windows_seen % 32 == 0:
            horizon = self.windows_seen - self.idle_windows_forgotten
            self.baselines = {k: b for k, b in self.baselines.items() if b.last_window >= horizon}
            since = window.end_ms - self.daily_memory_ms
            self.daily = {k: d for k, d in self.daily.items() if d[1] >= since}


@register("burst")
def _build(context: DetectorContext) -> BurstDetector:
    return BurstDetector(
        threshold=context.settings.burst_threshold,
        behaviour=context.behaviour,
        launches=context.get("launch", LaunchDetector),
    )
