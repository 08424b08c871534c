"""Scheduled SQL rules: the alerter asks ClickHouse each rule's query every `interval_s` and turns
the rows that reach the threshold into alerts, like the stream's.

One alert per rule and entity (dedup key `rule:entity_kind:entity`), delivered when it opens,
when its value or accounts change (at most every `renotify_s`), and resolved when the entity no
longer comes back from the query. A query that fails is logged and asked again next interval; it
never stops the alerter, and neither opens nor resolves anything: an outage of the store is counted
(`extractguard_alerter_sql_rule_failures_total`, `extractguard_alerter_sql_database_up` 0), not
read as "no rows".

>>> from extractguard.alerting.rules import shipped_rules
>>> rule = next(r for r in shipped_rules().sql if r.name == "org_api_keys_tenfold")
>>> runner = SqlRuleRunner([rule], lambda sql: (["org_id", "growth", "accounts"], [["org-1", 12.0, ["a", "b"]]]), 0)
>>> [(a["entity"], a["status"], a["accounts"]) for a in runner.run_due(now_ms=0)]
[('org-1', 'firing', ['a', 'b'])]
>>> runner.query = lambda sql: (["org_id", "growth", "accounts"], [])
>>> [(a["entity"], a["status"]) for a in runner.run_due(now_ms=rule.interval_s * 1000)]
[('org-1', 'resolved')]

A restarted alerter remembers what it delivered, and resolves it when the rows stop coming:

>>> fresh = SqlRuleRunner([rule], lambda sql: (["org_id", "growth", "accounts"], []), 0)
>>> fresh.remember({"rule": rule.name, "entity": "org-2", "status": "firing", "accounts": ["c"],
...                 "first_seen_ms": 0, "last_seen_ms": 0, "fired_at_ms": 0})
>>> [(a["entity"], a["status"]) for a in fresh.run_due(now_ms=1)]
[('org-2', 'resolved')]

Until the database first answers (the lander opening its SQL door as the stack starts), an
unreachable door is waited for, asked again every few seconds, and is no error:

>>> def closed(sql):
...     raise ConnectionRefusedError(111, "Connection refused")
>>> waiting = SqlRuleRunner([rule], closed, 0)
>>> waiting.run_due(now_ms=0), waiting._next_ms[rule.name]
([], 2000)

The store going away later resolves nothing that fires, and shows on the metrics:

>>> from prometheus_client import REGISTRY
>>> runner.query = lambda sql: (["org_id", "growth", "accounts"], [["org-1", 12.0, ["a", "b"]]])
>>> [a["status"] for a in runner.run_due(now_ms=2 * rule.interval_s * 1000)]
['firing']
>>> runner.query = closed
>>> runner.run_due(now_ms=3 * rule.interval_s * 1000), list(runner.firing[rule.name])
([], ['org-1'])
>>> REGISTRY.get_sample_value("extractguard_alerter_sql_database_up")
0.0
"""

from __future__ import annotations

import hashlib
import urllib.error
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from extractguard import metrics
from extractguard.alerting.book import MAX_ALERT_ACCOUNTS
from extractguard.alerting.rules import SqlRule
from extractguard.logs import configure

log = configure("alerter")
RETRY_S = 30
#: While the database has never answered: how soon a rule asks again.
WAIT_FOR_DATABASE_S = 2
Query = Callable[[str], tuple[list[str], list[list[Any]]]]


class SqlRuleError(ValueError):
    """A rule's query answered without a column the rule names."""


@dataclass(slots=True)
class _Firing:
    entity: str
    value: float
    accounts: list[str]
    first_seen_ms: int
    last_seen_ms: int
    notified_ms: int
    notified: tuple[float, tuple[str, ...]] = field(default_factory=lambda: (0.0, ()))


def findings(rule: SqlRule, columns: list[str], rows: list[list[Any]]) -> list[tuple[str, float, list[str]]]:
    """(entity, value, accounts) of every row that reaches the rule's threshold."""
    if not rows:
        return []  # (an empty answer may come without its columns)
    index = {name: i for i, name in enumerate(columns)}
    for name in (rule.entity_column, rule.value_column, rule.accounts_column):
        if name is not None and name not in index:
            raise SqlRuleError(f"rule {rule.name}: the query returns no column {name!r} (it returns {columns})")
    found = []
    for row in rows:
        value = row[index[rule.value_column]]
        if value is None or float(value) < rule.threshold:
            continue
        accounts = row[index[rule.accounts_column]] if rule.accounts_column else []
        found.append((str(row[index[rule.entity_column]]), float(value), sorted(str(a) for a in accounts or [])))
    return found


