"""The shipped SQL rules over simulated traffic, replayed an hour at a time into the embedded
ClickHouse and asked every 15 minutes of event time, as the alerter's schedule would: each rule
fires on the scenario built to trip it (tests/integration/scenarios/sql_rules_trip.yaml) and
none fires on `control`, the eval's organic day with every hard look-alike."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from extractguard.alerting.rules import shipped_rules
from extractguard.alerting.sql_rules import SqlRuleRunner
from extractguard.lander.blocks import Block
from extractguard.lander.rows import EVENT_SCHEMA, event_row
from extractguard.paths import project_root
from extractguard.simulator.stream_file import write_stream
from extractguard.simulator.traffic import Scenario, scenario_start_ms
from tests.conftest import migrated_client

pytestmark = pytest.mark.clickhouse
HOUR_MS = 3_600_000
STEP_MS = 900_000


@pytest.fixture
def client(embedded_path: Path) -> Iterator[Client]:
    yield migrated_client(embedded_path, events_ttl_days=30)


def _replay(client: Client, scenario_file: Path, tmp_path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Everything the SQL rules fired on, first firing of each (rule, entity)."""
    scenario = Scenario.from_yaml(scenario_file)
    # At the scenario's own time of day, as `make eval` replays it: the run's wall clock must not
    # decide what the rules see.
    start = scenario_start_ms(scenario, int(time.time() * 1000))
    files = write_stream(scenario, start, tmp_path)
    events = sorted((orjson.loads(line) for line in files.events.open("rb")), key=lambda e: e["event_time_ms"])

    def ask(sql: str) -> tuple[list[str], list[list[Any]]]:
        result = client.query(sql, settings={"readonly": 1})
        return list(result.column_names), [list(r) for r in result.result_rows]

    runner = SqlRuleRunner(shipped_rules().sql, ask, renotify_s=0)
    fired: dict[tuple[str, str], dict[str, Any]] = {}
    landed = 0
    for now in range(start + STEP_MS, start + int(scenario.duration_s * 1000) + STEP_MS, STEP_MS):
        block = Block(EVENT_SCHEMA)
        while landed < len(events) and events[landed]["event_time_ms"] < now:
            block.add(event_row(events[landed], 0, landed))
            landed += 1
        if block.rows:
            client.insert_arrow("events", block.to_arrow())
        for alert in runner.run_due(now):
            if alert["status"] == "firing":
                fired.setdefault((alert["rule"], alert["entity"]), {**alert, "at_h": (now - start) / HOUR_MS})
    return fired


def _campaign_members(tmp_path: Path, campaign: str) -> dict[str, str]:
    """A campaign's accounts and their orgs."""
    labels = [orjson.loads(line) for line in (tmp_path / "labels.jsonl").open("rb")]
    return {label["account_id"]: label["org_id"] for label in labels if label.get("campaign") == campaign}


def test_each_sql_rule_fires_on_the_scenario_built_to_trip_it(client: Client, tmp_path: Path) -> None:
    fired = _replay(client, Path(__file__).parent / "scenarios" / "sql_rules_trip.yaml", tmp_path)
    rules = {rule for rule, _entity in fired}
    assert rules == {"org_api_keys_tenfold", "prefix_new_account_surge", "greedy_output_top_accounts"}, fired
    fleet, greedy = _campaign_members(tmp_path, "reseller_fleet"), _campaign_members(tmp_path, "greedy")
    for (rule, entity), alert in fired.items():
        named = set(alert["accounts"])
        assert named, alert
        if rule == "greedy_output_top_accounts":
            assert named <= set(greedy) and alert["at_h"] >= 48  # not before the harvester starts
        elif rule == "org_api_keys_tenfold":
            assert entity in set(fleet.values())  # the reseller the fleet came through
            # the day's accounts it had not shown before: the fleet, and at most a few of the reseller's
            # own customers that first called that day
            assert len(named - set(fleet)) <= 0.1 * len(named) and alert["at_h"] >= 49
        else:
            assert named <= set(fleet) and alert["at_h"] >= 49  # the wave's accounts, no organic one


def test_no_sql_rule_fires_on_control(client: Client, tmp_path: Path) -> None:
    fired = _replay(client, project_root() / "scenarios" / "eval-synthetic" / "control.yaml", tmp_path)
    assert fired == {}
