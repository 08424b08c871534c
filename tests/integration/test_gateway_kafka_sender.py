"""The gateway distribution's Kafka transport against the real broker: every event lands in the
partition every other ExtractGuard producer picks for its account (librdkafka's murmur2 = Java's),
as a one-line envelope the consumers' intake reads like any other."""

from __future__ import annotations

import pytest

from extractguard.contracts.intake import receive
from extractguard.contracts.schemas import decode_valid
from extractguard.contracts.topics import GATEWAY_EVENTS
from extractguard.gateway.partitioning import partition_for
from extractguard.kafka_offsets import end_offsets
from extractguard.settings import KafkaSettings
from extractguard_gateway.events import ObservedRequest
from extractguard_gateway.sender import EventSender, SenderSettings
from extractguard_gateway.transports import KafkaTransport
from tests.integration.conftest import read_from

pytestmark = pytest.mark.kafka


def test_kafka_transport_partitions_by_account_like_the_backend(kafka: KafkaSettings, run_id: str) -> None:
    start = end_offsets(kafka, GATEWAY_EVENTS)
    transport = KafkaTransport(kafka.bootstrap_servers, config=kafka.client_config())
    sender = EventSender(transport, b"k", SenderSettings(batch_max_events=20, linger_ms=20))
    for i in range(60):
        sender.submit(ObservedRequest(
            account_id=f"{run_id}-acct-{i % 11}", request_model="m", event_time_ms=1_795_000_000_000 + i,
            input_tokens=1, output_tokens=2, latency_ms=3, prompt=f"question {i}", event_id=f"{run_id}-{i:06d}",
        ))  # fmt: skip
    sender.close()
    assert sender.stats.delivered == 60, sender.stats.as_dict()

    mine = []
    for message in read_from(kafka, GATEWAY_EVENTS, start, expect=10_000, timeout_s=15):  # all that came
        intake = receive(message.value(), lambda raw: decode_valid("gateway_event", raw), service="test",
                         topic=GATEWAY_EVENTS, partition=message.partition(), offset=message.offset())  # fmt: skip
        assert not intake.dead
        for event in intake.valid:
            if event["event_id"].startswith(run_id):
                assert message.partition() == partition_for(event["account_id"], len(start))
                mine.append(event["event_id"])
    assert sorted(mine) == [f"{run_id}-{i:06d}" for i in range(60)]
