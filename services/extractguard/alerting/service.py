"""The alerter's loop: detections in, alerts out to on-call destinations and to the `alerts` topic.

Stages for each batch of detections:
1. validate each detection (invalid ones go to `detections.dlq`); a campaign record that says
   `closed` resolves its campaign's alert (the alerter reads `campaigns` for that alone);
2. apply it to the alert book (stream rules); add the SQL rules' alerts when their interval is due;
3. hand the alerts no silence covers and no rule only records to the dispatcher (one worker per
   destination, retried, rate-limited; each outcome produced to `alert.deliveries`), produce every
   alert to `alerts` (keyed by dedup key), wait for Kafka's acknowledgement, and only then commit
   the detections' offsets.
When more than `max_invalid_fraction` of the last `invalid_window_messages` detections were
invalid, `run` raises `TooManyInvalid` before committing that batch, and the process exits.
At start the book is rebuilt from the `alerts` topic, so a restart does not page again for alerts
that were already delivered. Rule files are reloaded when they change; silences and the SQL rules'
data are read from ClickHouse (through the lander's SQL door when it owns the embedded database).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from extractguard import metrics
from extractguard.alerting.book import AlertBook
from extractguard.alerting.destination import Destination
from extractguard.alerting.destinations import build_destination
from extractguard.alerting.dispatch import DeliveryRecord, Dispatcher
from extractguard.alerting.reload import RuleFiles
from extractguard.alerting.silences import SILENCES_IN_FORCE_SQL, Silence, SilenceBook, to_page
from extractguard.alerting.sql_rules import SqlRuleRunner
from extractguard.contracts.dead_letters import DeadLetter
from extractguard.contracts.rejection import InvalidMessage, InvalidRateGuard
from extractguard.contracts.schemas import decode_json, validate
from extractguard.contracts.topics import ALERT_DELIVERIES, ALERTS, CAMPAIGNS, DETECTIONS, dlq_name
from extractguard.health import PollHealth, run_with_probes
from extractguard.kafka_ready import retry_retriable
from extractguard.logs import configure
from extractguard.settings import AlerterSettings, ClickHouseSettings, KafkaSettings, LanderSettings
from extractguard.storage.client import is_embedded
from extractguard.storage.query import query_any, query_lander

SERVICE = "alerter"
log = configure(SERVICE)


def rebuild_book(
    book: AlertBook,
    kafka: KafkaSettings,
    lookback_s: int,
    timeout_s: float = 10.0,
    sql_rules: SqlRuleRunner | None = None,
) -> int:
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
            if sql_rules is not None:
                sql_rules.remember(alert)
            seen += 1
        if (message.offset() or 0) + 1 >= ends[partition]:
            pending.discard(partition)
    reader.close()
    return seen


#: `webhook_format` names the destination module each of `webhook_urls` goes to.
_LEGACY_KIND = {"generic": "webhook", "alertmanager": "alertmanager"}


def configured_destinations(settings: AlerterSettings) -> list[Destination]:
    shorthand = [
        {
            "kind": _LEGACY_KIND[settings.webhook_format],
            "url": url,
            "name": f"{_LEGACY_KIND[settings.webhook_format]}-{i}" if len(settings.webhook_urls) > 1 else None,
            "timeout_s": settings.delivery_timeout_s,
            "attempts": settings.delivery_attempts,
        }
        for i, url in enumerate(settings.webhook_urls)
    ]
    return [build_destination(config, settings.case_base_url) for config in shorthand + settings.destinations]


class Alerter:
    def __init__(
        self,
        settings: AlerterSettings,
        kafka: KafkaSettings,
        clickhouse: ClickHouseSettings | None = None,
        lander: LanderSettings | None = None,
    ) -> None:
        self.settings = settings
        self.health = PollHealth(SERVICE, max_silence_s=settings.max_poll_silence_s)
        self.rule_files = RuleFiles(settings.rules_dir)
        unknown = set(settings.extra_rules) - {r.name for r in self.rule_files.rules.optional}
        if unknown:
            raise ValueError(f"extra_rules {sorted(unknown)} are not optional rules of the rule files")
        self.book = AlertBook(self.rule_files.rules.with_optional(settings.extra_rules), settings.renotify_s)
        clickhouse_settings, lander_settings = clickhouse or ClickHouseSettings(), lander or LanderSettings()

        def ask(sql: str) -> tuple[list[str], list[list[Any]]]:
            # Never open an embedded database from here: chdb keeps it locked for the process's
            # life, and the lander that owns it would fail to start. Its SQL door answers instead.
            if is_embedded(clickhouse_settings.dsn):
                return query_lander(sql, lander_settings, timeout_s=30)
            return query_any(sql, clickhouse_settings, lander_settings)

        self.ask = ask
        self.sql_rules = SqlRuleRunner(
            self.rule_files.rules.sql if settings.sql_rules else (), ask, settings.renotify_s
        )
        self.silences = SilenceBook()
        self._silences_read_at = 0.0
        self._rules_checked_at = time.monotonic()
        self.dispatcher = Dispatcher(configured_destinations(settings), self._record_delivery)
        self.consumer = Consumer(
            {
                **kafka.client_config(),
                **settings.group_config(),
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.producer = Producer({**kafka.client_config(), "enable.idempotence": True, "acks": "all"})
        # A bad deploy upstream must not quietly route every detection to the DLQ: stop instead.
        self.guard = InvalidRateGuard(settings.max_invalid_fraction, window=settings.invalid_window_messages)
        self._stop = threading.Event()
        self.alerts_raised = 0
        remembered = rebuild_book(self.book, kafka, settings.rebuild_lookback_s, sql_rules=self.sql_rules)
        log.info("alert_book_rebuilt", alerts=remembered)

    def stop(self) -> None:
        self._stop.set()

    def _record_delivery(self, record: DeliveryRecord) -> None:
        # From the dispatcher's threads: confluent-kafka's producer is thread-safe.
        self.producer.produce(ALERT_DELIVERIES, key=record.alert_id.encode(), value=orjson.dumps(record.payload()))

    def _refresh(self) -> None:
        """Reload changed rule files; read the silences in force (both on their own intervals)."""
        now = time.monotonic()
        if now - self._rules_checked_at >= self.settings.rules_reload_s:
            self._rules_checked_at = now
            rules = self.rule_files.reload_if_changed()
            if rules is not None:
                self.book.rules = rules.with_optional(self.settings.extra_rules)
                self.sql_rules.replace_rules(rules.sql if self.settings.sql_rules else ())
        if now - self._silences_read_at >= self.settings.silences_refresh_s:
            self._silences_read_at = now
            try:
                _columns, rows = self.ask(SILENCES_IN_FORCE_SQL)
                self.silences.replace(Silence.from_row(row) for row in rows)
            except Exception as error:  # no ClickHouse yet, or no silences table: keep the last ones
                log.warning("silences_unreadable", error=str(error)[:300])

    def _handle(self, message: Message, due: list[dict[str, object]]) -> None:
        if message.topic() == CAMPAIGNS:
            self._campaign(message, due)
            return
        raw = message.value() or b""
        try:
            detection = validate("detection", decode_json(raw))
        except InvalidMessage as error:
            self.guard.record(valid=False)
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
        self.guard.record(valid=True)
        due += self.book.observe(detection, now_ms=int(time.time() * 1000))

    def _campaign(self, message: Message, due: list[dict[str, object]]) -> None:
        """A campaign record: a closed campaign resolves its alert. Invalid records are the lander's
        to dead-letter (it lands the same topic); here they are only skipped."""
        try:
            campaign = validate("campaign", decode_json(message.value() or b""))
        except InvalidMessage as error:
            log.warning("invalid_campaign", topic=CAMPAIGNS, partition=message.partition(), offset=message.offset(),
                        reason=str(error.code))  # fmt: skip
            return
        if campaign["status"] == "closed":
            due += self.book.campaign_closed(campaign["campaign_id"], now_ms=int(time.time() * 1000))

    def _publish(self, due: list[dict[str, Any]]) -> None:
        if not due:
            return
        self.dispatcher.submit(to_page(due, self.silences, int(time.time() * 1000)))
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
        self.consumer.subscribe([DETECTIONS, CAMPAIGNS])
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
                self._refresh()
                now_ms = int(time.time() * 1000)
                due += self.book.due_updates(now_ms)
                due += self.sql_rules.run_due(now_ms)
                self._publish(due)
                if messages:
                    if self.producer.flush(30):
                        raise RuntimeError("alerts not acknowledged by Kafka within 30 s")
                    # A broker restarting answers NOT_COORDINATOR for a while: wait it out.
                    retry_retriable(lambda: self.consumer.commit(asynchronous=False), "commit of detections", 120)
        finally:
            self.dispatcher.close()
            self.producer.flush(30)
            self.consumer.close()


def run() -> None:
    alerter = Alerter(AlerterSettings(), KafkaSettings())
    run_with_probes(alerter, alerter.health, alerter.settings.web_host, alerter.settings.web_port)
