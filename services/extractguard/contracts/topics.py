"""Kafka topics as declared in `schemas/topics/*.yaml`: the one place that names them.

Each declaration gives the partitions, retention, cleanup policy and its DLQ twin. Services look
topics up here by name; `extractguard topics` provisions them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import yaml

from extractguard.paths import schemas_dir

GATEWAY_EVENTS = "gateway.events"
DETECTIONS = "detections"
ALERTS = "alerts"
ALERT_DELIVERIES = "alert.deliveries"
ALERT_SILENCES = "alert.silences"
ACCOUNT_LABELS = "account.labels"
FINGERPRINT_ACTIVITY = "fingerprint.activity"
LINK_EVIDENCE = "link.evidence"
CAMPAIGNS = "campaigns"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    cleanup_policy: str
    max_message_bytes: int = 1048576
    schema: str | None = None
    description: str = ""
    internal: bool = False  # between our own stages only; decoded defensively, no published schema

    def config(self) -> dict[str, str]:
        return {
            "retention.ms": str(self.retention_ms),
            "cleanup.policy": self.cleanup_policy,
            "max.message.bytes": str(self.max_message_bytes),
        }


@dataclass(frozen=True, slots=True)
class TopicContract:
    topic: TopicSpec
    dlq: TopicSpec


@cache
def contracts() -> dict[str, TopicContract]:
    """All declared topics by name; each carries its DLQ twin."""
    found: dict[str, TopicContract] = {}
    for path in sorted((schemas_dir() / "topics").glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        dlq_raw = raw.pop("dlq")
        topic = TopicSpec(**raw)
        dlq = TopicSpec(
            name=dlq_raw["name"],
            partitions=dlq_raw.get("partitions", 1),
            retention_ms=dlq_raw.get("retention_ms", topic.retention_ms),
            cleanup_policy="delete",
            max_message_bytes=topic.max_message_bytes,
            description=f"Rejected messages of {topic.name}, with the reason in headers.",
        )
        if topic.name in found:
            raise ValueError(f"topic {topic.name} declared twice (second time in {path.name})")
        found[topic.name] = TopicContract(topic=topic, dlq=dlq)
    return found


def contract(name: str) -> TopicContract:
    try:
        return contracts()[name]
    except KeyError:
        raise KeyError(f"topic {name!r} is not declared under schemas/topics/") from None


def dlq_name(name: str) -> str:
    return contract(name).dlq.name
