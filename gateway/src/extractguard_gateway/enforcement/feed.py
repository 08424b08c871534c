"""Feed a `DecisionCache` from the compacted `enforcement.decisions` topic in a background thread.

At start the thread reads every partition from its beginning to the end offsets it found (the
compacted topic holds the newest decision of every target), then sets `cache.ready` and keeps
following new records. Nothing on a request waits for it: until the cache is warm the bouncer
answers by its fail-open setting. Every `report_interval_s` the requests each decision affected are
produced to `enforcement.reports` (one record per decision and outcome), which the lander lands
beside the decisions.

Needs confluent-kafka (`pip install 'extractguard-gateway[kafka]'`).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections import Counter
from typing import Any, Protocol

from extractguard_gateway.enforcement._feed_thread import FeedThread

log = logging.getLogger("extractguard_gateway.enforcement")
DECISIONS_TOPIC = "enforcement.decisions"
REPORTS_TOPIC = "enforcement.reports"


class DecisionSink(Protocol):
    """What the feed fills: a bouncer's `DecisionCache`, or the ingest's `DecisionLog`, which serves
    the same records to bouncers over HTTP."""

    ready: threading.Event

    def apply(self, payload: dict[str, Any] | None, key: str | None = None, at: tuple[int, int] | None = None) -> bool:
        """Take one record (None: a tombstone for `key`) read at `at`, the topic's (partition, offset)."""
        ...

    def __len__(self) -> int: ...

    def take_counts(self) -> Counter[tuple[str, str, str, str]]: ...


def report_records(
    cache: DecisionSink, bouncer: str, instance: str, start_ms: int, end_ms: int
) -> list[dict[str, Any]]:
    """The counts taken from `cache` since the last report, as `bouncer_report` v1 records."""
    return [
        {
            "schema_version": 1,
            "report_id": uuid.uuid4().hex,
            "bouncer": bouncer,
            "instance": instance,
            "decision_id": decision_id,
            "action": action,
            "effect": effect,
            "outcome": outcome,
            "requests": requests,
            "window_start_ms": start_ms,
            "window_end_ms": end_ms,
        }
        for (decision_id, action, effect, outcome), requests in sorted(cache.take_counts().items())
    ]


class DecisionFeed(FeedThread):
    # The broker away, a bad record: log, wait, start over; requests go on.
    _failures = (Exception,)
    _retry_s = 5.0

    def __init__(
        self,
        cache: DecisionSink,
        bootstrap_servers: str,
        *,
        bouncer: str,
        topic: str = DECISIONS_TOPIC,
        reports_topic: str | None = REPORTS_TOPIC,
        report_interval_s: float = 30.0,
        client_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__("extractguard-decisions")
        self.cache = cache
        self.topic = topic
        self.reports_topic = reports_topic
        self.report_interval_s = report_interval_s
        self.bouncer = bouncer
        self.instance = f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
        self.config = {"bootstrap.servers": bootstrap_servers, **(client_config or {})}

    def _failed(self, error: Exception) -> None:
        log.exception("extractguard: the decision feed failed; retrying in 5 s")

    def _step(self) -> None:
        from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

        consumer = Consumer(
            {
                **self.config,
                "group.id": f"extractguard-bouncer-{self.instance}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        producer = Producer(self.config) if self.reports_topic else None
        try:
            metadata = consumer.list_topics(self.topic, timeout=10)
            topic = metadata.topics.get(self.topic)
            if topic is None or topic.error is not None:
                raise RuntimeError(f"topic {self.topic} unavailable: {None if topic is None else topic.error}")
            partitions = sorted(topic.partitions)
            ends = {p: consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1] for p in partitions}
            # Offset 0 -> "beginning": a compacted topic may have cleaned its first offsets away.
            consumer.assign([TopicPartition(self.topic, p, -2) for p in partitions])
            warming = {p for p, end in ends.items() if end > 0}
            if not warming:
                self.cache.ready.set()
            last_report = time.monotonic()
            window_start = int(time.time() * 1000)
            while not self._stop.is_set():
                message = consumer.poll(0.5)
                if message is not None:
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            warming.discard(message.partition() or 0)
                        else:
                            log.warning("extractguard: decision feed: %s", error)
                    else:
                        self._take(message.key(), message.value(), (message.partition() or 0, message.offset() or 0))
                        if (message.offset() or 0) + 1 >= ends.get(message.partition() or 0, 0):
                            warming.discard(message.partition() or 0)
                    if not warming and not self.cache.ready.is_set():
                        self.cache.ready.set()
                        log.info("extractguard: %d decisions loaded from %s", len(self.cache), self.topic)
                if producer is not None and time.monotonic() - last_report >= self.report_interval_s:
                    now = int(time.time() * 1000)
                    self.report(producer, window_start, now)
                    last_report, window_start = time.monotonic(), now
        finally:
            if producer is not None:
                self.report(producer, int(time.time() * 1000), int(time.time() * 1000))
                producer.flush(5)
            consumer.close()

    def _take(self, key: bytes | None, value: bytes | None, at: tuple[int, int]) -> None:
        try:
            self.cache.apply(None if value is None else json.loads(value), key.decode() if key else None, at)
            self.records += 1
        except (ValueError, KeyError, TypeError):  # not ours to dead-letter: the lander does that
            log.warning("extractguard: an unreadable decision record was skipped")

    def report(self, producer: Any, start_ms: int, end_ms: int) -> None:
        for record in report_records(self.cache, self.bouncer, self.instance, start_ms, end_ms):
            producer.produce(self.reports_topic, key=record["decision_id"].encode(), value=json.dumps(record).encode())
        producer.poll(0)
