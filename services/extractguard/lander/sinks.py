"""Which topic lands in which table, decoded how. Adding a table is adding a `Sink` here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from extractguard.contracts.envelope import split
from extractguard.contracts.schemas import Payload, decode_json, validate, validate_gateway_event
from extractguard.contracts.topics import ACCOUNT_LABELS, ALERTS, CAMPAIGNS, DETECTIONS, GATEWAY_EVENTS
from extractguard.lander.rows import (
    ALERT_COLUMNS,
    CAMPAIGN_COLUMNS,
    DETECTION_COLUMNS,
    EVENT_COLUMNS,
    LABEL_COLUMNS,
    alert_row,
    campaign_row,
    detection_row,
    event_row,
    label_row,
)
from extractguard.settings import IngestSettings


@dataclass(frozen=True, slots=True)
class Sink:
    topic: str
    table: str
    columns: list[str]
    row: Callable[[Payload, int, int], list[Any]]
    lines: Callable[[bytes], list[bytes]]
    validate: Callable[[bytes], Payload]


def _single(value: bytes) -> list[bytes]:
    return [value]


def sinks(ingest: IngestSettings | None = None) -> dict[str, Sink]:
    limits = ingest or IngestSettings()

    def gateway_event(raw: bytes) -> Payload:
        return validate_gateway_event(
            raw, max_event_bytes=limits.max_event_bytes, max_clock_skew_s=limits.max_clock_skew_s
        )

    return {
        GATEWAY_EVENTS: Sink(GATEWAY_EVENTS, "events", EVENT_COLUMNS, event_row, split, gateway_event),
        DETECTIONS: Sink(
            DETECTIONS, "detections", DETECTION_COLUMNS, detection_row, _single,
            lambda raw: validate("detection", decode_json(raw)),
        ),
        ALERTS: Sink(
            ALERTS, "alerts", ALERT_COLUMNS, alert_row, _single,
            lambda raw: validate("alert", decode_json(raw)),
        ),
        ACCOUNT_LABELS: Sink(
            ACCOUNT_LABELS, "account_labels", LABEL_COLUMNS, label_row, _single,
            lambda raw: validate("account_label", decode_json(raw)),
        ),
        CAMPAIGNS: Sink(
            CAMPAIGNS, "campaigns", CAMPAIGN_COLUMNS, campaign_row, _single,
            lambda raw: validate("campaign", decode_json(raw)),
        ),
    }  # fmt: skip


def landed_topics() -> list[str]:
    """Every topic the lander consumes, for starting its consumer group somewhere on purpose."""
    return list(sinks())
