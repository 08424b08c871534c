"""Create the declared topics (and their DLQs) on the broker, or bring existing ones to the
declared configuration; idempotent.

An existing topic whose retention, cleanup policy or message size differs from its declaration is
altered to match (and reported), so the YAML stays the one place that says how topics are set up.
A topic with fewer partitions than declared is an error: per-account state depends on the
partition count, so adding partitions is an operator's decision, not a side effect.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from extractguard.contracts.topics import TopicSpec, contracts
from extractguard.kafka_ready import KafkaNotReady, wait_for_leaders
from extractguard.settings import KafkaSettings


@dataclass(frozen=True, slots=True)
class ProvisionResult:
    created: list[str]
    existing: list[str]
    updated: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)  # name -> key -> (was, now)


class ProvisionError(RuntimeError):
    pass


def declared_topics() -> list[TopicSpec]:
    specs: list[TopicSpec] = []
    for contract in contracts().values():
        specs += [contract.topic, contract.dlq]
    return specs


def provision(kafka: KafkaSettings, replication_factor: int = 1, timeout_s: float = 30.0) -> ProvisionResult:
    """Create or reconcile every declared topic, and return once each declared partition has a leader.

    A topic that was just created answers offset look-ups with NOT_LEADER_FOR_PARTITION until its
    partitions have leaders; waiting here (bounded by `timeout_s`) means whatever runs next can
    read offsets at once. Raises `ProvisionError` naming the topics or partitions that failed.
    """
    admin = AdminClient(kafka.client_config())
    metadata = admin.list_topics(timeout=timeout_s)
    created: list[str] = []
    existing: list[str] = []
    to_create: list[NewTopic] = []
    specs = {spec.name: spec for spec in declared_topics()}
    for spec in specs.values():
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
    updated = _reconcile(admin, [specs[name] for name in existing if name in specs], timeout_s)
    try:
        wait_for_leaders(admin, {spec.name: spec.partitions for spec in specs.values()}, timeout_s)
    except KafkaNotReady as error:
        raise ProvisionError(f"topics provisioned but not ready: {error}") from error
    return ProvisionResult(created=created, existing=existing, updated=updated)


def _reconcile(admin: AdminClient, specs: list[TopicSpec], timeout_s: float) -> dict[str, dict[str, tuple[str, str]]]:
    """Alter the declared settings of existing topics where the broker holds other values."""
    if not specs:
        return {}
    resources = [ConfigResource(ConfigResource.Type.TOPIC, spec.name) for spec in specs]
    described = admin.describe_configs(resources, request_timeout=timeout_s)
    changes: dict[str, dict[str, tuple[str, str]]] = {}
    for spec, resource in zip(specs, resources, strict=True):
        current = described[resource].result()
        diff = {
            key: (current[key].value if key in current else "", value)
            for key, value in spec.config().items()
            if key not in current or current[key].value != value
        }
        if not diff:
            continue
        entries = [
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET) for key, (_was, value) in diff.items()
        ]
        target = ConfigResource(ConfigResource.Type.TOPIC, spec.name, incremental_configs=entries)
        try:
            for future in admin.incremental_alter_configs([target], request_timeout=timeout_s).values():
                future.result()
        except Exception as error:
            raise ProvisionError(f"could not bring {spec.name} to its declared configuration: {error}") from error
        changes[spec.name] = diff
    return changes


def delete_topics_with_prefix(kafka: KafkaSettings, prefix: str, timeout_s: float = 30) -> list[str]:
    """Delete a finished run's own topics (a Faust app's changelogs and checkpoints); returns their names."""
    admin = AdminClient(kafka.client_config())
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    if names:
        for future in admin.delete_topics(names, request_timeout=timeout_s).values():
            future.result()
    return names
