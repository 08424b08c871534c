"""Deliver alerts to webhooks: a generic JSON body, or Alertmanager's `POST /api/v2/alerts` format.

Retries with exponential backoff come from urllib3's `Retry` (connection errors, 429 and 5xx).
Accounts travel in annotations, never in labels: labels are for routing and grouping.
"""

from __future__ import annotations

import datetime
from typing import Any, Literal

import orjson
import urllib3
from urllib3.util.retry import Retry

from extractguard import metrics

WebhookFormat = Literal["generic", "alertmanager"]


def _iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).isoformat().replace("+00:00", "Z")


def alertmanager_body(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    body = []
    for alert in alerts:
        accounts = alert["accounts"]
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
                "startsAt": _iso(alert["first_seen_ms"]),
                # Alertmanager resolves an alert whose end has passed.
                **({"endsAt": _iso(alert["fired_at_ms"])} if alert["status"] == "resolved" else {}),
            }
        )
    return body


def generic_body(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"source": "extractguard", "alerts": alerts}


class WebhookDelivery:
    def __init__(self, urls: list[str], webhook_format: WebhookFormat, timeout_s: float, attempts: int) -> None:
        self.urls = urls
        self.format = webhook_format
        retry = Retry(
            total=attempts - 1,
            backoff_factor=0.5,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=None,
            raise_on_status=False,
        )
        self.http = urllib3.PoolManager(retries=retry, timeout=urllib3.Timeout(total=timeout_s))
        self.delivered = 0
        self.failed = 0

    def deliver(self, alerts: list[dict[str, Any]]) -> bool:
        """POST the alerts to every URL; True when all accepted them."""
        if not alerts or not self.urls:
            return True
        payload = alertmanager_body(alerts) if self.format == "alertmanager" else generic_body(alerts)
        body = orjson.dumps(payload)
        ok = True
        for url in self.urls:
            try:
                response = self.http.request("POST", url, body=body, headers={"Content-Type": "application/json"})
                success = 200 <= response.status < 300
            except urllib3.exceptions.HTTPError:
                success = False
            metrics.ALERT_DELIVERIES.labels(self.format, "delivered" if success else "failed").inc(len(alerts))
            if success:
                self.delivered += len(alerts)
            else:
                self.failed += len(alerts)
                ok = False
        return ok
