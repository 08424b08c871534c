"""Create the declared topics (and their DLQs) on the broker, or bring existing ones to the
declared configuration; idempotent.

An existing topic whose retention, cleanup policy or message size differs from its declaration is
altered to match (and reported), so the YAML stays the one place that says how topics are set up.
A topic with fewer partitions than declared is an error: per-account state depends on the
partition count, so adding partitions is an operator's decision, not a side effect.

Topics are created with the replication the cluster allows (`replication.replication_for`: 3
replicas and `min.insync.replicas` 2 on three brokers or more, one copy on a single broker); an
existing topic with 3 replicas or more has its `min.insync.replicas` brought to 2 like any other
declared setting. Raising an existing topic's replica count is a reassignment, an operator's
decision: such topics are listed in `under_replicated`, not changed.
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
from extractguard.replication import Replication, replication_for
from extractguard.settings import KafkaSettings


@dataclass(frozen=True, slots=True)
class ProvisionResult:
    created: list[str]
    existing: list[str]
    replication: Replication  # of the topics created
    updated: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)  # name -> key -> (was, now)
    under_replicated: dict[str, int] = field(default_factory=dict)  # existing topic -> its replicas, fewer


class ProvisionError(RuntimeError):
    pass


def declared_topics() -> list[TopicSpec]:
    specs: list[TopicSpec] = []
    for contract in contracts().values():
        specs += [contract.topic, contract.dlq]
    return specs


def provision(kafka: KafkaSettings, replication: Replication | None = None, timeout_s: float = 30.0) -> ProvisionResult:
    """Create or reconcile every declared topic, and return once each declared partition has a leader.

    `replication` is the cluster's (`replication_for` its broker count) unless given.

    A topic that was just created answers offset look-ups with NOT_LEADER_FOR_PARTITION until its
    partitions have leaders; waiting here (bounded by `timeout_s`) means whatever runs next can
    read offsets at once. Raises `ProvisionError` naming the topics or partitions that failed.
    """
    admin = AdminClient(kafka.client_config())
    metadata = admin.list_topics(timeout=timeout_s)
    replication = replication or replication_for(len(metadata.brokers))
    created: list[str] = []
    under_replicated: dict[str, int] = {}
    replicated: set[str] = set()  # existing topics with replicas enough for min.insync.replicas
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
            replicas = min(len(p.replicas) for p in present.partitions.values())
            if replicas < replication.factor:
                under_replicated[spec.name] = replicas
            elif replicas > 1:
                replicated.add(spec.name)
            continue
        config = {**spec.config(), **replication.topic_config()}
        to_create.append(NewTopic(spec.name, spec.partitions, replication_factor=replication.factor, config=config))
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
    wanted = {name: {**specs[name].config(), **(replication.topic_config() if name in replicated else {})}
              for name in existing}  # fmt: skip
    updated = _reconcile(admin, wanted, timeout_s)
    try:
        wait_for_leaders(admin, {spec.name: spec.partitions for spec in specs.values()}, timeout_s)
    except KafkaNotReady as error:
        raise ProvisionError(f"topics provisioned but not ready: {error}") from error
    return ProvisionResult(created=created, existing=existing, updated=updated, replication=replication,
                           under_replicated=under_replicated)  # fmt: skip


def _reconcile(
    admin: AdminClient, wanted: dict[str, dict[str, str]], timeout_s: float
) -> dict[str, dict[str, tuple[str, str]]]:
    """Alter the declared settings of existing topics (name -> settings) where the broker holds other values."""
    if not wanted:
        return {}
    resources = {name: ConfigResource(ConfigResource.Type.TOPIC, name) for name in wanted}
    described = admin.describe_configs(list(resources.values()), request_timeout=timeout_s)
    changes: dict[str, dict[str, tuple[str, str]]] = {}
    for name, resource in resources.items():
        current = described[resource].result()
        diff = {
            key: (current[key].value if key in current else "", value)
            for key, value in wanted[name].items()
            if key not in current or current[key].value != value
        }
        if not diff:
            continue
        entries = [
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET) for key, (_was, value) in diff.items()
        ]
        target = ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=entries)
        try:
            for future in admin.incremental_alter_configs([target], request_timeout=timeout_s).values():
                future.result()
        except Exception as error:
            raise ProvisionError(f"could not bring {name} to its declared configuration: {error}") from error
        changes[name] = diff
    return changes


def delete_topics_with_prefix(kafka: KafkaSettings, prefix: str, timeout_s: float = 30) -> list[str]:
    """Delete a finished run's own topics (a Faust app's changelogs and checkpoints); returns their names."""
    admin = AdminClient(kafka.client_config())
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    if names:
        for future in admin.delete_topics(names, request_timeout=timeout_s).values():
            future.result()
    return names
