"""Offsets of topics and consumer groups: where a topic ends now, and starting a group there.

Used by the demo and the tests to isolate a run from what earlier runs left on the same topics.
"""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from extractguard.settings import KafkaSettings


def end_offsets(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    """The next offset of every partition of `topic`."""
    consumer = Consumer({**kafka.client_config(), "group.id": "extractguard-offsets"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
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
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()
