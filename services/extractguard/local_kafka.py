"""The local Kafka that `infra/kafka/kafka.sh` runs — one broker, or a cluster of N nodes
(EXTRACTGUARD_KAFKA_NODES) — driven from Python: what the chaos runs and the cluster tests do to it.

Every call goes through kafka.sh with the environment given (its home, ports and node count), so
the script stays the one place that knows where a node lives and how it is started.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from confluent_kafka.admin import AdminClient

from extractguard.paths import project_root
from extractguard.settings import KafkaSettings

KAFKA_SCRIPT = ("infra", "kafka", "kafka.sh")


class LocalKafkaError(RuntimeError):
    """kafka.sh refused or failed; the message carries what it said."""


@dataclass(frozen=True)
class LocalKafka:
    #: Overrides of this process's environment for kafka.sh (EXTRACTGUARD_HOME, the ports, the nodes).
    env: Mapping[str, str] = field(default_factory=dict)

    def sh(self, *args: str, timeout_s: float = 300) -> str:
        """Run `kafka.sh ARGS`; its output, or `LocalKafkaError` with what it said."""
        script = project_root().joinpath(*KAFKA_SCRIPT)
        done = subprocess.run(
            [str(script), *args], env={**os.environ, **self.env}, capture_output=True, text=True, timeout=timeout_s
        )
        if done.returncode != 0:
            raise LocalKafkaError(f"kafka.sh {' '.join(args)}: {(done.stderr or done.stdout).strip()}")
        return done.stdout

    @property
    def nodes(self) -> int:
        return int(self.env.get("EXTRACTGUARD_KAFKA_NODES", os.environ.get("EXTRACTGUARD_KAFKA_NODES", "1")))

    def up(self, *nodes: int) -> None:
        """Start the nodes given (all by default) that are not running."""
        self.sh("up", *map(str, nodes))

    def down(self, *nodes: int) -> None:
        """Stop the nodes given (all by default) cleanly: a controlled shutdown."""
        self.sh("down", *map(str, nodes))

    def kill(self, node: int) -> None:
        """SIGKILL one node of a cluster and wait until it is gone."""
        self.sh("kill", str(node))

    def is_up(self) -> bool:
        try:
            self.sh("status")
        except LocalKafkaError:
            return False
        return True

    def bootstrap_servers(self) -> str:
        return self.sh("bootstrap").strip()

    def controller(self) -> int:
        """The node id of the active KRaft controller (-1 while none is known)."""
        return int(self.sh("controller").strip())

    def settings(self) -> KafkaSettings:
        return KafkaSettings().model_copy(update={"bootstrap_servers": self.bootstrap_servers()})


def partition_leader(kafka: KafkaSettings, topic: str, partition: int = 0) -> int:
    """The broker (node) id leading one partition now."""
    metadata = AdminClient(kafka.client_config()).list_topics(topic, timeout=30)
    return int(metadata.topics[topic].partitions[partition].leader)


def in_sync_replicas(kafka: KafkaSettings, topic: str, partition: int = 0) -> list[int]:
    metadata = AdminClient(kafka.client_config()).list_topics(topic, timeout=30)
    return sorted(metadata.topics[topic].partitions[partition].isrs)


def out_of_sync(kafka: KafkaSettings) -> list[str]:
    """Partitions (as `topic[partition]`) some replica of which is not in sync, or that have no leader."""
    metadata = AdminClient(kafka.client_config()).list_topics(timeout=30)
    lagging: list[str] = []
    for name, topic in metadata.topics.items():
        for number, partition in topic.partitions.items():
            if partition.leader < 0 or set(partition.isrs) != set(partition.replicas):
                lagging.append(f"{name}[{number}]")
    return lagging


def wait_in_sync(kafka: KafkaSettings, timeout_s: float = 180) -> None:
    """Wait until every replica of every partition is in sync again (a restarted node caught up):
    what an operator waits for before restarting the next node of a rolling restart."""
    deadline = time.monotonic() + timeout_s
    lagging = out_of_sync(kafka)
    while lagging:
        if time.monotonic() > deadline:
            raise LocalKafkaError(f"not in sync within {timeout_s:.0f} s: {', '.join(lagging[:5])}")
        time.sleep(1)
        lagging = out_of_sync(kafka)
