"""Prometheus Alertmanager: `POST /api/v2/alerts`, one entry per alert, resolved by `endsAt`.

Labels are for Alertmanager's routing and grouping (rule, severity, entity, dedup key); accounts
travel in annotations, never in labels. Alertmanager groups by its route's `group_by` and resolves
an alert whose `endsAt` has passed, so a campaign that merges or closes resolves its alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import orjson

from extractguard.alerting.destination import (
    Alert,
    ConfiguredDestination,
    DestinationConfig,
    OutgoingRequest,
    case_url,
    iso,
)


def alertmanager_body(alerts: Sequence[Alert], case_base_url: str | None = None) -> list[dict[str, Any]]:
    body = []
    for alert in alerts:
        accounts = alert["accounts"]
        link = case_url(alert, case_base_url)
        body.append(
            {
                "labels": {
                    "alertname": f"ExtractGuard_{alert['rule']}",
                    "severity": alert["severity"],
                    "rule": alert["rule"],
                    "entity_kind": alert["entity_kind"],
                    "entity": alert["entity"],
                    "dedup_key": alert["dedup_key"],
                    "service": "extractguard",
                },
                "annotations": {
                    "summary": alert["summary"],
                    "accounts_total": str(len(accounts)),
                    "accounts_sample": ", ".join(accounts[:20]),
                    "detections": str(len(alert["detection_ids"])),
                },
                "startsAt": iso(alert["first_seen_ms"]),
                # Alertmanager resolves an alert whose end has passed.
                **({"endsAt": iso(alert["fired_at_ms"])} if alert["status"] == "resolved" else {}),
                **({"generatorURL": link} if link else {}),
            }
        )
    return body


KIND = "alertmanager"


class Config(DestinationConfig):
    kind: Literal["alertmanager"]
    url: str  # e.g. http://alertmanager:9093/api/v2/alerts

    def build(self, case_base_url: str | None) -> Alertmanager:
        return Alertmanager(self, case_base_url)


class Alertmanager(ConfiguredDestination[Config]):
    kind = KIND

    def requests(self, alerts: Sequence[Alert]) -> list[OutgoingRequest]:
        body = orjson.dumps(alertmanager_body(alerts, self.case_base_url))
        return [OutgoingRequest(self.config.url, body, tuple(alerts))]
