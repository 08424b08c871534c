"""Offsets of topics and consumer groups: where a topic ends now, and starting a group there.

Used by the demo, the evaluation and the tests to isolate a run from what earlier runs left on the
same topics, to tell when a consumer group has caught up, and to read back what a run produced.
Each look-up retries Kafka's retriable errors (a partition whose leader is still being elected),
so it can follow a topic's creation at once.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

from extractguard.kafka_ready import retry_retriable
from extractguard.settings import KafkaSettings


def end_offsets(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    """The next offset of every partition of `topic`."""
    consumer = Consumer({**kafka.client_config(), "group.id": "extractguard-offsets"})

    def look_up() -> dict[int, int]:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            raise KafkaException(metadata.error)
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in metadata.partitions}

    try:
        return retry_retriable(look_up, f"end offsets of {topic}")
    finally:
        consumer.close()


def start_group_at_end(kafka: KafkaSettings, group: str, topics: list[str]) -> None:
    """Commit the current end offsets for a new group, so it processes only what comes next."""
    consumer = Consumer({**kafka.client_config(), "group.id": group, "enable.auto.commit": False})
    try:
        offsets = [
            TopicPartition(topic, partition, end)
            for topic in topics
            for partition, end in end_offsets(kafka, topic).items()
        ]
        retry_retriable(lambda: consumer.commit(offsets=offsets, asynchronous=False), f"start of group {group}")
    finally:
        consumer.close()


def group_lag(kafka: KafkaSettings, group: str, topic: str) -> int:
    """Messages of `topic` not yet committed by `group` (a partition never committed counts whole)."""
    ends = end_offsets(kafka, topic)
    consumer = Consumer({**kafka.client_config(), "group.id": group, "enable.auto.commit": False})
    try:
        committed = retry_retriable(
            lambda: consumer.committed([TopicPartition(topic, p) for p in ends], timeout=10),
            f"offsets committed by {group}",
        )
    finally:
        consumer.close()
    return sum(ends[tp.partition] - max(tp.offset, 0) for tp in committed)


def read_since(kafka: KafkaSettings, topic: str, since: dict[int, int], timeout_s: float = 30.0) -> list[bytes]:
    """Every message value of `topic` from the offsets in `since` up to the current end."""
    ends = end_offsets(kafka, topic)
    wanted = {p: (since.get(p, 0), end) for p, end in ends.items() if end > since.get(p, 0)}
    if not wanted:
        return []
    consumer = Consumer({**kafka.client_config(), "group.id": "extractguard-reader", "enable.auto.commit": False})
    values: list[bytes] = []
    try:
        consumer.assign([TopicPartition(topic, p, start) for p, (start, _end) in wanted.items()])
        remaining = {p: end for p, (_start, end) in wanted.items()}
        deadline = time.monotonic() + timeout_s
        while remaining and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=1.0):
                if message.error():
                    continue
                partition, offset = message.partition(), message.offset()
                if partition is None or offset is None:
                    continue
                if partition in remaining and offset < remaining[partition]:
                    values.append(message.value() or b"")
                    if offset + 1 >= remaining[partition]:
                        del remaining[partition]
        if remaining:
            raise TimeoutError(f"{topic}: could not read up to the end of partitions {sorted(remaining)}")
    finally:
        consumer.close()
    return values
