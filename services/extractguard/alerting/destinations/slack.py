"""Slack incoming webhook: one Block Kit message per alert delivery.

Text from detections (summaries, entity names) is escaped as Slack asks (`&`, `<`, `>`), so an
entity cannot inject a mention or a link. An incoming webhook can neither edit a message nor
reply in a thread (both need the Web API and a bot token), so every change of an alert posts a
compact message headed by its state ("updated", "resolved") that names the same dedup key, which
is what a person searches the channel for.

>>> escape("<!channel> & <https://x|y>")
'&lt;!channel&gt; &amp; &lt;https://x|y&gt;'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import orjson
from pydantic import SecretStr

from extractguard.alerting.destination import Alert, ConfiguredDestination, DestinationConfig, OutgoingRequest, case_url

MAX_HEADER = 150
MAX_TEXT = 3000
MAX_FIELD = 2000
EMOJI = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _state(alert: Alert) -> str:
    if alert["status"] == "resolved":
        return "resolved"
    return "new" if len(alert["detection_ids"]) <= 1 else "updated"


def slack_message(alert: Alert, case_base_url: str | None) -> dict[str, Any]:
    state = _state(alert)
    title = f"[{state}] {alert['severity']}: {alert['rule']}"
    accounts = alert["accounts"]
    sample = ", ".join(escape(a) for a in accounts[:10]) + (
        f" and {len(accounts) - 10} more" if len(accounts) > 10 else ""
    )
    fields = [
        {
            "type": "mrkdwn",
            "text": _clip(f"*Entity*\n{escape(alert['entity_kind'])} `{escape(alert['entity'])}`", MAX_FIELD),
        },
        {"type": "mrkdwn", "text": f"*Accounts*\n{len(accounts)}"},
        {"type": "mrkdwn", "text": f"*Detections*\n{len(alert['detection_ids'])}"},
        {"type": "mrkdwn", "text": _clip(f"*Dedup key*\n`{escape(alert['dedup_key'])}`", MAX_FIELD)},
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, MAX_HEADER), "emoji": True}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _clip(f"{EMOJI[alert['severity']]} {escape(alert['summary'])}", MAX_TEXT),
            },
            "fields": fields,
        },
    ]
    if accounts:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(f"Accounts: {sample}", MAX_TEXT)}]}
        )
    link = case_url(alert, case_base_url)
    if link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open the case"},
                        "url": link,
                        "action_id": "open_case",
                    }
                ],
            }
        )
    return {"text": _clip(f"{title}: {escape(alert['summary'])}", MAX_TEXT), "blocks": blocks}  # fmt: skip


KIND = "slack"


class Config(DestinationConfig):
    kind: Literal["slack"]
    url: SecretStr  # an incoming webhook's URL is its credential
    rate_per_s: float = 1.0  # Slack allows about one message per second per webhook

    def build(self, case_base_url: str | None) -> Slack:
        return Slack(self, case_base_url)


class Slack(ConfiguredDestination[Config]):
    kind = KIND

    def requests(self, alerts: Sequence[Alert]) -> list[OutgoingRequest]:
        url = self.config.url.get_secret_value()
        return [
            OutgoingRequest(url, orjson.dumps(slack_message(alert, self.case_base_url)), (alert,)) for alert in alerts
        ]
