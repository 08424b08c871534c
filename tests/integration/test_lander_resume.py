"""The lander's resume rule, forced: a crash after the ClickHouse insert and before the offset
commit must not land the batch twice when the next lander starts from the stale commit."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import orjson
import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Producer, TopicPartition

from extractguard.contracts.envelope import encode
from extractguard.contracts.topics import GATEWAY_EVENTS
from extractguard.kafka_offsets import start_group_at_end
from extractguard.lander.consumer import Lander
from extractguard.lander.sinks import landed_topics
from extractguard.settings import KafkaSettings, LanderSettings
from extractguard.storage import migrate
from extractguard.storage.client import connect

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


class CrashBeforeCommit(Exception):
    pass


def _count(client: Client, lock: threading.Lock, run_id: str) -> int:
    with lock:
        return int(client.query(f"SELECT count() FROM events WHERE event_id LIKE '{run_id}-%'").result_rows[0][0])


def _run(lander: Lander) -> threading.Thread:
    def body() -> None:
        with contextlib.suppress(CrashBeforeCommit):
            lander.run()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def test_crash_between_insert_and_commit_is_not_landed_twice(
    kafka: KafkaSettings, embedded_path: Path, golden: dict[str, list[Path]], run_id: str
) -> None:
    client = connect(f"chdb://{embedded_path}")
    while migrate.revert(client):
        pass
    migrate.apply(client, {"events_ttl_days": 30})
    lock = threading.Lock()
    group = f"extractguard-lander-resume-{run_id}"
    start_group_at_end(kafka, group, landed_topics())
    settings = LanderSettings(group_id=group, batch_max_wait_s=0.5)

    base = orjson.loads(golden["gateway_event"][0].read_bytes())
    base["event_time_ms"] = int(time.time() * 1000) - 60_000
    producer = Producer(kafka.client_config())
    for partition in range(4):
        lines = [orjson.dumps({**base, "event_id": f"{run_id}-{partition}-{n:04d}"}) for n in range(250)]
        producer.produce(GATEWAY_EVENTS, value=encode(lines), partition=partition)
    producer.flush(10)

    class CrashingLander(Lander):
        def _commit(self, offsets: list[TopicPartition]) -> None:
            raise CrashBeforeCommit

    crashing = CrashingLander(client, lock, settings, kafka)
    thread = _run(crashing)
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert _count(client, lock, run_id) == 1000  # inserted, never committed

    resumed = Lander(client, lock, settings, kafka)
    thread = _run(resumed)
    assert resumed.assigned.wait(timeout=60)
    time.sleep(3)  # long enough for a duplicate batch to be inserted if the rule were wrong
    resumed.stop()
    thread.join(timeout=30)
    assert _count(client, lock, run_id) == 1000
    assert resumed.rows_landed == 0
