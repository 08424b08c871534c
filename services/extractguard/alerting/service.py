"""The alerter's loop: detections in, alerts out to webhooks and to the `alerts` topic.

Stages for each batch of detections:
1. validate each detection (invalid ones go to `detections.dlq`);
2. apply it to the alert book; collect the alerts due for delivery;
3. deliver them to the webhooks (retried), produce them to `alerts` (keyed by dedup key), wait for
   Kafka's acknowledgement, and only then commit the detections' offsets.
At start the book is rebuilt from the `alerts` topic, so a restart does not page again for alerts
that were already delivered.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from extractguard import metrics
from extractguard.alerting.book import AlertBook
from extractguard.alerting.delivery import WebhookDelivery
from extractguard.alerting.rules import DEFAULT_RULES, OPTIONAL_RULES
from extractguard.contracts.dead_letters import DeadLetter
from extractguard.contracts.rejection import InvalidMessage
from extractguard.contracts.schemas import decode_json, validate
from extractguard.contracts.topics import ALERTS, DETECTIONS, dlq_name
from extractguard.health import HealthServer, PollHealth
from extractguard.logs import configure
from extractguard.settings import AlerterSettings, KafkaSettings

SERVICE = "alerter"
log = configure(SERVICE)


def rebuild_book(book: AlertBook, kafka: KafkaSettings, lookback_s: int, timeout_s: float = 10.0) -> int:
    """Read the alerts topic to its end and remember the newest version of every alert delivered
    within the lookback; older ones are history, and a new detection opens them again."""
    if lookback_s <= 0:
        return 0
    since_ms = int(time.time() * 1000) - lookback_s * 1000
    reader = Consumer(
        {
            **kafka.client_config(),
            "group.id": "extractguard-alerter-rebuild",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    metadata = reader.list_topics(ALERTS, timeout=timeout_s)
    partitions = [TopicPartition(ALERTS, p, 0) for p in metadata.topics[ALERTS].partitions]
    ends = {p.partition: reader.get_watermark_offsets(p, timeout=timeout_s)[1] for p in partitions}
    pending = {p for p, end in ends.items() if end > 0}
    reader.assign([TopicPartition(ALERTS, p, 0) for p in pending])
    seen = 0
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        message = reader.poll(0.5)
        if message is None:
            continue
        partition = message.partition() or 0
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                pending.discard(partition)
            continue
        alert = orjson.loads(message.value() or b"{}")
        if alert.get("fired_at_ms", 0) >= since_ms:
            book.remember(alert)
            seen += 1
        if (message.offset() or 0) + 1 >= ends[partition]:
            pending.discard(partition)
    reader.close()
    return seen


class Alerter:
    def __init__(self, settings: AlerterSettings, kafka: KafkaSettings) -> None:
        self.settings = settings
        self.health = PollHealth(SERVICE, max_silence_s=settings.max_poll_silence_s)
        rules = DEFAULT_RULES + tuple(r for r in OPTIONAL_RULES if r.name in settings.extra_rules)
        self.book = AlertBook(rules, settings.renotify_s)
        self.delivery = WebhookDelivery(
            settings.webhook_urls,
            settings.webhook_format,
            settings.delivery_timeout_s,
            settings.delivery_attempts,
        )
        self.consumer = Consumer(
            {
                **kafka.client_config(),
                "group.id": settings.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.producer = Producer({**kafka.client_config(), "enable.idempotence": True, "acks": "all"})
        self._stop = threading.Event()
        self.alerts_raised = 0
        remembered = rebuild_book(self.book, kafka, settings.rebuild_lookback_s)
        log.info("alert_book_rebuilt", alerts=remembered)

    def stop(self) -> None:
        self._stop.set()

    def _handle(self, message: Message, due: list[dict[str, object]]) -> None:
        raw = message.value() or b""
        try:
            detection = validate("detection", decode_json(raw))
        except InvalidMessage as error:
            dead = DeadLetter(
                raw, error, SERVICE, f"kafka:{DETECTIONS}", DETECTIONS, message.partition(), message.offset()
            )
            self.producer.produce(dlq_name(DETECTIONS), value=raw, headers=dead.headers())
            metrics.DLQ_MESSAGES.labels(dlq_name(DETECTIONS), str(error.code)).inc()
            log.warning(
                "invalid_detection",
                topic=DETECTIONS,
                partition=message.partition(),
                offset=message.offset(),
                reason=str(error.code),
                detail=error.detail,
            )
            return
        due += self.book.observe(detection, now_ms=int(time.time() * 1000))

    def _publish(self, due: list[dict[str, Any]]) -> None:
        if not due:
            return
        if not self.delivery.deliver(due):
            log.error("webhook_delivery_failed", alerts=len(due))
        for alert in due:
            self.producer.produce(ALERTS, key=str(alert["dedup_key"]).encode(), value=orjson.dumps(alert))
            metrics.ALERTS.labels(str(alert["rule"]), str(alert["severity"])).inc()
            log.info(
                "alert",
                rule=alert["rule"],
                severity=alert["severity"],
                entity=alert["entity"],
                accounts=len(alert["accounts"]),
            )
        self.alerts_raised += len(due)

    def run(self) -> None:
        self.consumer.subscribe([DETECTIONS])
        try:
            while not self._stop.is_set():
                messages = self.consumer.consume(num_messages=500, timeout=0.5)
                self.health.beat()
                due: list[dict[str, object]] = []
                for message in messages:
                    if message.error():
                        log.warning("consume_error", error=str(message.error()))
                        continue
                    self._handle(message, due)
                due += self.book.due_updates(int(time.time() * 1000))
                self._publish(due)
                if messages:
                    if self.producer.flush(30):
                        raise RuntimeError("alerts not acknowledged by Kafka within 30 s")
                    self.consumer.commit(asynchronous=False)
        finally:
            self.producer.flush(30)
            self.consumer.close()


def run() -> None:
    alerter = Alerter(AlerterSettings(), KafkaSettings())

    def stop(_signum: int, _frame: FrameType | None) -> None:
        alerter.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server = HealthServer(alerter.health, alerter.settings.web_host, alerter.settings.web_port)
    server.start()
    try:
        alerter.run()
    finally:
        server.stop()
