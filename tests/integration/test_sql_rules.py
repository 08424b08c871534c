"""The shipped SQL rules on the embedded ClickHouse: events land in `events`, the rollups'
materialised views fill, and each rule fires on the rows built to trip it and on none of the
look-alikes beside them (old accounts, sampling at temperature > 0, steady orgs)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from extractguard.alerting.rules import shipped_rules
from extractguard.alerting.sql_rules import SqlRuleRunner
from extractguard.contracts.schemas import validate
from tests.conftest import migrated_client

pytestmark = pytest.mark.clickhouse
COLUMNS = ["event_id", "event_time", "account_id", "org_id", "api_key_hash", "account_created", "client_ip_prefix",
           "operation_name", "provider_name", "request_model", "output_tokens", "request_temperature"]  # fmt: skip
NOW = datetime.datetime.now(tz=datetime.UTC).replace(microsecond=0)
# Recent rows stay inside today and the current hour, whenever the test runs.
RECENT = max(NOW - datetime.timedelta(minutes=1), NOW.replace(minute=0, second=0))


@pytest.fixture
def client(embedded_path: Path) -> Iterator[Client]:
    yield migrated_client(embedded_path, events_ttl_days=30)


class _Events:
    def __init__(self) -> None:
        self.rows: list[list[Any]] = []

    def add(
        self,
        account: str,
        at: datetime.datetime,
        *,
        org: str = "org-x",
        key: str = "key-x",
        created: datetime.datetime | None = None,
        prefix: str = "192.0.2.0/24",
        tokens: int = 100,
        temperature: float | None = 0.7,
    ) -> None:
        self.rows.append([f"ev-{len(self.rows)}-{account}", at, account, org, key, created, prefix, "chat", "p",
                          "m-1", tokens, temperature])  # fmt: skip


def _fired(client: Client, rule_name: str) -> dict[str, dict[str, Any]]:
    rule = next(r for r in shipped_rules().sql if r.name == rule_name)

    def ask(sql: str) -> tuple[list[str], list[list[Any]]]:
        result = client.query(sql, settings={"readonly": 1})
        return list(result.column_names), [list(r) for r in result.result_rows]

    alerts = SqlRuleRunner([rule], ask, renotify_s=0).run_due(now_ms=int(NOW.timestamp() * 1000))
    for alert in alerts:
        validate("alert", alert)
    return {a["entity"]: a for a in alerts}


def test_org_whose_api_keys_grew_tenfold_in_a_day(client: Client) -> None:
    events = _Events()
    before = NOW - datetime.timedelta(hours=36)
    for i in range(3):
        events.add(f"acct-g{i}", before, org="org-grow", key=f"key-g-old{i}")
    for i in range(30):
        events.add(f"acct-g{i}", RECENT, org="org-grow", key=f"key-g{i}")
    for i in range(12):
        events.add(f"acct-s{i}", before, org="org-steady", key=f"key-s{i}")  # as many keys yesterday
        events.add(f"acct-s{i}", RECENT, org="org-steady", key=f"key-s{i}")
    # A faint org: one key active yesterday, all twelve today — the daily noise of accounts that
    # send about once a day, not growth.
    events.add("acct-f0", before, org="org-faint", key="key-f0")
    for i in range(12):
        events.add(f"acct-f{i}", RECENT, org="org-faint", key=f"key-f{i}")
    for i in range(5):
        events.add(f"acct-n{i}", RECENT, org="org-new-small", key=f"key-n{i}")  # new, but only five keys
    for i in range(12):
        events.add(f"acct-b{i}", RECENT, org="org-new-big", key=f"key-b{i}")  # new today: nothing to grow from
    client.insert("events", events.rows, column_names=COLUMNS)
    # A database not two days old has no whole day before this one to compare with: nothing fires.
    assert _fired(client, "org_api_keys_tenfold") == {}
    history = _Events()
    history.add("acct-h0", NOW - datetime.timedelta(hours=60), org="org-history", key="key-h0")
    client.insert("events", history.rows, column_names=COLUMNS)
    fired = _fired(client, "org_api_keys_tenfold")
    assert set(fired) == {"org-grow"}
    assert set(fired["org-grow"]["accounts"]) == {f"acct-g{i}" for i in range(3, 30)}  # new to the org today


def test_account_in_the_top_of_greedy_output(client: Client) -> None:
    events = _Events()
    for i in range(300):
        events.add(f"acct-t{i}", RECENT, tokens=2_000, temperature=0.0)
    events.add("acct-greedy", RECENT, tokens=260_000, temperature=0.0)
    events.add("acct-runner-up", RECENT, tokens=210_000, temperature=0.0)  # heavy, but not the top 0.01%
    events.add("acct-sampler", RECENT, tokens=900_000, temperature=0.9)  # heavier, sampling: not greedy
    client.insert("events", events.rows, column_names=COLUMNS)
    fired = _fired(client, "greedy_output_top_accounts")
    assert set(fired) == {"acct-greedy"}
    assert fired["acct-greedy"]["accounts"] == ["acct-greedy"]


def test_prefix_whose_new_accounts_per_hour_jumped(client: Client) -> None:
    events = _Events()
    for i in range(25):  # a signup wave behind one prefix, this hour
        events.add(f"acct-w{i}", RECENT, created=RECENT - datetime.timedelta(hours=1), prefix="203.0.113.0/24")
        # the same count behind a prefix that always signs up this many: a steady stream, not a jump
        events.add(f"acct-q{i}", RECENT, created=RECENT - datetime.timedelta(hours=1), prefix="198.51.100.0/24")
        # as busy, but with accounts a month old: not new accounts
        events.add(f"acct-o{i}", RECENT, created=NOW - datetime.timedelta(days=30), prefix="100.64.0.0/24")
    for hour in range(3, 24):
        for i in range(25):
            at = NOW - datetime.timedelta(hours=hour)
            events.add(f"acct-q{hour}-{i}", at, created=at - datetime.timedelta(hours=2), prefix="198.51.100.0/24")
    client.insert("events", events.rows, column_names=COLUMNS)
    fired = _fired(client, "prefix_new_account_surge")
    assert set(fired) == {"203.0.113.0/24"}
    assert len(fired["203.0.113.0/24"]["accounts"]) == 25
