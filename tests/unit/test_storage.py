"""ClickHouse migrations and the rollup, on the embedded engine.

chdb runs one engine path per process, so these tests share one database (a session fixture)
and each starts from an empty schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from extractguard.storage import migrate
from extractguard.storage.client import DatabaseLocked
from tests.conftest import embedded_client

pytestmark = pytest.mark.clickhouse


@pytest.fixture
def client(embedded_path: Path) -> Iterator[Client]:
    handle = embedded_client(embedded_path)
    while migrate.revert(handle):
        pass
    yield handle


def test_migrations_apply_revert_and_reapply(client: Client) -> None:
    names = [f"{m.version:04d}_{m.name}" for m in migrate.load()]
    assert migrate.apply(client, {"events_ttl_days": 7}) == names
    assert migrate.apply(client, {"events_ttl_days": 7}) == []
    # Down to 0020 (which only alters `events`), whatever later migrations were added since.
    index = names.index("0020_gateway_event_v2")
    for newest in reversed(names[index:]):
        assert migrate.revert(client) == newest
    columns = dict(
        client.query(
            "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'events'"
        ).result_rows
    )
    assert columns["client_asn"] == "UInt32" and "prompt_sketched" not in columns
    assert migrate.revert(client) == names[index - 1]
    tables = {r[0] for r in client.query("SHOW TABLES").result_rows}
    created = re.findall(
        r"CREATE (?:MATERIALIZED )?(?:TABLE|VIEW) IF NOT EXISTS (\w+)", " ".join(migrate.load()[index - 1].up)
    )
    # The second revert undid the migration before the newest (the newest only alters `events`):
    # its tables and views are gone.
    assert created and not set(created) & tables
    assert {"events", "detections", "alerts", "account_labels"} <= tables
    assert migrate.apply(client, {"events_ttl_days": 7}) == names[index - 1 :]


def test_rollup_view_aggregates_per_account_minute(client: Client) -> None:
    from extractguard.lander.blocks import Block
    from extractguard.lander.rows import EVENT_SCHEMA, event_row

    migrate.apply(client, {"events_ttl_days": 7})
    base = {
        "event_id": "", "event_time_ms": 1_795_000_020_000, "account_id": "a1", "org_id": "o1",
        "api_key_hash": "k" * 16, "client_ip_prefix": "1.2.3.0/24", "client_asn": 1, "turn_index": 0,
        "operation_name": "chat", "provider_name": "p", "request_model": "m", "input_tokens": 10,
        "output_tokens": 100, "request_choice_count": 1, "request_logprobs": True, "request_top_logprobs": 0,
        "request_logit_bias": False, "request_tools_count": 0, "response_status": 200, "refusal": False,
        "latency_ms": 50, "prompt_sketch": {"minhash": [1] * 16, "template_hash": "0" * 16, "length_chars": 5},
    }  # fmt: skip
    # 1_795_000_020_000 is on a minute boundary: 90 one-second-apart events fill two minutes.
    block = Block(EVENT_SCHEMA)  # as the lander lands them
    for i in range(90):
        block.add(event_row({**base, "event_id": f"e{i:08d}", "event_time_ms": base["event_time_ms"] + i * 1000}, 0, i))
    client.insert_arrow("events", block.to_arrow())
    result = client.query(
        "SELECT minute, countMerge(requests), sumMerge(output_tokens), sumMerge(logprobs_requests) "
        "FROM account_minute WHERE account_id = 'a1' GROUP BY minute ORDER BY minute"
    ).result_rows
    assert sum(r[1] for r in result) == 90
    assert sum(r[2] for r in result) == 9000
    assert sum(r[3] for r in result) == 90
    assert len(result) == 2  # 90 seconds span two minutes


def test_a_second_process_is_told_who_owns_the_embedded_database_quietly(client: Client, embedded_path: Path) -> None:
    import subprocess
    import sys

    path = embedded_path
    code = (
        "from extractguard.storage.client import connect, DatabaseLocked\n"
        f"try:\n    connect('chdb://{path}')\nexcept DatabaseLocked as e:\n    print('LOCKED', e)\n"
    )
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert answer.stdout.startswith("LOCKED") and "extractguard sql" in answer.stdout
    # chdb is never asked, so its own "Cannot lock file ... Another server instance" noise never
    # reaches the terminal of `extractguard sql` beside a running lander.
    assert "Cannot lock" not in answer.stderr and "DB::Exception" not in answer.stderr
    assert DatabaseLocked.__doc__


def test_every_migration_has_an_on_cluster_form() -> None:
    # No cluster runs here: the rewrite is checked for shape, and each single-node statement must
    # have a clustered form (a new kind of statement fails here, not on a customer's cluster).
    for migration in migrate.load():
        for statement in migration.up + migration.down:
            rewritten = migrate.on_cluster(statement, "prod")
            if statement.startswith("INSERT INTO"):  # a backfill runs once, Distributed to Distributed
                assert rewritten == [statement]
                continue
            assert rewritten and all("ON CLUSTER 'prod'" in s for s in rewritten)
            if statement.startswith("CREATE TABLE"):
                local, distributed = rewritten
                assert "ENGINE = Replicated" in local and "_local ON CLUSTER" in local
                assert "ENGINE = Distributed('prod', currentDatabase()" in distributed
            if "MATERIALIZED VIEW" in statement:
                target, source = re.search(r" TO (\w+) AS", statement), re.search(r"\bFROM (\w+)", statement)
                assert target and f"TO {target[1]}_local" in rewritten[0]
                assert source and f"FROM {source[1]}_local" in rewritten[0]
    events = next(m for m in migrate.load() if m.name == "events").up[0]
    assert migrate.on_cluster(events, "prod")[1].endswith("cityHash64(account_id))")  # an account on one shard
