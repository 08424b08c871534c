"""PagerDuty Events API v2: one event per alert, keyed by the alert's stable dedup key.

A firing alert triggers (again: PagerDuty folds a re-trigger with the same `dedup_key` into the
open incident), a resolved one resolves it, and an alert an analyst acknowledged
(`labels.acknowledged = "true"`) acknowledges it. Severities map one to one (PagerDuty's `error`
has no ExtractGuard counterpart). The incident links to the case page. PagerDuty caps
`dedup_key` at 255 characters and `summary` at 1024; longer keys are hashed so they stay stable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Literal

import orjson
from pydantic import SecretStr

from extractguard.alerting.destination import (
    Alert,
    ConfiguredDestination,
    DestinationConfig,
    OutgoingRequest,
    case_url,
    iso,
)

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024


def pagerduty_dedup_key(alert: Alert) -> str:
    key: str = alert["dedup_key"]
    if len(key) <= MAX_DEDUP_KEY:
        return key
    return key[:200] + "#" + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def event_action(alert: Alert) -> str:
    if alert["status"] == "resolved":
        return "resolve"
    if alert.get("labels", {}).get("acknowledged") == "true":
        return "acknowledge"
    return "trigger"


def pagerduty_event(alert: Alert, routing_key: str, source: str, case_base_url: str | None) -> dict[str, Any]:
    action = event_action(alert)
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": pagerduty_dedup_key(alert),
    }
    if action != "trigger":  # acknowledge and resolve name the incident; a payload is not used
        return event
    link = case_url(alert, case_base_url)
    accounts = alert["accounts"]
    event["payload"] = {
        "summary": alert["summary"][:MAX_SUMMARY],
        "source": source,
        "severity": SEVERITY[alert["severity"]],
        "timestamp": iso(alert["last_seen_ms"]),
        "component": alert["entity_kind"],
        "group": alert["rule"],
        "class": alert["rule"],
        "custom_details": {
            "entity": alert["entity"],
            "accounts_total": len(accounts),
            "accounts_sample": accounts[:20],
            "detections": len(alert["detection_ids"]),
            "first_seen": iso(alert["first_seen_ms"]),
            **({"entities": alert["entities"][:20]} if "entities" in alert else {}),
        },
    }
    event["client"] = "ExtractGuard"
    if link:
        event["client_url"] = link
        event["links"] = [{"href": link, "text": "ExtractGuard case"}]
    return event


KIND = "pagerduty"


class Config(DestinationConfig):
    kind: Literal["pagerduty"]
    routing_key: SecretStr
    url: str = EVENTS_URL
    source: str = "extractguard"
    rate_per_s: float = 2.0  # PagerDuty throttles a routing key well before this; stay polite

    def build(self, case_base_url: str | None) -> PagerDuty:
        return PagerDuty(self, case_base_url)


class PagerDuty(ConfiguredDestination[Config]):
    kind = KIND

    def requests(self, alerts: Sequence[Alert]) -> list[OutgoingRequest]:
        key = self.config.routing_key.get_secret_value()
        return [
            OutgoingRequest(
                self.config.url,
                orjson.dumps(pagerduty_event(alert, key, self.config.source, self.case_base_url)),
                (alert,),
            )
            for alert in alerts
        ]
