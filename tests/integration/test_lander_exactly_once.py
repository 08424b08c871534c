"""50,000 events through the HTTP ingest; the lander is SIGKILLed midway and restarted; exactly
50,000 rows end up in ClickHouse, and the rollup counts each event once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson
import pytest
import urllib3
from confluent_kafka import Producer

from extractguard.contracts.envelope import encode
from extractguard.contracts.topics import GATEWAY_EVENTS, dlq_name
from extractguard.demo.processes import Service, wait_group_stable, wait_http
from extractguard.kafka_offsets import end_offsets, start_group_at_end
from extractguard.lander.sinks import landed_topics
from extractguard.settings import KafkaSettings, LanderSettings
from extractguard.storage.query import query_lander
from tests.integration.conftest import free_port, read_from

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

TOTAL = 50_000
BATCH = 1_000
TOKEN = "lander-test-token"


def _count(lander: LanderSettings, sql: str) -> int:
    return int(query_lander(sql, lander, timeout_s=30)[1][0][0])


def test_sigkill_midway_loses_nothing_and_duplicates_nothing(
    services: list[Service], tmp_path: Path, kafka: KafkaSettings, golden: dict[str, list[Path]], run_id: str
) -> None:
    group = f"extractguard-lander-test-{run_id}"
    start_group_at_end(kafka, group, landed_topics())
    lander_settings = LanderSettings(sql_port=free_port())
    ingest_port = free_port()
    env = {
        "EXTRACTGUARD_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'clickhouse'}",
        "EXTRACTGUARD_LANDER_GROUP_ID": group,
        "EXTRACTGUARD_LANDER_SQL_PORT": str(lander_settings.sql_port),
        "EXTRACTGUARD_LANDER_BATCH_MAX_ROWS": "5000",
        "EXTRACTGUARD_INGEST_PORT": str(ingest_port),
        "EXTRACTGUARD_INGEST_TOKEN": TOKEN,
    }
    ingest = Service("ingest", env, tmp_path)
    lander = Service("lander", env, tmp_path)
    services += [ingest, lander]
    ingest.start()
    lander.start()
    wait_http(f"http://127.0.0.1:{ingest_port}/healthz", 60, ingest)
    wait_http(f"http://127.0.0.1:{lander_settings.sql_port}/healthz", 120, lander)
    wait_group_stable(kafka, group, 60, lander)

    base = orjson.loads(golden["gateway_event"][0].read_bytes())
    now_ms = int(time.time() * 1000)
    sent = {"events": 0}

    def send_all() -> None:
        http = urllib3.PoolManager(retries=urllib3.Retry(total=10, backoff_factor=0.2))
        for start in range(0, TOTAL, BATCH):
            body = b"\n".join(
                orjson.dumps({**base, "event_id": f"{run_id}-{n:08d}", "account_id": f"acct-{n % 997}",
                              "event_time_ms": now_ms - (TOTAL - n) * 5})
                for n in range(start, start + BATCH)
            )  # fmt: skip
            response = http.request(
                "POST",
                f"http://127.0.0.1:{ingest_port}/v1/events",
                body=body,
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert response.status == 200 and orjson.loads(response.data)["accepted"] == BATCH
            sent["events"] += BATCH
            time.sleep(0.02)  # spread the load so the kill lands mid-stream

    sender = threading.Thread(target=send_all)
    sender.start()
    deadline = time.monotonic() + 120
    while _count(lander_settings, "SELECT count() FROM events") < TOTAL // 4:
        assert time.monotonic() < deadline, "the lander landed too little before the kill"
        time.sleep(0.2)
    lander.kill()  # SIGKILL: no flush, no commit, no goodbye
    killed_while_sending = sent["events"] < TOTAL
    time.sleep(1)
    lander.start()
    wait_http(f"http://127.0.0.1:{lander_settings.sql_port}/healthz", 120, lander)

    # A few broken lines straight into Kafka, past the ingest: the lander must keep them too.
    dlq_start = end_offsets(kafka, dlq_name(GATEWAY_EVENTS))
    producer = Producer(kafka.client_config())
    producer.produce(GATEWAY_EVENTS, key=b"x", value=encode([b"{broken", b'{"schema_version": 9}']), partition=0)
    producer.flush(10)

    sender.join(timeout=300)
    assert not sender.is_alive() and sent["events"] == TOTAL
    deadline = time.monotonic() + 120
    while _count(lander_settings, "SELECT count() FROM events") < TOTAL and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(3)  # anything duplicated would arrive now
    assert killed_while_sending
    assert _count(lander_settings, "SELECT count() FROM events") == TOTAL
    assert _count(lander_settings, "SELECT uniqExact(event_id) FROM events") == TOTAL
    assert _count(lander_settings, "SELECT countMerge(requests) FROM account_minute") == TOTAL
    dead = read_from(kafka, dlq_name(GATEWAY_EVENTS), dlq_start, expect=2)
    codes = sorted(dict(m.headers())["eg-reason-code"].decode() for m in dead)
    assert codes == ["not_json", "unknown_schema_version"]
    assert all(dict(m.headers())["eg-source-topic"] == GATEWAY_EVENTS.encode() for m in dead)
