"""A detector's finding, and its conversion to a Detection (schema v1) for the detections topic."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["info", "warning", "critical"]

#: Evidence keeps at most this many accounts; `accounts_total` says how many there were.
MAX_EVIDENCE_ACCOUNTS = 5000


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    value: float
    baseline: float | None = None


@dataclass(slots=True)
class Finding:
    detector: str
    detector_version: str
    entity_kind: str
    entity: str
    score: float
    threshold: float
    window_start_ms: int
    window_end_ms: int
    severity: Severity
    summary: str
    features: list[Feature] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    #: Measured on benign traffic at this threshold; None when the detector has not seen enough yet.
    expected_false_alarms_per_day: float | None = None

    def detection_id(self, partition: int) -> str:
        # Deterministic: the same input replayed yields the same id, so downstream dedup works.
        key = f"{self.detector}|{self.entity_kind}|{self.entity}|{self.window_start_ms}|{partition}"
        return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()

    def to_detection(self, partition: int, detected_at_ms: int) -> dict[str, Any]:
        accounts = sorted(self.accounts)
        return {
            "schema_version": 1,
            "detection_id": self.detection_id(partition),
            "detector": self.detector,
            "detector_version": self.detector_version,
            "entity_kind": self.entity_kind,
            "entity": self.entity[:256],
            "score": round(self.score, 4),
            "threshold": self.threshold,
            "window_start_ms": self.window_start_ms,
            "window_end_ms": self.window_end_ms,
            "detected_at_ms": detected_at_ms,
            "severity": self.severity,
            "evidence": {
                "summary": self.summary[:1024],
                "features": [
                    {
                        "name": f.name,
                        "value": round(f.value, 6),
                        "baseline": None if f.baseline is None else round(f.baseline, 6),
                    }
                    for f in self.features
                ],
                "accounts": accounts[:MAX_EVIDENCE_ACCOUNTS],
                "accounts_total": len(accounts),
                "expected_false_alarms_per_day": self.expected_false_alarms_per_day,
            },
        }


@dataclass(slots=True)
class BenignRate:
    """How often a detector fires on traffic that is not extraction-shaped, per day of event time:
    the false alarms to expect at its threshold. None until an hour of event time has been seen.

    >>> rate = BenignRate()
    >>> rate.observe(0, 60_000); rate.observe(7_140_000, 7_200_000); rate.count()
    >>> rate.per_day()
    12.0
    """

    events: int = 0
    first_ms: int | None = None
    last_ms: int = 0

    def observe(self, window_start_ms: int, window_end_ms: int) -> None:
        if self.first_ms is None:
            self.first_ms = window_start_ms
        self.last_ms = window_end_ms

    def count(self) -> None:
        self.events += 1

    def per_day(self) -> float | None:
        if self.first_ms is None or self.last_ms - self.first_ms < 3_600_000:
            return None
        return round(self.events * 86_400_000 / (self.last_ms - self.first_ms), 3)
