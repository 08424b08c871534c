"""Silences and maintenance windows: alerts they match are kept (alerts topic, ClickHouse) but
not sent to on-call while the silence is in force.

A silence names any of a rule, an entity kind, an entity and labels; an alert matches when every
one given equals the alert's. Silences travel on the compacted `alert.silences` topic (the newest
version of an id wins, so expiring is republishing with the end set to now), land in ClickHouse's
`alert_silences`, and the alerter reads the ones in force from there every `silences_refresh_s`.

>>> s = Silence.new(rule="model_burst", entity="m-3", duration_s=3600, reason="launch", created_by="me", now_ms=0)
>>> s.matches({"rule": "model_burst", "entity_kind": "model", "entity": "m-3", "labels": {}}, now_ms=10)
True
>>> s.matches({"rule": "model_burst", "entity_kind": "model", "entity": "m-4", "labels": {}}, now_ms=10)
False
>>> s.expired(now_ms=20).matches({"rule": "model_burst", "entity_kind": "model", "entity": "m-3"}, now_ms=30)
False
"""

from __future__ import annotations

import dataclasses
import datetime
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

SILENCES_IN_FORCE_SQL = (
    "SELECT silence_id, rule, entity_kind, entity, labels, toUnixTimestamp64Milli(starts_at), "
    "toUnixTimestamp64Milli(ends_at), reason, created_by, toUnixTimestamp64Milli(updated_at) "
    "FROM alert_silences FINAL WHERE ends_at > now64(3) ORDER BY starts_at"
)
ALL_SILENCES_SQL = SILENCES_IN_FORCE_SQL.replace("WHERE ends_at > now64(3) ", "")


@dataclass(frozen=True, slots=True)
class Silence:
    silence_id: str
    starts_at_ms: int
    ends_at_ms: int
    reason: str
    created_by: str
    updated_at_ms: int
    rule: str | None = None
    entity_kind: str | None = None
    entity: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def new(
        cls,
        *,
        reason: str,
        created_by: str,
        duration_s: float,
        now_ms: int,
        rule: str | None = None,
        entity_kind: str | None = None,
        entity: str | None = None,
        labels: dict[str, str] | None = None,
        starts_at_ms: int | None = None,
    ) -> Silence:
        if not (rule or entity_kind or entity or labels):
            raise ValueError("a silence names a rule, an entity kind, an entity or labels: it would silence everything")
        start = now_ms if starts_at_ms is None else starts_at_ms
        return cls(
            secrets.token_hex(16), start, start + int(duration_s * 1000), reason, created_by, now_ms,
            rule, entity_kind, entity, dict(labels or {}),
        )  # fmt: skip

    @classmethod
    def from_row(cls, row: list[Any]) -> Silence:
        sid, rule, kind, entity, labels, starts, ends, reason, by, updated = row
        return cls(sid, int(starts), int(ends), reason, by, int(updated), rule, kind, entity, dict(labels or {}))

    def expired(self, now_ms: int) -> Silence:
        return dataclasses.replace(self, ends_at_ms=min(self.ends_at_ms, now_ms), updated_at_ms=now_ms)

    def in_force(self, now_ms: int) -> bool:
        return self.starts_at_ms <= now_ms < self.ends_at_ms

    def matches(self, alert: dict[str, Any], now_ms: int) -> bool:
        if not self.in_force(now_ms):
            return False
        for name, wanted in (("rule", self.rule), ("entity_kind", self.entity_kind), ("entity", self.entity)):
            if wanted is not None and alert.get(name) != wanted:
                return False
        labels = alert.get("labels", {})
        return all(labels.get(k) == v for k, v in self.labels.items())

    def payload(self) -> dict[str, Any]:
        """The `alert_silence` contract."""
        return {
            "schema_version": 1, "silence_id": self.silence_id, "rule": self.rule, "entity_kind": self.entity_kind,
            "entity": self.entity, "labels": self.labels, "starts_at_ms": self.starts_at_ms,
            "ends_at_ms": self.ends_at_ms, "reason": self.reason, "created_by": self.created_by,
            "updated_at_ms": self.updated_at_ms,
        }  # fmt: skip

    def describe(self) -> str:
        what = [f"{k}={v}" for k, v in (("rule", self.rule), ("kind", self.entity_kind), ("entity", self.entity)) if v]
        what += [f"{k}={v}" for k, v in self.labels.items()]
        ends = datetime.datetime.fromtimestamp(self.ends_at_ms / 1000, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M")
        return f"{' '.join(what)} until {ends} UTC"


class SilenceBook:
    """The silences in force, as last read from ClickHouse."""

    def __init__(self, silences: Iterable[Silence] = ()) -> None:
        self.silences = list(silences)

    def replace(self, silences: Iterable[Silence]) -> None:
        self.silences = list(silences)

    def silencing(self, alert: dict[str, Any], now_ms: int) -> Silence | None:
        return next((s for s in self.silences if s.matches(alert, now_ms)), None)


def to_page(alerts: Iterable[dict[str, Any]], silences: SilenceBook, now_ms: int) -> list[dict[str, Any]]:
    """The alerts on-call hears of: not silenced, and not only recorded by their rule
    (`labels.paged = "false"`). The others still go to the alerts topic and ClickHouse."""
    return [
        alert
        for alert in alerts
        if silences.silencing(alert, now_ms) is None and alert.get("labels", {}).get("paged") != "false"
    ]
