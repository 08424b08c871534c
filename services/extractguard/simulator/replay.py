"""Replay a simulated stream in (accelerated) real time through the gateway SDK and HTTP ingest.

Simulated event time runs `speed` times faster than the wall clock and is anchored so that the
last event is stamped "now": no event is ever in the future, however fast the replay runs.
A share of organic accounts posts through the HTTP ingest, as some gateways would, and a few
malformed events of every kind are mixed in there to show rejection and the DLQ at work.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import urllib3

from extractguard.gateway.events import build_event
from extractguard.gateway.publisher import EventPublisher
from extractguard.simulator.traffic import Scenario, generate

KEY_SECRET = b"demo-gateway-key-secret"


def malformed_events(valid: dict[str, Any], now_ms: int) -> list[tuple[str, bytes]]:
    """One example of each kind of bad input the contract rejects, built from a valid event."""

    def variant(**changes: Any) -> bytes:
        return orjson.dumps({**valid, **changes})

    missing = {k: v for k, v in valid.items() if k != "account_id"}
    return [
        ("not_json", b"{this is not json"),
        ("wrong_type", variant(input_tokens="lots")),
        ("missing_field", orjson.dumps(missing)),
        ("unknown_schema_version", variant(schema_version=7)),
        ("negative_tokens", variant(output_tokens=-5)),
        ("future_timestamp", variant(event_time_ms=now_ms + 86_400_000)),
        ("oversized_field", variant(user_agent="x" * 5000)),
        ("invalid_utf8", b'{"schema_version": 1, "account_id": "\xff\xfe"}'),
        ("not_an_object", b"[1, 2, 3]"),
        ("unknown_field", variant(prompt_text="raw prompts must never be sent")),
    ]


@dataclass(slots=True)
class ReplayStats:
    events_sent: int = 0
    events_sent_http: int = 0
    events_rejected: int = 0
    campaign_first_sent_wall: float | None = None
    campaign_first_event_ms: int | None = None
    labels: dict[str, str] = field(default_factory=dict)


class Replayer:
    def __init__(
        self,
        scenario: Scenario,
        publisher: EventPublisher,
        ingest_url: str,
        ingest_token: str,
        wall_seconds: float,
        http_share: int = 5,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.publisher = publisher
        self.ingest_url = ingest_url
        self.ingest_headers = {
            "Authorization": f"Bearer {ingest_token}",
            "Content-Type": "application/x-ndjson",
        }
        self.wall_seconds = wall_seconds
        self.speed = scenario.duration_s / wall_seconds
        self.http_share = http_share
        self.http = urllib3.PoolManager(retries=urllib3.Retry(total=5, backoff_factor=0.2))
        self.progress = progress or (lambda _msg: None)
        self.stats = ReplayStats()
        self._http_batch: list[bytes] = []

    def _post(self) -> None:
        if not self._http_batch:
            return
        response = self.http.request(
            "POST", self.ingest_url, body=b"\n".join(self._http_batch), headers=self.ingest_headers
        )
        if response.status != 200:
            raise RuntimeError(f"ingest answered {response.status}: {response.data[:300]!r}")
        answer = orjson.loads(response.data)
        self.stats.events_rejected += answer["rejected"]
        self._http_batch = []

    def run(self) -> ReplayStats:
        wall_start = time.time()
        sim_start_ms = int((wall_start - self.wall_seconds * (self.speed - 1)) * 1000)
        last_post = last_report = time.monotonic()
        malformed_due = 5.0
        for account, request in generate(self.scenario, sim_start_ms):
            due_wall = wall_start + (request.event_time_ms - sim_start_ms) / 1000 / self.speed
            delay = due_wall - time.time()
            if delay > 0:
                time.sleep(delay)
            event = build_event(request, KEY_SECRET)
            self.stats.labels[account.account_id] = account.label
            self.stats.events_sent += 1
            if account.label == "campaign" and self.stats.campaign_first_sent_wall is None:
                self.stats.campaign_first_sent_wall = time.time()
                self.stats.campaign_first_event_ms = request.event_time_ms
            if account.label == "organic" and zlib.crc32(account.account_id.encode()) % self.http_share == 0:
                self._http_batch.append(orjson.dumps(event))
                self.stats.events_sent_http += 1
                if time.time() - wall_start > malformed_due:
                    malformed_due += 10.0
                    for _kind, raw in malformed_events(event, int(time.time() * 1000)):
                        self._http_batch.append(raw)
                        self.stats.events_sent += 1
                        self.stats.events_sent_http += 1
            else:
                self.publisher.publish(event)
            now = time.monotonic()
            if now - last_post >= 0.5:
                self._post()
                last_post = now
            if now - last_report >= 10:
                last_report = now
                self.progress(
                    f"sent {self.stats.events_sent:,} events ({self.stats.events_sent_http:,} over HTTP), "
                    f"{self.stats.events_rejected} rejected"
                )
        self._post()
        self.publisher.flush()
        return self.stats
