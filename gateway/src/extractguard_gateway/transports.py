"""The two ways a batch reaches ExtractGuard: its HTTP ingest, or Kafka directly.

HTTP needs nothing beyond the standard library (the ingest validates again and dead-letters what
it refuses, answering per event). Kafka needs the `kafka` extra (confluent-kafka); each event is
one message keyed by its account with librdkafka's Java-compatible murmur2 partitioner, so it lands
in the partition every other ExtractGuard producer picks for that account, and librdkafka does the
batching (`linger.ms`). Both are used from the sender's thread only.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from extractguard_gateway.sender import Delivery, TransportUnavailable

NDJSON = "application/x-ndjson"


class HttpTransport:
    """POSTs NDJSON batches to the ingest's `/v1/events` with its bearer token."""

    def __init__(self, url: str, token: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/") + "/v1/events" if not url.rstrip("/").endswith("/v1/events") else url
        self.token = token
        self.timeout_s = timeout_s

    def send(self, lines: list[bytes]) -> Delivery:
        request = urllib.request.Request(
            self.url,
            data=b"\n".join(lines),
            method="POST",
            headers={"Content-Type": NDJSON, "Authorization": f"Bearer {self.token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                answer: dict[str, Any] = json.loads(response.read())
        except urllib.error.HTTPError as error:
            if error.code >= 500 or error.code == 429:
                raise TransportUnavailable(f"ingest answered {error.code}") from None
            raise RuntimeError(f"ingest refused the batch with {error.code}: {error.read()[:200]!r}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            raise TransportUnavailable(f"ingest unreachable: {error}") from None
        rejected = [
            str(result.get("error", {}).get("code", "rejected"))
            for result in answer.get("results", [])
            if result.get("status") == "rejected"
        ]
        return Delivery(accepted=int(answer.get("accepted", 0)), rejected=rejected)

    def close(self) -> None:
        pass


class KafkaTransport:
    """Produces each event to `gateway.events` keyed by account (needs the `kafka` extra)."""

    def __init__(self, bootstrap_servers: str, topic: str = "gateway.events", config: dict[str, Any] | None = None,
                 timeout_s: float = 10.0) -> None:  # fmt: skip
        from confluent_kafka import Producer  # the optional extra: imported only when used

        self.topic = topic
        self.timeout_s = timeout_s
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "partitioner": "murmur2_random",  # Java's murmur2: the partition ExtractGuard uses
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 20,
                "compression.type": "lz4",
                **(config or {}),
            }
        )

    def send(self, lines: list[bytes]) -> Delivery:
        failed: list[str] = []

        def done(error: Any, _message: Any) -> None:
            if error is not None:
                failed.append(str(error))

        for line in lines:
            account = json.loads(line)["account_id"]
            try:
                self._producer.produce(
                    self.topic,
                    value=line,
                    key=account.encode(),
                    headers=[("content-type", NDJSON.encode()), ("eg-event-count", b"1")],
                    on_delivery=done,
                )
            except BufferError:
                self._producer.flush(self.timeout_s)
                raise TransportUnavailable("librdkafka's queue is full") from None
        remaining = self._producer.flush(self.timeout_s)
        if remaining or failed:
            raise TransportUnavailable(f"{remaining} unacknowledged, {len(failed)} failed: {failed[:1]}")
        return Delivery(accepted=len(lines))

    def close(self) -> None:
        self._producer.flush(self.timeout_s)
