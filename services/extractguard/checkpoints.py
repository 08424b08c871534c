"""Where detection engines are checkpointed: a compacted Kafka topic of our own, one partition per
partition of `gateway.events`, whose last record is the partition's latest checkpoint.

Not a Faust table: on restart, faust-streaming 0.15 can hand the agent a gap in the source offsets
while it recovers a table's changelog (faust-streaming/faust#596) and then never commits that
partition again. A topic we write and read ourselves keeps Faust's recovery out of the way, and
reading a checkpoint is one seek to the partition's last offset.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from extractguard.kafka_ready import KafkaNotReady, retry_retriable, wait_for_leaders
from extractguard.replication import Replication, replication_for
from extractguard.settings import KafkaSettings


class CheckpointError(RuntimeError):
    pass


class CheckpointStore:
    """Blocking calls: run them off the event loop (`asyncio.to_thread`)."""

    def __init__(
        self, kafka: KafkaSettings, topic: str, partitions: int, replication: Replication | None = None
    ) -> None:
        self.kafka = kafka
        self.topic = topic
        self.partitions = partitions
        #: The cluster's (`replication_for` its broker count) unless given: a checkpoint is what a
        #: restarted worker resumes from, so it is kept as many times as the topics it covers.
        self.replication = replication
        self._producer: Producer | None = None  # made on first use: importing the app connects to nothing

    def _producer_for_saves(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(
                {**self.kafka.client_config(), "enable.idempotence": True, "acks": "all", "message.max.bytes": 16 << 20}
            )
        return self._producer

    def ensure_topic(self) -> None:
        admin = AdminClient(self.kafka.client_config())
        metadata = admin.list_topics(timeout=30)
        existing = metadata.topics.get(self.topic)
        if existing is not None and existing.error is None:
            if len(existing.partitions) != self.partitions:
                raise CheckpointError(
                    f"{self.topic} has {len(existing.partitions)} partitions, the source has {self.partitions}"
                )
            return
        config = {
            "cleanup.policy": "compact",
            # Compact often: a restart reads only the last record, but disk should not keep every one.
            "segment.ms": "600000",
            "min.cleanable.dirty.ratio": "0.1",
            "max.message.bytes": str(16 << 20),
        }
        replication = self.replication or replication_for(len(metadata.brokers))
        config.update(replication.topic_config())
        topic = NewTopic(self.topic, self.partitions, replication_factor=replication.factor, config=config)

        def create() -> None:
            for future in admin.create_topics([topic]).values():
                try:
                    future.result()
                except KafkaException as error:
                    if "TOPIC_ALREADY_EXISTS" not in str(error):
                        raise

        try:
            # A broker slow to answer (a loaded machine, one still starting) is waited for: a worker
            # that died here would only be restarted to ask again.
            retry_retriable(create, f"creation of {self.topic}", timeout_s=120)
        except (KafkaException, KafkaNotReady) as error:
            raise CheckpointError(f"could not create {self.topic}: {error}") from error
        try:
            wait_for_leaders(admin, {self.topic: self.partitions}, timeout_s=60)
        except KafkaNotReady as error:
            raise CheckpointError(f"{self.topic} created but not ready: {error}") from error

    def save(self, partition: int, blob: bytes, timeout_s: float = 30.0) -> None:
        """Write a checkpoint and return once Kafka has it (acks=all)."""
        outcome: list[KafkaError | None] = []

        def delivered(error: KafkaError | None, _message: Message) -> None:
            outcome.append(error)

        producer = self._producer_for_saves()
        producer.produce(
            self.topic, key=str(partition).encode(), value=blob, partition=partition, on_delivery=delivered
        )
        producer.flush(timeout_s)
        if not outcome or outcome[0] is not None:
            raise CheckpointError(f"checkpoint of partition {partition} not acknowledged: {outcome or 'timeout'}")

    def load(self, partition: int, timeout_s: float = 30.0) -> bytes | None:
        """The partition's latest checkpoint, or None when it never had one."""
        consumer = KafkaConsumer(
            {
                **self.kafka.client_config(),
                "group.id": f"extractguard-checkpoint-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
            }
        )
        try:
            low, high = retry_retriable(
                lambda: consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=timeout_s),
                f"checkpoint offsets of {self.topic}[{partition}]",
                timeout_s,
            )
            if high <= low:
                return None
            consumer.assign([TopicPartition(self.topic, partition, high - 1)])
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is None or message.error() is not None:
                    continue
                return message.value()
            raise CheckpointError(f"{self.topic}[{partition}] offset {high - 1} not read within {timeout_s}s")
        finally:
            consumer.close()
