"""Generic webhook: the alerts as ExtractGuard's own JSON, the body signed with HMAC-SHA256.

The receiver checks `X-ExtractGuard-Signature: sha256=<hex>` over `<timestamp>.<body>` with the
shared secret and rejects a timestamp too old, so a captured request cannot be replayed.

>>> config = Config(kind="webhook", url="http://127.0.0.1:9/hook", secret="s3cret")
>>> [request] = config.build(None).requests([{"alert_id": "a"}])
>>> request.headers["X-ExtractGuard-Signature"] == sign(b"s3cret", request.headers["X-ExtractGuard-Timestamp"],
...                                                     request.body)
True
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from typing import Literal

import orjson
from pydantic import SecretStr

from extractguard.alerting.destination import Alert, ConfiguredDestination, DestinationConfig, OutgoingRequest


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


KIND = "webhook"


class Config(DestinationConfig):
    kind: Literal["webhook"]
    url: str
    secret: SecretStr | None = None

    def build(self, case_base_url: str | None) -> Webhook:
        return Webhook(self)


class Webhook(ConfiguredDestination[Config]):
    kind = KIND

    def requests(self, alerts: Sequence[Alert]) -> list[OutgoingRequest]:
        body = orjson.dumps({"source": "extractguard", "alerts": list(alerts)})
        headers = {"Content-Type": "application/json"}
        if self.config.secret is not None:
            timestamp = str(int(time.time()))
            headers["X-ExtractGuard-Timestamp"] = timestamp
            headers["X-ExtractGuard-Signature"] = sign(self.config.secret.get_secret_value().encode(), timestamp, body)
        return [OutgoingRequest(self.config.url, body, tuple(alerts), headers)]
