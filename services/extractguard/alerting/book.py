"""The alert book: the open alert of every dedup key, and when it was last delivered.

A detection matching a rule creates the key's alert or updates it (detections, accounts, last seen,
highest severity). An alert is (re)delivered when it is new, when its severity rose, or when it
changed and `renotify_s` has passed since the last delivery.

>>> from extractguard.alerting.rules import DEFAULT_RULES
>>> book = AlertBook(DEFAULT_RULES, renotify_s=300)
>>> d = {"detection_id": "0" * 32, "detector": "burst", "entity_kind": "ip_prefix", "entity": "198.51.100.0/24",
...      "severity": "warning", "window_start_ms": 0, "window_end_ms": 60000,
...      "evidence": {"summary": "s", "accounts": ["a1", "a2"]}}
>>> [a["rule"] for a in book.observe(d, now_ms=1000)]
['shared_infrastructure_burst']
>>> book.observe({**d, "detection_id": "1" * 32}, now_ms=2000)  # same key, too soon to renotify
[]
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from extractguard.alerting.rules import SEVERITY_RANK, AlertRule

MAX_ALERT_ACCOUNTS = 5000
MAX_ALERT_DETECTIONS = 200


@dataclass(slots=True)
class _OpenAlert:
    rule: AlertRule
    dedup_key: str
    entity_kind: str
    entity: str
    severity: str
    first_seen_ms: int
    last_seen_ms: int
    summary: str
    detection_ids: list[str] = field(default_factory=list)
    accounts: set[str] = field(default_factory=set)
    notified_ms: int | None = None
    notified_severity: str | None = None
    changed: bool = True

    def payload(self, now_ms: int, status: str = "firing") -> dict[str, Any]:
        return {
            "schema_version": 1,
            "alert_id": hashlib.blake2b(self.dedup_key.encode(), digest_size=16).hexdigest(),
            "dedup_key": self.dedup_key,
            "rule": self.rule.name,
            "severity": self.severity,
            "status": status,
            "summary": f"{self.rule.summary}: {self.summary}"[:2048],
            "entity_kind": self.entity_kind,
            "entity": self.entity,
            "detection_ids": self.detection_ids[-MAX_ALERT_DETECTIONS:],
            "first_seen_ms": self.first_seen_ms,
            "last_seen_ms": self.last_seen_ms,
            "fired_at_ms": now_ms,
            "accounts": sorted(self.accounts)[:MAX_ALERT_ACCOUNTS],
            "labels": {"rule": self.rule.name, "severity": self.severity, "entity_kind": self.entity_kind},
        }


class AlertBook:
    def __init__(self, rules: Sequence[AlertRule], renotify_s: int) -> None:
        self.rules = rules
        self.renotify_ms = renotify_s * 1000
        self.open: dict[str, _OpenAlert] = {}

    def observe(self, detection: dict[str, Any], now_ms: int) -> list[dict[str, Any]]:
        """Apply one detection; returns the alert payloads due for delivery now."""
        into = detection["evidence"].get("merged_into")
        if into is not None:
            return self._fold(detection, into, now_ms)
        due = []
        for rule in self.rules:
            if not rule.matches(detection):
                continue
            key = rule.dedup_key(detection)
            alert = self.open.get(key)
            if alert is None:
                alert = self.open[key] = _OpenAlert(
                    rule=rule,
                    dedup_key=key,
                    entity_kind=detection["entity_kind"],
                    entity=detection["entity"],
                    severity=detection["severity"],
                    first_seen_ms=detection["window_start_ms"],
                    last_seen_ms=detection["window_end_ms"],
                    summary=detection["evidence"]["summary"],
                )
            if detection["detection_id"] in alert.detection_ids:
                continue  # a redelivered detection changes nothing
            alert.detection_ids.append(detection["detection_id"])
            alert.accounts.update(detection["evidence"]["accounts"])
            alert.last_seen_ms = max(alert.last_seen_ms, detection["window_end_ms"])
            alert.summary = detection["evidence"]["summary"]
            if SEVERITY_RANK[detection["severity"]] > SEVERITY_RANK[alert.severity]:
                alert.severity = detection["severity"]
            alert.changed = True
            if self._due(alert, now_ms):
                alert.notified_ms = now_ms
                alert.notified_severity = alert.severity
                alert.changed = False
                due.append(alert.payload(now_ms))
        return due

    def _fold(self, detection: dict[str, Any], into: str, now_ms: int) -> list[dict[str, Any]]:
        """A campaign merged into another: its open alert is resolved, pointing at the survivor,
        and its accounts and detections join the survivor's alert. On-call keeps one incident per
        actor, where the fragments found one by one each kept their own."""
        due = []
        for rule in self.rules:
            if not rule.covers(detection):  # a merged campaign's detection is info: not `matches`
                continue
            alert = self.open.pop(rule.dedup_key(detection), None)
            if alert is None:
                continue
            alert.summary = f"merged into {into}: {detection['evidence']['summary']}"
            due.append(alert.payload(now_ms, status="resolved"))
            survivor = self.open.get(rule.dedup_key({**detection, "entity": into}))
            if survivor is not None:
                survivor.accounts.update(alert.accounts)
                survivor.detection_ids.extend(d for d in alert.detection_ids if d not in survivor.detection_ids)
                survivor.first_seen_ms = min(survivor.first_seen_ms, alert.first_seen_ms)
                survivor.changed = True
        return due

    def due_updates(self, now_ms: int) -> list[dict[str, Any]]:
        """Alerts that changed since their last delivery and may be re-delivered now."""
        due = []
        for alert in self.open.values():
            if alert.changed and self._due(alert, now_ms):
                alert.notified_ms = now_ms
                alert.notified_severity = alert.severity
                alert.changed = False
                due.append(alert.payload(now_ms))
        return due

    def _due(self, alert: _OpenAlert, now_ms: int) -> bool:
        if alert.notified_ms is None or alert.notified_severity is None:
            return True
        if SEVERITY_RANK[alert.severity] > SEVERITY_RANK[alert.notified_severity]:
            return True
        return now_ms - alert.notified_ms >= self.renotify_ms

    def remember(self, alert: dict[str, Any]) -> None:
        """Rebuild state from an alert already delivered (read back from the alerts topic at start)."""
        rule = next((r for r in self.rules if r.name == alert["rule"]), None)
        if rule is None:
            return
        if alert["status"] == "resolved":
            self.open.pop(alert["dedup_key"], None)
            return
        self.open[alert["dedup_key"]] = _OpenAlert(
            rule=rule,
            dedup_key=alert["dedup_key"],
            entity_kind=alert["entity_kind"],
            entity=alert["entity"],
            severity=alert["severity"],
            first_seen_ms=alert["first_seen_ms"],
            last_seen_ms=alert["last_seen_ms"],
            summary=alert["summary"],
            detection_ids=list(alert["detection_ids"]),
            accounts=set(alert["accounts"]),
            notified_ms=alert["fired_at_ms"],
            notified_severity=alert["severity"],
            changed=False,
        )
