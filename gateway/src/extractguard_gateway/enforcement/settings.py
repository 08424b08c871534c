"""Settings of the gateway's bouncers, from EXTRACTGUARD_* environment variables (plain dataclasses,
as the sender's: the gateway's environment gains no package for them).

- EXTRACTGUARD_ENFORCE_FEED_URL: ExtractGuard's ingest (e.g. https://extractguard.example:8480);
  decisions are then long-polled from its `GET /v1/decisions` under EXTRACTGUARD_ENFORCE_FEED_TOKEN
  (default EXTRACTGUARD_INGEST_TOKEN, the token the gateway posts its events with), no broker needed.
- EXTRACTGUARD_ENFORCE_BOOTSTRAP_SERVERS (else EXTRACTGUARD_KAFKA_BOOTSTRAP_SERVERS): the broker of
  the decisions topic, when no feed URL is set; with neither, enforcement is off (every request
  admitted, a warning at start).
- EXTRACTGUARD_ENFORCE_FAIL_OPEN (default true): admit requests while the cache is not warm;
  false answers 503 until it is.
- EXTRACTGUARD_ENFORCE_WARM_WAIT_S (default 10): how long start-up waits for the cache to warm.
- EXTRACTGUARD_ENFORCE_TOPIC, EXTRACTGUARD_ENFORCE_REPORTS_TOPIC ("" for no reports),
  EXTRACTGUARD_ENFORCE_REPORT_INTERVAL_S (default 30).
- EXTRACTGUARD_KEY_SECRET and EXTRACTGUARD_TRUSTED_PROXIES, as for the callback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from extractguard_gateway.enforcement.feed import DECISIONS_TOPIC, REPORTS_TOPIC


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


@dataclass(frozen=True, slots=True)
class EnforceSettings:
    bootstrap_servers: str | None
    fail_open: bool
    warm_wait_s: float
    topic: str
    reports_topic: str | None
    report_interval_s: float
    key_secret: bytes
    trusted_proxies: str
    feed_url: str | None = None
    feed_token: str = ""

    @classmethod
    def from_env(cls) -> EnforceSettings:
        env = os.environ
        secret = env.get("EXTRACTGUARD_KEY_SECRET")
        if not secret:
            raise RuntimeError("EXTRACTGUARD_KEY_SECRET must be set: decisions name keys by their keyed hash")
        reports = env.get("EXTRACTGUARD_ENFORCE_REPORTS_TOPIC", REPORTS_TOPIC)
        return cls(
            bootstrap_servers=env.get("EXTRACTGUARD_ENFORCE_BOOTSTRAP_SERVERS")
            or env.get("EXTRACTGUARD_KAFKA_BOOTSTRAP_SERVERS"),
            fail_open=_flag(env.get("EXTRACTGUARD_ENFORCE_FAIL_OPEN"), True),
            warm_wait_s=float(env.get("EXTRACTGUARD_ENFORCE_WARM_WAIT_S", "10")),
            topic=env.get("EXTRACTGUARD_ENFORCE_TOPIC", DECISIONS_TOPIC),
            reports_topic=reports or None,
            report_interval_s=float(env.get("EXTRACTGUARD_ENFORCE_REPORT_INTERVAL_S", "30")),
            key_secret=secret.encode(),
            trusted_proxies=env.get("EXTRACTGUARD_TRUSTED_PROXIES", ""),
            feed_url=env.get("EXTRACTGUARD_ENFORCE_FEED_URL") or None,
            feed_token=env.get("EXTRACTGUARD_ENFORCE_FEED_TOKEN") or env.get("EXTRACTGUARD_INGEST_TOKEN", ""),
        )
