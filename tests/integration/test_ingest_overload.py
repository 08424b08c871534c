"""The ingest driven at three times its capacity: it refuses the excess with 429 and `Retry-After`
(nothing of a refused request produced) instead of queueing it, every event it accepted is in Kafka
exactly once, and its memory stays flat.

Capacity here is the gateway token's rate limit (`EXTRACTGUARD_INGEST_RATE_LIMIT_EVENTS_PER_S`),
set low (500 events/s, a 1 s burst) so a test client on a shared machine can offer three times it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3

from extractguard.contracts import envelope
from extractguard.contracts.topics import GATEWAY_EVENTS
from extractguard.demo.processes import Service, wait_http
from extractguard.kafka_offsets import end_offsets, read_since
from extractguard.settings import KafkaSettings
from tests.integration.conftest import free_port

pytestmark = pytest.mark.kafka

LIMIT_PER_S = 500
OFFERED_PER_S = 3 * LIMIT_PER_S
REQUEST_EVENTS = 100
OFFER_S = 8.0


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


def test_three_times_capacity_is_refused_with_429_and_nothing_accepted_is_lost(
    kafka: KafkaSettings, services: list[Service], tmp_path: Path, run_id: str, golden: dict[str, list[Path]]
) -> None:
    port = free_port()
    ingest = Service("ingest", {"EXTRACTGUARD_INGEST_PORT": str(port), "EXTRACTGUARD_INGEST_TOKEN": "overload-token",
                                "EXTRACTGUARD_INGEST_RATE_LIMIT_EVENTS_PER_S": str(LIMIT_PER_S),
                                "EXTRACTGUARD_INGEST_RATE_LIMIT_BURST_S": "1"}, tmp_path)  # fmt: skip
    services.append(ingest)
    ingest.start()
    wait_http(f"http://127.0.0.1:{port}/healthz", 60, ingest)
    assert ingest.pid is not None
    since = end_offsets(kafka, GATEWAY_EVENTS)
    example = orjson.loads(golden["gateway_event"][0].read_bytes())
    http = urllib3.PoolManager(maxsize=4, retries=False, timeout=30)
    headers = {"Authorization": "Bearer overload-token", "Content-Type": "application/x-ndjson"}
    accepted: set[str] = set()
    refused: set[str] = set()
    statuses: list[int] = []
    retry_after: list[str | None] = []
    lock = threading.Lock()
    baseline_mb = _peak_rss_mb(ingest.pid)

    def post(number: int) -> None:
        now_ms = int(time.time() * 1000)
        events: list[dict[str, Any]] = [
            {**example, "event_id": f"{run_id}-{number:05d}-{n:03d}", "event_time_ms": now_ms - 1000}
            for n in range(REQUEST_EVENTS)
        ]
        body = b"\n".join(orjson.dumps(event) for event in events)
        answer = http.request("POST", f"http://127.0.0.1:{port}/v1/events", body=body, headers=headers)
        ids = {event["event_id"] for event in events}
        with lock:
            statuses.append(answer.status)
            if answer.status == 200:
                assert orjson.loads(answer.data)["accepted"] == REQUEST_EVENTS
                accepted.update(ids)
            else:
                refused.update(ids)
                retry_after.append(answer.headers.get("Retry-After"))

    interval = REQUEST_EVENTS / OFFERED_PER_S
    began = time.monotonic()
    senders: list[threading.Thread] = []
    number = 0
    while time.monotonic() - began < OFFER_S:
        sender = threading.Thread(target=post, args=(number,))
        sender.start()
        senders.append(sender)
        number += 1
        time.sleep(max(0.0, began + number * interval - time.monotonic()))
    for sender in senders:
        sender.join(timeout=60)
    elapsed = time.monotonic() - began
    peak_mb = _peak_rss_mb(ingest.pid)
    offered = number * REQUEST_EVENTS / elapsed
    print(f"ingest at {offered:.0f} events/s offered (limit {LIMIT_PER_S}): {len(accepted)} accepted, "
          f"{len(refused)} refused; peak RSS {peak_mb:.0f} MiB (before {baseline_mb:.0f})")  # fmt: skip

    assert set(statuses) <= {200, 429}, statuses
    assert refused, "three times the limit must be refused in part"
    assert all(value is not None and int(value) >= 1 for value in retry_after), retry_after
    # What was let through is the limit's worth, not the offer's: one burst plus the rate.
    assert len(accepted) <= LIMIT_PER_S * (elapsed + 1) + REQUEST_EVENTS
    landed = [orjson.loads(line)["event_id"] for value in read_since(kafka, GATEWAY_EVENTS, since)
              for line in envelope.split(value)]  # fmt: skip
    ours = [event_id for event_id in landed if event_id.startswith(f"{run_id}-")]
    assert set(ours) == accepted, "every accepted event in Kafka, nothing of a refused request"
    assert len(ours) == len(set(ours)), "an accepted event produced twice"
    assert ingest.alive(), ingest.tail()
    # Refusing costs no memory that grows with the offer: a loose bound, far below what queueing the
    # refused events (tens of MiB of bodies and their parsed events) would take.
    assert peak_mb - baseline_mb < 60, f"peak RSS {peak_mb:.0f} MiB, {baseline_mb:.0f} before the load"