class SqlRuleRunner:
    def __init__(self, rules: Sequence[SqlRule], query: Query, renotify_s: int) -> None:
        self.query = query
        self.renotify_ms = renotify_s * 1000
        self.rules: list[SqlRule] = []
        self._next_ms: dict[str, int] = {}
        self.firing: dict[str, dict[str, _Firing]] = {}
        self.answered = False  # has the database answered once (its door is open)?
        self.replace_rules(rules)

    def replace_rules(self, rules: Sequence[SqlRule]) -> None:
        """Reloaded rule files: new rules run at once, removed ones stop (their alerts stay open)."""
        self.rules = list(rules)
        for rule in self.rules:
            self._next_ms.setdefault(rule.name, 0)
            self.firing.setdefault(rule.name, {})

    def remember(self, alert: dict[str, Any]) -> None:
        """Rebuild what fires from an alert already delivered (the alerts topic, at start), so a
        restart updates the open alerts instead of opening them again, and resolves them when due."""
        firing = self.firing.get(alert["rule"])
        if firing is None:
            return
        if alert["status"] == "resolved":
            firing.pop(alert["entity"], None)
            return
        firing[alert["entity"]] = _Firing(
            alert["entity"], float("nan"), list(alert["accounts"]), alert["first_seen_ms"], alert["last_seen_ms"],
            alert["fired_at_ms"], (float("nan"), tuple(alert["accounts"])),
        )  # fmt: skip

    def run_due(self, now_ms: int) -> list[dict[str, Any]]:
        due: list[dict[str, Any]] = []
        for rule in self.rules:
            if now_ms < self._next_ms[rule.name]:
                continue
            self._next_ms[rule.name] = now_ms + rule.interval_s * 1000
            try:
                columns, rows = self.query(rule.query_at(now_ms))
                self.answered = True
                metrics.SQL_DATABASE_UP.set(1)
                found = findings(rule, columns, rows)
            except Exception as error:  # a broken query must not stop the alerter
                metrics.SQL_RULE_FAILURES.labels(rule.name).inc()
                metrics.SQL_DATABASE_UP.set(0)
                if not self.answered and _unreachable(error):
                    log.info("sql_rule_waiting_for_database", rule=rule.name, error=str(error)[:200])
                    self._next_ms[rule.name] = now_ms + WAIT_FOR_DATABASE_S * 1000
                    continue
                log.error("sql_rule_failed", rule=rule.name, error=str(error)[:500])
                # ClickHouse not up yet, or a lander restarting: ask again soon, not a whole interval later.
                self._next_ms[rule.name] = now_ms + min(rule.interval_s, RETRY_S) * 1000
                continue
            due += self._apply(rule, found, now_ms)
        return due

    def _apply(self, rule: SqlRule, found: list[tuple[str, float, list[str]]], now_ms: int) -> list[dict[str, Any]]:
        open_ = self.firing[rule.name]
        due = []
        seen = set()
        for entity, value, accounts in found:
            seen.add(entity)
            alert = open_.get(entity)
            if alert is None:
                alert = open_[entity] = _Firing(entity, value, accounts, now_ms, now_ms, now_ms)
                due.append(self._payload(rule, alert, now_ms, "firing"))
                alert.notified = (value, tuple(accounts))
                continue
            alert.value, alert.accounts, alert.last_seen_ms = value, accounts, now_ms
            changed = (round(value, 3), tuple(accounts)) != (round(alert.notified[0], 3), alert.notified[1])
            if changed and now_ms - alert.notified_ms >= self.renotify_ms:
                alert.notified_ms, alert.notified = now_ms, (value, tuple(accounts))
                due.append(self._payload(rule, alert, now_ms, "firing"))
        for entity in [e for e in open_ if e not in seen]:
            due.append(self._payload(rule, open_.pop(entity), now_ms, "resolved"))
        return due

    @staticmethod
    def _payload(rule: SqlRule, alert: _Firing, now_ms: int, status: str) -> dict[str, Any]:
        key = f"{rule.name}:{rule.entity_kind}:{alert.entity}"
        verb = "no longer" if status == "resolved" else "now"
        return {
            "schema_version": 1,
            "alert_id": hashlib.blake2b(key.encode(), digest_size=16).hexdigest(),
            "dedup_key": key[:256],
            "rule": rule.name,
            "severity": rule.severity,
            "status": status,
            "summary": (
                f"{rule.summary}: {rule.entity_kind} {alert.entity} {verb} at {rule.value_column} "
                f"{alert.value:.4g} (threshold {rule.threshold:g})"
            )[:2048],
            "entity_kind": rule.entity_kind,
            "entity": alert.entity[:256],
            "detection_ids": [],
            "first_seen_ms": alert.first_seen_ms,
            "last_seen_ms": alert.last_seen_ms,
            "fired_at_ms": now_ms,
            "accounts": alert.accounts[:MAX_ALERT_ACCOUNTS],
            "labels": {"rule": rule.name, "severity": rule.severity, "entity_kind": rule.entity_kind, "source": "sql"},
        }


def _unreachable(error: Exception) -> bool:
    """Nobody listens where the database should be (as opposed to a query it refused)."""
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        return isinstance(error.reason, (ConnectionError, OSError))
    return isinstance(error, ConnectionError)
