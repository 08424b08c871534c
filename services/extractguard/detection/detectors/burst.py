"""Burst: an entity's request count in a window far above what is normal for it.

Per entity (account, IP prefix, ASN, TLS fingerprint, prompt template) a River `EWMean` learns the
entity's own normal per-window volume; per entity kind a River `Quantile` learns how busy the
busiest entities of that kind normally are. A new or quiet entity is held to the kind's high
quantile, a known one to the larger of its own normal and that quantile. A window fires when the
count is both far above the expectation in Poisson terms (z >= threshold) and several times it
(ratio >= min_ratio), so big steady entities are not flagged for ordinary noise.

A campaign of many light accounts behind one proxy pool keeps every account under its rate limit,
but its prefixes, ASN and client fingerprint burst: those findings name the accounts behind them.

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
from typing import Any, ClassVar

from river import stats

from extractguard.detection.findings import Feature, Finding, Severity
from extractguard.detection.windows import ClosedWindow, EntityKey

KINDS = ("account", "ip_prefix", "asn", "tls_ja4", "template")


class _Baseline:
    __slots__ = ("last_window", "mean")

    def __init__(self, fading_factor: float) -> None:
        self.mean = stats.EWMean(fading_factor=fading_factor)
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
    ) -> None:
        self.threshold = threshold
        self.min_ratio = min_ratio
        self.min_requests = min_requests
        self.warmup_windows = warmup_windows
        self.fading_factor = fading_factor
        self.idle_windows_forgotten = idle_windows_forgotten
        self.kind_levels = {kind: stats.Quantile(kind_quantile) for kind in KINDS}
        self.baselines: dict[EntityKey, _Baseline] = {}
        self.windows_seen = 0

    def learn_event(self, event: dict[str, Any]) -> None:
        return None  # window-level only

    def expected(self, key: EntityKey) -> float:
        level = self.kind_levels[key[0]].get() or 0.0
        baseline = self.baselines.get(key)
        own = self._decayed(baseline) if baseline is not None else 0.0
        return max(own, level, 1.0)

    def _decayed(self, baseline: _Baseline) -> float:
        # Windows where the entity was absent count as zero requests.
        idle = self.windows_seen - baseline.last_window - 1
        return float(baseline.mean.get()) * (1 - self.fading_factor) ** max(idle, 0)

    def update(self, window: ClosedWindow) -> list[Finding]:
        findings: list[Finding] = []
        if self.windows_seen >= self.warmup_windows:
            for key, entity in window.entities.items():
                count = entity.requests
                if count < self.min_requests:
                    continue
                expected = self.expected(key)
                z = (count - expected) / math.sqrt(expected)
                if z >= self.threshold and count >= self.min_ratio * expected:
                    findings.append(self._finding(window, key, entity, expected, z))
        self._learn(window)
        return findings

    def _finding(self, window: ClosedWindow, key: EntityKey, entity: Any, expected: float, z: float) -> Finding:
        kind, name = key
        requests = entity.requests
        severity: Severity = "critical" if z >= 3 * self.threshold else "warning"
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
                f"from {len(entity.accounts)} accounts, {requests / expected:.1f}x the expected {expected:.1f}"
            ),
            features=[
                Feature("requests", requests, expected),
                Feature("distinct_accounts", len(entity.accounts)),
                Feature("output_tokens_per_request", entity.output_tokens / requests),
                Feature("logprobs_share", entity.logprobs / requests),
                Feature("cot_elicitation_share", entity.cot / requests),
            ],
            accounts=list(entity.accounts),
        )

    def _learn(self, window: ClosedWindow) -> None:
        for key, entity in window.entities.items():
            baseline = self.baselines.get(key)
            if baseline is None:
                baseline = self.baselines[key] = _Baseline(self.fading_factor)
            else:
                idle = self.windows_seen - baseline.last_window - 1
                for _ in range(min(idle, 16)):
                    baseline.mean.update(0)
            baseline.mean.update(entity.requests)
            baseline.last_window = self.windows_seen
            self.kind_levels[key[0]].update(entity.requests)
        self.windows_seen += 1
        if self.windows_seen % 32 == 0:
            horizon = self.windows_seen - self.idle_windows_forgotten
            self.baselines = {k: b for k, b in self.baselines.items() if b.last_window >= horizon}
