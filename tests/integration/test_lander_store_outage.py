"""ClickHouse goes away mid-stream and comes back: the lander stops committing, retries its batch
with back-off, lands everything exactly once when the store is back, and never dies of it.

The store is the lander's ClickHouse client with a switch in front of it: while the switch is off
every call fails as a server that stopped answering does (clickhouse-connect's OperationalError),
on the real embedded ClickHouse behind it otherwise. Kafka is the real broker. (Making the chdb
directory unwritable does not work as the test runs as root, and an http:// server is not
something CI has; the lander sees the same thing either way: an insert that raises.)
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError
from confluent_kafka import Producer
from prometheus_client import REGISTRY

from extractguard.contracts.envelope import encode
from extractguard.contracts.topics import GATEWAY_EVENTS
from extractguard.kafka_offsets import group_lag
from extractguard.settings import KafkaSettings
from tests.conftest import migrated_client
from tests.integration.conftest import start_lander, stop_in_thread, within

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

AWAY_S = 12.0


class SwitchedStore:
    """A ClickHouse client that can be taken away: off, every call raises as an unreachable server's."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.away = threading.Event()
        self.refused = 0

    def _check(self) -> None:
        if self.away.is_set():
            self.refused += 1
            raise OperationalError("Error HTTPConnectionPool(host='clickhouse', port=8123): connection refused")

    def insert_arrow(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return self.client.insert_arrow(*args, **kwargs)

    def query(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return self.client.query(*args, **kwargs)


def _produce(kafka: KafkaSettings, base: dict[str, Any], run_id: str, wave: str) -> None:
    producer = Producer(kafka.client_config())
    for partition in range(4):
        lines = [orjson.dumps({**base, "event_id": f"{run_id}-{wave}-{partition}-{n:04d}"}) for n in range(250)]
        producer.produce(GATEWAY_EVENTS, value=encode(lines), partition=partition)
    assert producer.flush(10) == 0


def test_the_lander_waits_out_a_store_outage_and_lands_everything_once(
    kafka: KafkaSettings, embedded_path: Path, golden: dict[str, list[Path]], run_id: str
) -> None:
    client = migrated_client(embedded_path, events_ttl_days=30)
    store = SwitchedStore(client)
    group = f"extractguard-lander-outage-{run_id}"
    lander, lock, thread = start_lander(kafka, cast(Client, store), group)
    base = orjson.loads(golden["gateway_event"][0].read_bytes())
    base["event_time_ms"] = int(time.time() * 1000) - 60_000

    def counts() -> tuple[int, int]:
        with lock:
            rows = client.query(
                f"SELECT (SELECT count() FROM events WHERE event_id LIKE '{run_id}-%'),"
                f" (SELECT count() FROM events FINAL WHERE event_id LIKE '{run_id}-%')"
            ).result_rows
        return int(rows[0][0]), int(rows[0][1])

    try:
        assert lander.assigned.wait(timeout=60)
        _produce(kafka, base, run_id, "before")
        within(60, lambda: counts() == (1000, 1000), "the first 1,000 events landed")
        within(30, lambda: group_lag(kafka, group, GATEWAY_EVENTS) == 0, "the first wave committed")

        store.away.set()
        _produce(kafka, base, run_id, "during")
        within(30, lambda: store.refused >= 2, "the lander tried the store and retried")
        assert REGISTRY.get_sample_value("extractguard_lander_store_up") == 0
        _produce(kafka, base, run_id, "still-during")
        time.sleep(AWAY_S)
        # Nothing committed while the store is away: both waves are still the group's lag.
        assert group_lag(kafka, group, GATEWAY_EVENTS) == 8
        assert thread.is_alive(), "the lander must wait the store out, not die"
        retries = store.refused
        assert 3 <= retries <= 8, f"{retries} attempts in {AWAY_S} s: back-off doubles from 0.5 s"

        store.away.clear()
        within(60, lambda: counts()[0] == 3000, "every event landed once the store was back")
        within(30, lambda: group_lag(kafka, group, GATEWAY_EVENTS) == 0, "everything committed")
        assert counts() == (3000, 3000), "no batch inserted twice"
        assert REGISTRY.get_sample_value("extractguard_lander_store_up") == 1
        assert thread.is_alive()
    finally:
        store.away.clear()
        stop_in_thread(lander, thread)
