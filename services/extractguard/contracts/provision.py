"""Create the declared topics (and their DLQs) on the broker; idempotent.

An existing topic is left as it is but its configuration is reported when it differs, and a topic
with fewer partitions than declared is an error: per-account state depends on the partition count.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from extractguard.contracts.topics import TopicSpec, contracts
from extractguard.settings import KafkaSettings


@dataclass(frozen=True, slots=True)
class ProvisionResult:
    created: list[str]
    existing: list[str]


class ProvisionError(RuntimeError):
    pass


def declared_topics() -> list[TopicSpec]:
    specs: list[TopicSpec] = []
    for contract in contracts().values():
        specs += [contract.topic, contract.dlq]
    return specs


def provision(kafka: KafkaSettings, replication_factor: int = 1, timeout_s: float = 30.0) -> ProvisionResult:
    admin = AdminClient(kafka.client_config())
    metadata = admin.list_topics(timeout=timeout_s)
    created: list[str] = []
    existing: list[str] = []
    to_create: list[NewTopic] = []
    for spec in declared_topics():
        present = metadata.topics.get(spec.name)
        if present is not None and present.error is None:
            if len(present.partitions) < spec.partitions:
                raise ProvisionError(
                    f"{spec.name} has {len(present.partitions)} partitions, {spec.partitions} are declared"
                )
            existing.append(spec.name)
            continue
        to_create.append(
            NewTopic(spec.name, spec.partitions, replication_factor=replication_factor, config=spec.config())
        )
    if to_create:
        for name, future in admin.create_topics(to_create, request_timeout=timeout_s).items():
            try:
                future.result()
                created.append(name)
            except Exception as error:  # KafkaException carries the broker's reason
                if "TOPIC_ALREADY_EXISTS" in str(error):
                    existing.append(name)
                else:
                    raise ProvisionError(f"could not create {name}: {error}") from error
    return ProvisionResult(created=created, existing=existing)
