"""The alert book: the open alert of every dedup key, and when it was last delivered.

A detection matching a rule creates the key's alert or updates it (detections, accounts, last seen,
highest severity). An alert is (re)delivered when it is new, when its severity rose, or when it
changed and `renotify_s` has passed since the last delivery. Changed means changed in what the page
shows (severity, first and last seen, accounts, summary, entities): a new detection that only repeats what
the alert already says (the campaign resolver re-emitting a campaign unchanged as the evidence of
its other linker partition arrives) adds its id, and is no new page.

>>> from extractguard.alerting.rules import DEFAULT_RULES
>>> book = AlertBook(DEFAULT_RULES, renotify_s=300)
>>> d = {"detection_id": "0" * 32, "detector": "burst", "entity_kind": "template", "entity": "tpl-5f3a9c",
...      "severity": "warning", "window_start_ms": 0, "window_end_ms": 60000,
...      "evidence": {"summary": "s", "accounts": ["a1", "a2"]}}
>>> [a["rule"] for a in book.observe(d, now_ms=1000)]
['template_burst']
>>> book.observe({**d, "detection_id": "1" * 32}, now_ms=2000)  # same key, too soon to renotify
[]
>>> again = AlertBook(DEFAULT_RULES, renotify_s=0)
>>> len(again.observe(d, now_ms=1000)), again.observe({**d, "detection_id": "2" * 32}, now_ms=2000)
(1, [])
>>> [a["accounts"] for a in again.observe({**d, "detection_id": "3" * 32,
...                                        "evidence": {"summary": "s", "accounts": ["a3"]}}, now_ms=3000)]
[['a1', 'a2', 'a3']]

A grouped rule (`group: {by: accounts}`) folds a detection whose accounts overlap an open alert of
the same rule, seen within `within_s`, into that alert: the alert keeps its key and names every
entity (`entities`), so one actor's burst on account, org, key, prefix, ASN and JA4 is one page.
Its deliveries come from `due_updates`, which the alerter calls after each batch of detections.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from extractguard.alerting.rules import SEVERITY_RANK, AlertRule

MAX_ALERT_ACCOUNTS = 5000
MAX_ALERT_DETECTIONS = 200
MAX_NAMED_ENTITIES = 12


def _names(entities: set[tuple[str, str]]) -> str:
    named = sorted(entities)
    more = f" and {len(named) - MAX_NAMED_ENTITIES} more" if len(named) > MAX_NAMED_ENTITIES else ""
    return "on " + ", ".join(f"{kind} {entity}" for kind, entity in named[:MAX_NAMED_ENTITIES]) + more


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
    entities: set[tuple[str, str]] = field(default_factory=set)

    def shown(self) -> tuple[Any, ...]:
        """What an on-call engineer reads in this alert's page (its detection ids aside)."""
        return (self.severity, self.first_seen_ms, self.last_seen_ms, frozenset(self.accounts), self.summary,
                frozenset(self.entities))  # fmt: skip

    def paged(self) -> bool:
        """False for an alert its rule only records (a known org's sweep from too few accounts)."""
        quiet = self.rule.record_only
        if quiet is None or len(self.accounts) >= quiet.below_accounts:
            return True
        orgs = {name for kind, name in self.entities if kind == "org"}
        if self.entity_kind == "org":
            orgs.add(self.entity)
        return not orgs & quiet.orgs

    def payload(self, now_ms: int, status: str = "firing") -> dict[str, Any]:
        labels = {"rule": self.rule.name, "severity": self.severity, "entity_kind": self.entity_kind}
        grouped = {}
        if self.rule.group is not None:
            grouped["entities"] = [{"entity_kind": k, "entity": e} for k, e in sorted(self.entities)]
        if not self.paged():
            labels["paged"] = "false"
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
            "labels": labels,
            **grouped,
        }


