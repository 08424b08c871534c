"""The lander's insert path, on the embedded engine: payloads through each sink into ClickHouse and back.

Every table is landed twice from the same rows: the lander's way (rows turned into Arrow chunk by
chunk, inserted as one table, `lander/blocks.py`) and as plain rows through clickhouse-connect's
own conversion, the reference. Both must read back identical, column for column; a few values are
also checked against the payloads themselves (milliseconds stay milliseconds, nulls stay null,
arrays and booleans as sent).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from extractguard.contracts.enforcement import ENFORCEMENT_DECISIONS, ENFORCEMENT_REPORTS
from extractguard.contracts.schemas import Payload, schema_document
from extractguard.contracts.topics import (
    ACCOUNT_LABELS,
    ALERT_DELIVERIES,
    ALERT_SILENCES,
    ALERTS,
    CAMPAIGNS,
    DETECTIONS,
    GATEWAY_EVENTS,
)
from extractguard.lander import blocks
from extractguard.lander.blocks import Block
from extractguard.lander.sinks import Sink, sinks
from extractguard.storage import migrate
from extractguard.storage.client import connect

pytestmark = pytest.mark.clickhouse

PARTITION = 3


@pytest.fixture
def client(embedded_path: Path) -> Iterator[Client]:
    handle = connect(f"chdb://{embedded_path}")
    while migrate.revert(handle):
        pass
    migrate.apply(handle, {"events_ttl_days": 30})
    yield handle
    handle.close()


def _documents(golden: dict[str, list[Path]]) -> dict[str, list[Payload]]:
    """The golden payloads of every landed topic, and gateway events that stretch the types."""
    loaded = {name: [orjson.loads(path.read_bytes()) for path in paths] for name, paths in golden.items()}
    recent = int(time.time() * 1000) - 60_000  # inside the events TTL, not in the future
    events = [{**e, "event_time_ms": recent - i} for i, e in enumerate(loaded["gateway_event"])]
    base = events[0]
    required = schema_document("gateway_event", 1)["required"]
    nothing_optional = {k: v for k, v in base.items() if k in required}
    everything_set = {
        **base, "event_id": "e-everything-set", "end_user_id": "user-é😀", "account_created_ms": recent - 86_400_000,
        "client_country": None, "request_max_tokens": 4096, "request_temperature": 0.7, "request_top_p": 1,
        "request_logprobs": True, "request_top_logprobs": 20, "request_logit_bias": True, "refusal": True,
        "request_choice_count": 1024, "client_asn": 4_294_967_295,
        "prompt_sketch": {**base["prompt_sketch"], "minhash": [0, 4_294_967_295] * 8, "cot_elicitation": True},
    }  # fmt: skip
    v2 = next(e for e in events if e["schema_version"] == 2)
    v2_required = schema_document("gateway_event", 2)["required"]
    v2_everything = {
        **everything_set, "schema_version": 2, "event_id": "e-v2-everything-set", "reasoning_output_tokens": 900,
        "cache_read_input_tokens": 64, "cache_creation_input_tokens": 0, "cache_hit": False,
    }  # fmt: skip
    events += [
        {**nothing_optional, "event_id": "e-nothing-optional"},
        everything_set,
        {**{k: v for k, v in v2.items() if k in v2_required}, "event_id": "e-v2-nothing-optional"},
        v2_everything,
    ]
    alert = loaded["alert"][0]
    unlabelled = {k: v for k, v in alert.items() if k != "labels"} | {"alert_id": "0" * 32}
    grouped = {**alert, "alert_id": "1" * 32, "entities": [{"entity_kind": "asn", "entity": "64500"}]}
    delivery = loaded["alert_delivery"][0]
    failed = {**delivery, "delivery_id": "f" * 32, "status": "failed", "http_status": None, "error": "HTTP 503"}
    pending = next(d for d in loaded["enforcement_decision"] if d["status"] == "pending_approval")
    # Another decision id: versions of one decision fold into one row (ReplacingMergeTree) on insert.
    approval = {**pending["approval"], "by": "oncall", "at_ms": pending["decided_at_ms"] + 60_000, "note": "case 4411"}
    effect = {"kind": "limit", "rate_factor": 0.1, "retry_after_s": 120}
    approved = {**pending, "decision_id": "dec-" + "a" * 16, "status": "active", "effect": effect,
                "approval": approval, "updated_at_ms": pending["updated_at_ms"] + 60_000}  # fmt: skip
    return {
        GATEWAY_EVENTS: events,
        DETECTIONS: loaded["detection"],
        ALERTS: [alert, unlabelled, grouped],
        ACCOUNT_LABELS: loaded["account_label"],
        CAMPAIGNS: loaded["campaign"],
        ALERT_DELIVERIES: [delivery, failed],
        ALERT_SILENCES: loaded["alert_silence"],
        ENFORCEMENT_DECISIONS: loaded["enforcement_decision"] + [approved],
        ENFORCEMENT_REPORTS: loaded["bouncer_report"],
    }


def _read(client: Client, table: str, sink: Sink) -> list[tuple[Any, ...]]:
    columns = ", ".join(f"`{name}`" for name in sink.schema.names)
    return [tuple(r) for r in client.query(f"SELECT {columns} FROM {table} ORDER BY kafka_offset").result_rows]


def _land(client: Client, sink: Sink, rows: list[list[Any]]) -> None:
    block = Block(sink.schema)
    for row in rows:
        block.add(row)
    client.insert_arrow(sink.table, block.to_arrow(), settings=dict(sink.insert_settings))  # as Lander._insert


def test_every_table_lands_the_same_values_as_plain_rows(
    client: Client, golden: dict[str, list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blocks, "CHUNK_ROWS", 2)  # rows cross chunk boundaries, as in any real batch
    documents = _documents(golden)
    for topic, sink in sinks().items():
        payloads = [sink.validate(orjson.dumps(d)) for d in documents[topic]]
        rows = [sink.row(p, PARTITION, 100 + i) for i, p in enumerate(payloads)]
        _land(client, sink, rows)

        reference = f"{sink.table}_reference"
        client.command(f"DROP TABLE IF EXISTS {reference}")
        client.command(f"CREATE TABLE {reference} AS {sink.table}")
        try:
            client.insert(reference, rows, column_names=sink.schema.names)
            landed = _read(client, sink.table, sink)
            assert len(landed) == len(payloads), sink.table
            assert landed == _read(client, reference, sink), sink.table
            parts = client.query(
                "SELECT count(), uniqExact(partition) FROM system.parts"
                f" WHERE database = currentDatabase() AND table = '{sink.table}' AND active"
            ).result_rows[0]
            assert parts[0] == parts[1], f"{sink.table}: one insert, one block (a part per partition)"
        finally:
            client.command(f"DROP TABLE IF EXISTS {reference}")


def test_events_land_as_the_payloads_say(client: Client, golden: dict[str, list[Path]]) -> None:
    sink = sinks()[GATEWAY_EVENTS]
    payloads = [sink.validate(orjson.dumps(d)) for d in _documents(golden)[GATEWAY_EVENTS]]
    _land(client, sink, [sink.row(p, PARTITION, 100 + i) for i, p in enumerate(payloads)])

    landed = client.query(
        "SELECT event_id, toUnixTimestamp64Milli(event_time), toUnixTimestamp64Milli(account_created), end_user_id,"
        " client_asn, request_temperature, request_top_p, request_logprobs, refusal, prompt_minhash,"
        " prompt_cot_elicitation, org_id, client_ip_prefix, prompt_sketched, reasoning_output_tokens,"
        " cache_read_input_tokens, cache_creation_input_tokens, cache_hit, kafka_partition, kafka_offset"
        " FROM events ORDER BY kafka_offset"
    ).result_rows
    assert [r[0] for r in landed] == [p["event_id"] for p in payloads]
    for row, p in zip(landed, payloads, strict=True):
        sketch = p.get("prompt_sketch") or {"minhash": []}  # gateway_event v2: a gateway without prompts
        temperature = p.get("request_temperature")
        assert row[1:] == (
            p["event_time_ms"], p.get("account_created_ms"), p.get("end_user_id"), p.get("client_asn"),
            None if temperature is None else struct.unpack("f", struct.pack("f", temperature))[0],  # Float32
            p.get("request_top_p"), p["request_logprobs"], p["refusal"], sketch["minhash"],
            sketch.get("cot_elicitation", False), p.get("org_id", ""), p.get("client_ip_prefix", ""),
            "prompt_sketch" in p, p.get("reasoning_output_tokens"), p.get("cache_read_input_tokens"),
            p.get("cache_creation_input_tokens"), p.get("cache_hit"), PARTITION, row[-1],
        )  # fmt: skip
    v2_bare = next(r for r in landed if r[0] == "e-v2-nothing-optional")
    assert v2_bare[4] is None and v2_bare[11:14] == ("", "", False)  # absent: no ASN 0, no org, no sketch
    nothing_optional = next(r for r in landed if r[0] == "e-nothing-optional")
    assert nothing_optional[2:4] == (None, None) and nothing_optional[5:7] == (None, None)
    assert [r[-1] for r in landed] == list(range(100, 100 + len(payloads)))
