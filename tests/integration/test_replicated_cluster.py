"""A replicated cluster keeps every acknowledged write when the leader that took it dies.

The test starts a 3-node KRaft cluster of its own (`EXTRACTGUARD_KAFKA_NODES=3 kafka.sh up`, its own
home and ports), provisions the declared topics (3 replicas, `min.insync.replicas` 2), and has the
product's event publisher (acks=all, idempotent) produce numbered envelopes to one partition of
`gateway.events` while the partition's leader is SIGKILLed. Then every envelope Kafka acknowledged
must be in the partition exactly once; the ones it did not acknowledge are the only ones allowed to
be missing (and with a majority of replicas alive there should be none). The dead node is started
again and catches up: the partition is back to three in-sync replicas.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import orjson
import pytest
from confluent_kafka import KafkaError, Message
from confluent_kafka.admin import AdminClient, ConfigResource

from extractguard.contracts import envelope
from extractguard.contracts.provision import declared_topics, provision
from extractguard.contracts.topics import GATEWAY_EVENTS
from extractguard.gateway.publisher import EventPublisher
from extractguard.kafka_offsets import end_offsets, read_since
from extractguard.local_kafka import LocalKafka, in_sync_replicas, partition_leader
from extractguard.replication import Replication
from extractguard.settings import KafkaSettings
from tests.integration.conftest import consecutive_free_ports, own_kafka_home, within

pytestmark = pytest.mark.kafka

PARTITION = 0
PRODUCE_S = 12.0  # wall seconds of producing; the leader dies a third of the way in


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """Three KRaft nodes of this module's own; stopped when it ends, whatever happened. A test that
    stops a node starts it again."""
    base = consecutive_free_ports(6, env="EXTRACTGUARD_TEST_CLUSTER_PORT")
    local = LocalKafka(own_kafka_home(tmp_path_factory.mktemp("cluster")) | {
        "EXTRACTGUARD_KAFKA_NODES": "3",
        "EXTRACTGUARD_KAFKA_PORT": str(base),
        "EXTRACTGUARD_KAFKA_CONTROLLER_PORT": str(base + 1),
    })  # fmt: skip
    try:
        local.up()
        yield local
    finally:
        local.down()


def test_topics_are_provisioned_with_three_replicas_and_two_in_sync(cluster: LocalKafka) -> None:
    kafka = cluster.settings()
    result = provision(kafka)
    assert result.replication == Replication(3, 2)
    admin = AdminClient(kafka.client_config())
    names = [spec.name for spec in declared_topics()]
    metadata = admin.list_topics(timeout=30)
    for name in names:
        assert all(len(p.replicas) == 3 for p in metadata.topics[name].partitions.values()), name
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    for resource, future in admin.describe_configs(resources).items():
        assert future.result()["min.insync.replicas"].value == "2", resource.name
    assert provision(kafka).updated == {}  # provisioning again changes nothing


def test_nothing_acknowledged_is_lost_when_the_partition_leader_is_sigkilled(cluster: LocalKafka) -> None:
    kafka = cluster.settings()
    provision(kafka)
    since = end_offsets(kafka, GATEWAY_EVENTS)
    leader = partition_leader(kafka, GATEWAY_EVENTS, PARTITION)
    acknowledged: set[int] = set()
    refused: dict[int, str] = {}
    sent = 0

    def on_delivery(number: int) -> Callable[[KafkaError | None, Message], None]:
        def record(error: KafkaError | None, _message: Message) -> None:
            if error is None:
                acknowledged.add(number)
            else:
                refused[number] = str(error)

        return record

    killer = threading.Timer(PRODUCE_S / 3, cluster.kill, args=(leader,))
    with EventPublisher(kafka, background_linger=False) as publisher:
        began = time.monotonic()
        killer.start()
        while time.monotonic() - began < PRODUCE_S:
            line = orjson.dumps({"envelope": sent})
            publisher.produce_envelope(PARTITION, [line], f"account-{sent}", on_delivery(sent))
            publisher.poll(0.005)
            sent += 1
        killer.join()
        publisher.flush(60)
    assert sent > 500, "too few writes to say anything"
    assert acknowledged, refused

    new_leader = partition_leader(kafka, GATEWAY_EVENTS, PARTITION)
    assert new_leader != leader, "another replica took the partition over"
    landed = [orjson.loads(line)["envelope"] for value in read_since(kafka, GATEWAY_EVENTS, since)
              for line in envelope.split(value)]  # fmt: skip
    missing = acknowledged - set(landed)
    assert not missing, f"{len(missing)} acknowledged writes lost with the leader, e.g. {sorted(missing)[:5]}"
    assert len(landed) == len(set(landed)), "a retried write was stored twice (idempotence)"
    assert set(landed) <= set(range(sent))
    # Two of three replicas alive satisfy min.insync.replicas: no write had to be refused.
    assert not refused, f"{len(refused)} writes refused, e.g. {next(iter(refused.values()))}"

    cluster.up(leader)
    within(60, lambda: in_sync_replicas(kafka, GATEWAY_EVENTS, PARTITION) == [1, 2, 3], "the node back in sync")


def test_a_single_node_is_one_replica(kafka: KafkaSettings) -> None:
    """The default local broker is unchanged: one copy of everything."""
    assert provision(kafka).replication == Replication(1, 1)
