"""Which topic lands in which table, decoded how. Adding a table is adding a `Sink` here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from extractguard.contracts.enforcement import ENFORCEMENT_DECISIONS, ENFORCEMENT_REPORTS
from extractguard.contracts.envelope import split
from extractguard.contracts.schemas import Payload, decode_valid, validate_gateway_event
from extractguard.contracts.topics import (
    ACCOUNT_LABELS,
    ALERT_DELIVERIES,
    ALERT_SILENCES,
    ALERTS,
    CAMPAIGNS,
    DETECTIONS,
    GATEWAY_EVENTS,
)
from extractguard.lander.rows import (
    ALERT_SCHEMA,
    BOUNCER_REPORT_SCHEMA,
    CAMPAIGN_SCHEMA,
    DECISION_SCHEMA,
    DELIVERY_SCHEMA,
    DETECTION_SCHEMA,
    EVENT_SCHEMA,
    LABEL_SCHEMA,
    SILENCE_SCHEMA,
    alert_row,
    bouncer_report_row,
    campaign_row,
    decision_row,
    delivery_row,
    detection_row,
    event_row,
    label_row,
    silence_row,
)
from extractguard.settings import IngestSettings


@dataclass(frozen=True, slots=True)
class Sink:
    topic: str
    table: str
    schema: pa.Schema  # the table's columns, in the order `row` gives their values
    row: Callable[[Payload, int, int], list[Any]]
    lines: Callable[[bytes], list[bytes]]
    validate: Callable[[bytes], Payload]
    insert_settings: Mapping[str, int] = field(default_factory=dict)


# ReplacingMergeTree folds rows of the same key when it merges parts and, by default, also within
# each inserted block: a sort and merge that was a third of ClickHouse's CPU for an events insert.
# Events repeat only when a gateway re-sends one; the merges fold those as they already do across
# batches, and counts that must be exact are asked with FINAL (README, "Nothing lost, nothing twice").
_EVENTS_INSERT = {"optimize_on_insert": 0}


def _single(value: bytes) -> list[bytes]:
    return [value]


def sinks(ingest: IngestSettings | None = None) -> dict[str, Sink]:
    limits = ingest or IngestSettings()

    def gateway_event(raw: bytes) -> Payload:
        return validate_gateway_event(
            raw, max_event_bytes=limits.max_event_bytes, max_clock_skew_s=limits.max_clock_skew_s
        )

    return {
        GATEWAY_EVENTS: Sink(GATEWAY_EVENTS, "events", EVENT_SCHEMA, event_row, split, gateway_event, _EVENTS_INSERT),
        DETECTIONS: Sink(
            DETECTIONS, "detections", DETECTION_SCHEMA, detection_row, _single,
            lambda raw: decode_valid("detection", raw),
        ),
        ALERTS: Sink(
            ALERTS, "alerts", ALERT_SCHEMA, alert_row, _single,
            lambda raw: decode_valid("alert", raw),
        ),
        ACCOUNT_LABELS: Sink(
            ACCOUNT_LABELS, "account_labels", LABEL_SCHEMA, label_row, _single,
            lambda raw: decode_valid("account_label", raw),
        ),
        CAMPAIGNS: Sink(
            CAMPAIGNS, "campaigns", CAMPAIGN_SCHEMA, campaign_row, _single,
            lambda raw: decode_valid("campaign", raw),
        ),
        ALERT_DELIVERIES: Sink(
            ALERT_DELIVERIES, "alert_deliveries", DELIVERY_SCHEMA, delivery_row, _single,
            lambda raw: decode_valid("alert_delivery", raw),
        ),
        ALERT_SILENCES: Sink(
            ALERT_SILENCES, "alert_silences", SILENCE_SCHEMA, silence_row, _single,
            lambda raw: decode_valid("alert_silence", raw),
        ),
        ENFORCEMENT_DECISIONS: Sink(
            ENFORCEMENT_DECISIONS, "decisions", DECISION_SCHEMA, decision_row, _single,
            lambda raw: decode_valid("enforcement_decision", raw),
        ),
        ENFORCEMENT_REPORTS: Sink(
            ENFORCEMENT_REPORTS, "bouncer_reports", BOUNCER_REPORT_SCHEMA, bouncer_report_row, _single,
            lambda raw: decode_valid("bouncer_report", raw),
        ),
    }  # fmt: skip


def landed_topics() -> list[str]:
    """Every topic the lander consumes, for starting its consumer group somewhere on purpose."""
    return list(sinks())