class AlertBook:
    def __init__(self, rules: Sequence[AlertRule], renotify_s: int) -> None:
        self.rules = rules
        self.renotify_ms = renotify_s * 1000
        self.open: dict[str, _OpenAlert] = {}
        # Grouped rules: a member entity's own key -> its group's alert, and (rule, account) ->
        # the group alert that names the account. Entries for alerts no longer open are ignored.
        self._aliases: dict[str, str] = {}
        self._by_account: dict[tuple[str, str], str] = {}

    def _group_key(self, rule: AlertRule, key: str, detection: dict[str, Any]) -> str:
        if rule.group is None or key in self.open:
            return key
        alias = self._aliases.get(key)
        if alias is not None and alias in self.open:
            return alias
        within_ms = rule.group.within_s * 1000
        for account in detection["evidence"]["accounts"]:
            group = self._by_account.get((rule.name, account))
            if (
                group is not None
                and group in self.open
                and detection["window_start_ms"] - self.open[group].last_seen_ms <= within_ms
            ):
                self._aliases[key] = group
                return group
        return key

    def _index(self, alert: _OpenAlert, entity_kind: str, entity: str, accounts: Iterable[str]) -> None:
        alert.entities.add((entity_kind, entity))
        self._aliases[alert.rule.key_for(entity_kind, entity)] = alert.dedup_key
        for account in accounts:
            self._by_account[(alert.rule.name, account)] = alert.dedup_key

    def observe(self, detection: dict[str, Any], now_ms: int) -> list[dict[str, Any]]:
        """Apply one detection; returns the alert payloads due for delivery now."""
        into = detection["evidence"].get("merged_into")
        if into is not None:
            return self._fold(detection, into, now_ms)
        due = []
        for rule in self.rules:
            if not rule.matches(detection):
                continue
            key = self._group_key(rule, rule.dedup_key_of(detection), detection)
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
            shown = alert.shown()
            alert.detection_ids.append(detection["detection_id"])
            alert.accounts.update(detection["evidence"]["accounts"])
            alert.last_seen_ms = max(alert.last_seen_ms, detection["window_end_ms"])
            alert.summary = detection["evidence"]["summary"]
            if rule.group is not None:
                self._index(alert, detection["entity_kind"], detection["entity"], detection["evidence"]["accounts"])
                alert.summary = f"{_names(alert.entities)}; {alert.summary}"
            if SEVERITY_RANK[detection["severity"]] > SEVERITY_RANK[alert.severity]:
                alert.severity = detection["severity"]
            if alert.notified_ms is None or alert.shown() != shown:
                alert.changed = True
            # A grouped alert goes out from `due_updates`, after the whole batch is folded, so its
            # first page already names the entities of the window seen together.
            if rule.group is None and alert.changed and self._due(alert, now_ms):
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
            alert = self.open.pop(rule.dedup_key_of(detection), None)
            if alert is None:
                continue
            alert.summary = f"merged into {into}: {detection['evidence']['summary']}"
            due.append(alert.payload(now_ms, status="resolved"))
            survivor = self.open.get(rule.dedup_key_of({**detection, "entity": into}))
            if survivor is not None:
                shown = survivor.shown()
                survivor.accounts.update(alert.accounts)
                survivor.detection_ids.extend(d for d in alert.detection_ids if d not in survivor.detection_ids)
                survivor.first_seen_ms = min(survivor.first_seen_ms, alert.first_seen_ms)
                # The survivor usually holds the fragment's accounts already: then nothing to page.
                if survivor.shown() != shown:
                    survivor.changed = True
        return due

    def campaign_closed(self, campaign_id: str, now_ms: int) -> list[dict[str, Any]]:
        """A campaign the resolver closed (its evidence was forgotten): its open alerts resolve, so
        Alertmanager and PagerDuty close the incident rather than keep it open forever."""
        due = []
        for rule in self.rules:
            if rule.entity_kinds is None or "campaign" not in rule.entity_kinds:
                continue
            alert = self.open.pop(rule.key_for("campaign", campaign_id), None)
            if alert is not None:
                alert.summary = f"campaign {campaign_id} closed: {alert.summary}"
                due.append(alert.payload(now_ms, status="resolved"))
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
        if rule.group is not None:
            opened = self.open[alert["dedup_key"]]
            for entity in alert.get("entities", []):
                self._index(opened, entity["entity_kind"], entity["entity"], alert["accounts"])
