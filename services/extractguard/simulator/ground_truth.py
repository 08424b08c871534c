"""Ground truth of a simulation: one label per account, written beside the stream and sent to
`account.labels` so it lands in ClickHouse next to the alerts it judges."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer

from extractguard.contracts.schemas import validate
from extractguard.contracts.topics import ACCOUNT_LABELS
from extractguard.settings import KafkaSettings
from extractguard.simulator.population import SimAccount


def label_record(
    scenario: str, account: SimAccount, labelled_at_ms: int | None = None, subject: str | None = None
) -> dict[str, Any]:
    """The ground truth of one account (schema `account_label` v1); `subject`: the id it is judged
    as, when that is not its account id (an end user behind a reseller: `contracts.subjects`)."""
    return {
        "schema_version": 1,
        "account_id": subject or account.account_id,
        "org_id": account.org_id,
        "label": account.label,
        "class": account.klass,
        "campaign": account.campaign,
        "source": "simulation",
        "scenario": scenario,
        "labelled_at_ms": labelled_at_ms if labelled_at_ms is not None else int(time.time() * 1000),
    }


def publish_labels(kafka: KafkaSettings, scenario: str, accounts: Iterable[SimAccount]) -> int:
    """Produce every account's label to `account.labels` (keyed by account); returns how many."""
    now = int(time.time() * 1000)
    return publish_label_records(kafka, (label_record(scenario, account, now) for account in accounts))


def publish_label_records(kafka: KafkaSettings, records: Iterable[dict[str, Any]]) -> int:
    """Produce `account_label` records (validated) to `account.labels`, keyed by account; returns how many."""
    producer = Producer({**kafka.client_config(), "enable.idempotence": True, "acks": "all", "linger.ms": 50})
    failures: list[str] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(str(error))

    count = 0
    for raw in records:
        record = validate("account_label", raw)
        producer.produce(
            ACCOUNT_LABELS, key=str(record["account_id"]).encode(), value=orjson.dumps(record), on_delivery=delivered
        )
        producer.poll(0)
        count += 1
    if producer.flush(60) != 0:
        raise RuntimeError("labels were not all acknowledged by Kafka within 60 s")
    if failures:
        raise RuntimeError(f"{len(failures)} labels were refused by Kafka, first: {failures[0]}")
    return count
