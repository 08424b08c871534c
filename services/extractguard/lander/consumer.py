"""The lander's consume loop: batch, insert into ClickHouse, then commit offsets.

Stages, in order, for every batch:
1. consume up to 1,000 messages from the landed topics (gateway.events, detections, alerts);
2. split envelopes, validate each payload; invalid ones become dead letters with their source
   topic[partition] offset and line;
3. when the batch is full or old enough: insert one block per table (its rows, turned into Arrow
   as they came, sent as one Arrow table: `blocks`), produce the dead letters and wait for their
   acknowledgement, and only then commit the offsets.

Exactly once in effect: each row carries its Kafka partition and offset, and on partition
assignment the lander resumes after the highest offset already in ClickHouse when that is ahead
of the committed offset (a crash between insert and commit). Each insert is one block, written
atomically, so a kill mid-insert leaves all of a batch or none of it.

ClickHouse away (a server that stops answering, a disk that refuses writes): the batch's insert is
retried with back-off (doubling, at most `store_retry_max_s` apart) for up to `store_outage_max_s`,
nothing is committed meanwhile and nothing more is consumed; `extractguard_lander_store_up` is 0.
When the store is back the batch is inserted once and the loop carries on. Past the outage
allowance the lander stops, its batch uncommitted (the next start lands it). An outage longer than
the consumer's poll interval (300 s) costs the group membership: the commit after it is skipped and
the lander, reassigned, resumes after the highest offset landed, as after a crash.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pyarrow as pa
from clickhouse_connect.driver.client import Client
from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from extractguard import metrics
from extractguard.contracts.dead_letters import DeadLetter
from extractguard.contracts.intake import receive
from extractguard.contracts.rejection import InvalidRateGuard
from extractguard.contracts.topics import dlq_name
from extractguard.health import PollHealth
from extractguard.kafka_ready import retry_retriable
from extractguard.lander.blocks import Block
from extractguard.lander.sinks import Sink, sinks
from extractguard.logs import configure
from extractguard.settings import KafkaSettings, LanderSettings

SERVICE = "lander"
#: A commit refused because this consumer is no longer the partitions' owner (after a broker outage).
_MEMBERSHIP_LOST = {KafkaError.UNKNOWN_MEMBER_ID, KafkaError.ILLEGAL_GENERATION, KafkaError.REBALANCE_IN_PROGRESS}
log = configure(SERVICE)


class Lander:
    def __init__(
        self,
        client: Client,
        client_lock: threading.Lock,
        settings: LanderSettings,
        kafka: KafkaSettings,
        liveness_file: Path | None = None,
        health: PollHealth | None = None,
    ) -> None:
        self.health = health or PollHealth(SERVICE)  # its beats also keep the last-poll gauge
        self.client = client
        self.client_lock = client_lock
        self.settings = settings
        self.sinks: dict[str, Sink] = sinks()
        self.liveness_file = liveness_file
        self.consumer = Consumer(
            {
                **kafka.client_config(),
                **settings.group_config(),
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
                "max.poll.interval.ms": 300_000,
            }
        )
        self.producer = Producer({**kafka.client_config(), "enable.idempotence": True, "acks": "all"})
        self.guard = InvalidRateGuard(settings.max_invalid_fraction)
        self._stop = threading.Event()
        self.assigned = threading.Event()
        self._blocks: dict[str, Block] = {}
        self._dead: list[DeadLetter] = []
        self._positions: dict[tuple[str, int], int] = {}
        self._batch_opened = 0.0
        self.rows_landed = 0

    # -- resume -----------------------------------------------------------------------------

    def landed_offsets(self, sink: Sink) -> dict[int, int]:
        with self.client_lock:
            result = self.client.query(
                f"SELECT kafka_partition, max(kafka_offset) FROM {sink.table} GROUP BY kafka_partition"
            )
        return {int(p): int(o) for p, o in result.result_rows}

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        committed = {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(partitions, timeout=30)}
        landed = {topic: self.landed_offsets(sink) for topic, sink in self.sinks.items()}
        for tp in partitions:
            resume = landed[tp.topic].get(tp.partition)
            start = committed.get((tp.topic, tp.partition), OFFSET_INVALID)
            if resume is not None and (start < 0 or resume + 1 > start):
                tp.offset = resume + 1
                log.info(
                    "resume_after_landed",
                    topic=tp.topic,
                    partition=tp.partition,
                    offset=tp.offset,
                    committed=start,
                )
        consumer.assign(partitions)
        self.assigned.set()
        log.info("partitions_assigned", partitions=[f"{tp.topic}[{tp.partition}]" for tp in partitions])

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Land what we hold for these partitions before another lander takes them over.
        self.flush()

    # -- per message ------------------------------------------------------------------------

    def handle(self, message: Message) -> None:
        topic, partition, offset = message.topic() or "", message.partition() or 0, message.offset() or 0
        sink = self.sinks[topic]
        intake = receive(
            message.value() or b"", sink.validate, service=SERVICE, topic=topic, partition=partition,
            offset=offset, guard=self.guard, lines=sink.lines,
        )  # fmt: skip
        block = self._blocks.get(sink.table)
        if block is None:
            block = self._blocks[sink.table] = Block(sink.schema)
        for payload in intake.valid:
            block.add(sink.row(payload, partition, offset))
        for dead in intake.dead:
            log.warning("invalid_message", topic=topic, partition=partition, offset=offset, line=dead.line,
                        reason=str(dead.error.code), detail=dead.error.detail)  # fmt: skip
        self._dead += intake.dead
        self._positions[(topic, partition)] = offset + 1

    # -- per batch --------------------------------------------------------------------------

    def _pending_rows(self) -> int:
        return sum(block.rows for block in self._blocks.values())

    def flush(self) -> None:
        if not self._positions:
            return
        try:
            for sink in self.sinks.values():
                block = self._blocks.get(sink.table)
                if block is not None and block.rows:
                    self._insert(sink, block.to_arrow())
            if self._dead:
                self._send_dead_letters()
            self._commit([TopicPartition(t, p, o) for (t, p), o in self._positions.items()])
        finally:
            # Whether it worked or not, this batch is done here: after a failure the lander stops,
            # and the batch is read again from the last commit (and not landed twice, see above).
            # Keeping it would let the revoke handler insert it a second time on the way out.
            self._blocks.clear()
            self._dead.clear()
            self._positions.clear()

    def _commit(self, offsets: list[TopicPartition]) -> None:
        # A broker restarting answers NOT_COORDINATOR for a while (make chaos stopped the lander
        # with it): wait it out. If the group dropped us meanwhile, the commit is moot: the rows
        # are in ClickHouse, and whoever is assigned these partitions next (this lander, once it
        # rejoins) resumes after the highest offset landed (`_on_assign`).
        try:
            retry_retriable(lambda: self.consumer.commit(offsets=offsets, asynchronous=False),
                            "commit of the landed offsets", timeout_s=120)  # fmt: skip
        except KafkaException as error:
            code = error.args[0].code() if error.args and isinstance(error.args[0], KafkaError) else None
            if code not in _MEMBERSHIP_LOST:
                raise
            log.warning("commit_skipped", reason="group membership lost; the next assignment resumes after "
                        "the highest offset landed", error=str(error)[:200])  # fmt: skip

    def _insert(self, sink: Sink, rows: pa.Table) -> None:
        table = sink.table
        outage_began: float | None = None
        delay = 0.5
        while True:
            started = time.perf_counter()
            try:
                with self.client_lock:
                    self.client.insert_arrow(table, rows, settings=dict(sink.insert_settings))
            except Exception as error:
                metrics.LANDER_INSERT_ERRORS.labels(table).inc()
                metrics.LANDER_STORE_UP.set(0)
                now = time.monotonic()
                outage_began = now if outage_began is None else outage_began
                if now - outage_began >= self.settings.store_outage_max_s or self._stop.is_set():
                    log.error("insert_failed", table=table, rows=rows.num_rows, error=str(error)[:500],
                              outage_s=round(now - outage_began, 1), giving_up=True)  # fmt: skip
                    raise
                log.error("insert_failed", table=table, rows=rows.num_rows, error=str(error)[:500],
                          outage_s=round(now - outage_began, 1), retry_in_s=delay)  # fmt: skip
                self._stop.wait(delay)
                # Waiting out the store is not a stuck loop: /healthz stays up, a restart would not help.
                self._touch_liveness()
                delay = min(delay * 2, self.settings.store_retry_max_s)
                continue
            metrics.LANDER_STORE_UP.set(1)
            if outage_began is not None:
                log.info("store_back", table=table, rows=rows.num_rows,
                         outage_s=round(time.monotonic() - outage_began, 1))  # fmt: skip
            metrics.LANDER_INSERT_SECONDS.labels(table).observe(time.perf_counter() - started)
            metrics.LANDER_ROWS.labels(table).inc(rows.num_rows)
            self.rows_landed += rows.num_rows
            return

    def _send_dead_letters(self) -> None:
        failures: list[str] = []

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                failures.append(str(error))

        for dead in self._dead:
            dlq = dlq_name(dead.source_topic or "")
            self.producer.produce(dlq, value=dead.original, headers=dead.headers(), on_delivery=delivered)
            metrics.DLQ_MESSAGES.labels(dlq, str(dead.error.code)).inc()
        if self.producer.flush(30) or failures:
            # Not committing is the safe answer: the batch will be landed again (idempotently).
            raise RuntimeError(f"dead letters not acknowledged: {failures or 'timeout'}")

    # -- loop -------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        self.consumer.subscribe(list(self.sinks), on_assign=self._on_assign, on_revoke=self._on_revoke)
        log.info("lander_started", topics=list(self.sinks))
        try:
            while not self._stop.is_set():
                messages = self.consumer.consume(num_messages=1000, timeout=0.2)
                self._touch_liveness()
                for message in messages:
                    if message.error():
                        log.warning("consume_error", error=str(message.error()))
                        continue
                    if not self._positions:
                        self._batch_opened = time.monotonic()
                    self.handle(message)
                if self._positions and (
                    self._pending_rows() >= self.settings.batch_max_rows
                    or time.monotonic() - self._batch_opened >= self.settings.batch_max_wait_s
                ):
                    self.flush()
            self.flush()
        finally:
            self.consumer.close()
            log.info("lander_stopped", rows_landed=self.rows_landed)

    def _touch_liveness(self) -> None:
        self.health.beat()
        if self.liveness_file is not None:
            self.liveness_file.touch()
