"""Publish gateway events to Kafka in batch envelopes, partitioned by account.

Events are buffered per target partition and sent as one NDJSON envelope when a buffer reaches
`envelope_max_events` / `envelope_max_bytes` or is older than `linger_ms`. The producer is
idempotent with acks=all, so a retried send never duplicates an envelope in the log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer

from extractguard.contracts import envelope
from extractguard.contracts.envelope import KafkaHeaders
from extractguard.contracts.topics import GATEWAY_EVENTS
from extractguard.gateway.partitioning import partition_for
from extractguard.settings import KafkaSettings, PublisherSettings


class PublishError(RuntimeError):
    """Kafka did not accept some envelopes after the producer's own retries."""


@dataclass(slots=True)
class _Buffer:
    lines: list[bytes] = field(default_factory=list)
    size: int = 0
    first_key: str = ""
    opened_at: float = 0.0


class EventPublisher:
    """Thread-safe; call `close()` (or use it as a context manager) to send what is buffered.

    Must be given events that already passed validation: it does not check them again.
    """

    def __init__(
        self,
        kafka: KafkaSettings | None = None,
        settings: PublisherSettings | None = None,
        topic: str = GATEWAY_EVENTS,
        background_linger: bool = True,
    ) -> None:
        self.kafka = kafka or KafkaSettings()
        self.settings = settings or PublisherSettings()
        self.topic = topic
        self._producer = Producer(
            {
                **self.kafka.client_config(),
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
                "message.max.bytes": max(self.settings.envelope_max_bytes * 2, 1_048_576),
            }
        )
        self.partitions = self._partition_count()
        self._buffers = [_Buffer() for _ in range(self.partitions)]
        self._lock = threading.Lock()
        self.events_delivered = 0
        self.envelopes_delivered = 0
        self.events_failed = 0
        self._last_error: str | None = None
        self._closed = threading.Event()
        self._linger_thread: threading.Thread | None = None
        if background_linger and self.settings.linger_ms > 0:
            self._linger_thread = threading.Thread(target=self._linger_loop, daemon=True)
            self._linger_thread.start()

    def _partition_count(self) -> int:
        metadata = self._producer.list_topics(self.topic, timeout=30)
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise PublishError(f"topic {self.topic} is not available: {topic.error if topic else 'missing'}")
        return len(topic.partitions)

    def publish(self, event: dict[str, Any]) -> None:
        self.publish_encoded(orjson.dumps(event), event["account_id"])

    def publish_many(self, events: Iterable[dict[str, Any]]) -> None:
        for event in events:
            self.publish(event)

    def publish_encoded(self, line: bytes, account_id: str) -> None:
        partition = partition_for(account_id, self.partitions)
        with self._lock:
            buffer = self._buffers[partition]
            if not buffer.lines:
                buffer.first_key = account_id
                buffer.opened_at = time.monotonic()
            buffer.lines.append(line)
            buffer.size += len(line) + 1
            if (
                len(buffer.lines) >= self.settings.envelope_max_events
                or buffer.size >= self.settings.envelope_max_bytes
            ):
                self._send(partition)
        self._producer.poll(0)

    def _send(self, partition: int) -> None:
        buffer = self._buffers[partition]
        if not buffer.lines:
            return
        count = len(buffer.lines)
        self._buffers[partition] = _Buffer()
        self.produce_envelope(
            partition,
            buffer.lines,
            buffer.first_key,
            lambda err, msg, n=count: self._on_delivery(err, msg, n),  # type: ignore[misc]
        )

    def produce_envelope(
        self,
        partition: int,
        lines: list[bytes],
        key: str,
        on_delivery: Callable[[KafkaError | None, Message], None],
        topic: str | None = None,
        extra_headers: KafkaHeaders | None = None,
    ) -> None:
        """Produce one envelope now, waiting out a full local queue (backpressure, not loss)."""
        body = envelope.encode(lines)
        headers = envelope.headers(len(lines)) + (extra_headers or [])
        while True:
            try:
                self._producer.produce(
                    topic or self.topic,
                    value=body,
                    key=key.encode(),
                    partition=partition,
                    headers=headers,
                    on_delivery=on_delivery,
                )
                return
            except BufferError:
                self._producer.poll(0.1)

    def produce_raw(
        self,
        topic: str,
        value: bytes,
        headers: KafkaHeaders,
        on_delivery: Callable[[KafkaError | None, Message], None],
    ) -> None:
        """Produce one message as it is (dead letters keep their original bytes)."""
        while True:
            try:
                self._producer.produce(topic, value=value, headers=headers, on_delivery=on_delivery)
                return
            except BufferError:
                self._producer.poll(0.1)

    def poll(self, timeout_s: float = 0.0) -> int:
        """Serve delivery callbacks."""
        return int(self._producer.poll(timeout_s))

    def _on_delivery(self, error: KafkaError | None, _message: Message, count: int) -> None:
        if error is None:
            self.events_delivered += count
            self.envelopes_delivered += 1
        else:
            self.events_failed += count
            self._last_error = str(error)

    def flush_due(self) -> None:
        """Send every buffer older than the linger time."""
        deadline = time.monotonic() - self.settings.linger_ms / 1000
        with self._lock:
            for partition, buffer in enumerate(self._buffers):
                if buffer.lines and buffer.opened_at <= deadline:
                    self._send(partition)
        self._producer.poll(0)

    def flush(self, timeout_s: float = 60.0) -> None:
        """Send everything buffered and wait for Kafka to acknowledge it."""
        with self._lock:
            for partition in range(self.partitions):
                self._send(partition)
        remaining = self._producer.flush(timeout_s)
        if remaining:
            raise PublishError(f"{remaining} envelopes still unacknowledged after {timeout_s}s")
        if self.events_failed:
            raise PublishError(f"{self.events_failed} events were not delivered: {self._last_error}")

    def _linger_loop(self) -> None:
        interval = self.settings.linger_ms / 1000
        while not self._closed.wait(interval):
            self.flush_due()

    def close(self) -> None:
        """Send what is buffered and release the Kafka client; a closed publisher is not used again."""
        self._closed.set()
        if self._linger_thread is not None:
            self._linger_thread.join()
        self.flush()
        # librdkafka's client keeps reconnecting (and logging each failure) while the object lives:
        # a demo that stops its broker would print pages of them before the process ends.
        del self._producer

    def __enter__(self) -> EventPublisher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
