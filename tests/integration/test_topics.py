"""Provisioning brings the broker's topics to their declarations, and only changes what differs."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
)

from extractguard.contracts.provision import provision
from extractguard.contracts.topics import ACCOUNT_LABELS, contract
from extractguard.settings import KafkaSettings

pytestmark = pytest.mark.kafka


def _retention(admin: AdminClient, topic: str) -> str:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return str(admin.describe_configs([resource])[resource].result()["retention.ms"].value)


def test_a_drifted_topic_is_altered_back_to_its_declaration(kafka: KafkaSettings) -> None:
    provision(kafka)
    admin = AdminClient(kafka.client_config())
    declared = contract(ACCOUNT_LABELS).topic.config()["retention.ms"]
    drift = ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)
    target = ConfigResource(ConfigResource.Type.TOPIC, ACCOUNT_LABELS, incremental_configs=[drift])
    for future in admin.incremental_alter_configs([target]).values():
        future.result()
    assert _retention(admin, ACCOUNT_LABELS) == "3600000"

    result = provision(kafka)
    assert result.updated == {ACCOUNT_LABELS: {"retention.ms": ("3600000", declared)}}
    assert _retention(admin, ACCOUNT_LABELS) == declared
    assert provision(kafka).updated == {}  # nothing left to change
