"""`extractguard bouncer crowdsec`: IP-prefix decisions pushed to a CrowdSec Local API (LAPI), for
shops whose firewalls and reverse proxies already run CrowdSec bouncers.

The pusher logs in as a machine (`POST /v1/watchers/login`, a machine added with
`cscli machines add`) and sends each enforced IP-prefix decision as an alert with one decision
(`POST /v1/alerts`): scope `Range`, type `ban` for suspend, `captcha` for challenge, `throttle` for
throttle, the remaining TTL as its duration, so CrowdSec expires it when ExtractGuard would. A
decision that is rejected or lifted early is deleted (`DELETE /v1/decisions?range=…`; the LAPI
trusts the machine's address for that). Stock bouncers enforce IPs and ranges only, so account- and
key-scoped decisions are left to the LiteLLM hook and the Envoy services.

The service reads `enforcement.decisions` from its beginning with a consumer group of its own,
pushes, and commits only what CrowdSec took.
"""

from __future__ import annotations

import datetime
import signal
import threading
import time
from collections.abc import Iterable
from types import FrameType
from typing import Any

import orjson
import urllib3

from extractguard import metrics
from extractguard.contracts.enforcement import ENFORCEMENT_DECISIONS
from extractguard.logs import configure
from extractguard.settings import CrowdSecSettings, KafkaSettings

SERVICE = "crowdsec-pusher"
log = configure(SERVICE)
#: ExtractGuard's effect -> CrowdSec's decision type (ban and captcha are what stock bouncers know).
DECISION_TYPES = {"deny": "ban", "challenge": "captcha", "limit": "throttle"}
WITHDRAWN = frozenset({"rejected", "lifted"})


class CrowdSecError(RuntimeError):
    pass


def _iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def alert_of(decision: dict[str, Any], now_ms: int) -> dict[str, Any] | None:
    """The LAPI alert for an IP-prefix decision that is enforced now, or None."""
    kind = decision["effect"]["kind"]
    if decision["scope"] != "ip_prefix" or decision["status"] != "active" or kind not in DECISION_TYPES:
        return None
    remaining_s = (decision["expires_at_ms"] - now_ms) // 1000
    if remaining_s <= 0:
        return None
    scenario = f"extractguard/{decision['rule']}"
    prefix = decision["entity"]
    return {
        "scenario": scenario, "scenario_hash": "", "scenario_version": decision["policy"]["revision"],
        "message": f"ExtractGuard {decision['decision_id']}: {decision['reason']}"[:1024],
        "events_count": 1, "events": [], "capacity": 0, "leakspeed": "0", "simulated": False, "remediation": True,
        "start_at": _iso(decision["decided_at_ms"]), "stop_at": _iso(now_ms),
        "source": {"scope": "Range", "value": prefix, "range": prefix},
        "decisions": [{
            "origin": "extractguard", "type": DECISION_TYPES[kind], "scope": "Range", "value": prefix,
            "duration": f"{remaining_s}s", "scenario": scenario, "simulated": False,
        }],
    }  # fmt: skip


class CrowdSecPusher:
    def __init__(self, settings: CrowdSecSettings) -> None:
        self.settings = settings
        self.http = urllib3.PoolManager(timeout=settings.timeout_s, retries=urllib3.Retry(3, backoff_factor=0.5))
        self._token: str | None = None
        self._token_until = 0.0

    def _url(self, path: str) -> str:
        return self.settings.lapi_url.rstrip("/") + path

    def _login(self) -> str:
        if self._token is not None and time.monotonic() < self._token_until:
            return self._token
        response = self.http.request("POST", self._url("/v1/watchers/login"), body=orjson.dumps({
            "machine_id": self.settings.machine_id, "password": self.settings.password.get_secret_value(),
            "scenarios": [],
        }), headers={"Content-Type": "application/json"})  # fmt: skip
        if response.status != 200:
            raise CrowdSecError(
                f"login as {self.settings.machine_id} refused: {response.status} {response.data[:200]!r}"
            )
        self._token = str(orjson.loads(response.data)["token"])
        self._token_until = time.monotonic() + 30 * 60  # tokens last an hour
        return self._token

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self._login()}", "Content-Type": "application/json"}
            response = self.http.request(method, self._url(path), body=None if body is None else orjson.dumps(body),
                                         headers=headers)  # fmt: skip
            if response.status == 401 and attempt == 1:
                self._token = None  # expired early: log in again once
                continue
            if response.status >= 300:
                raise CrowdSecError(f"{method} {path}: {response.status} {response.data[:300]!r}")
            return orjson.loads(response.data) if response.data else None
        raise CrowdSecError(f"{method} {path}: unauthorised")

    def push(self, decisions: Iterable[dict[str, Any]], now_ms: int | None = None) -> int:
        """Send the enforced IP-prefix decisions as alerts and withdraw the rejected or lifted
        ones; returns how many were pushed."""
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        alerts = []
        for decision in decisions:
            if decision["scope"] == "ip_prefix" and decision["status"] in WITHDRAWN:
                self._call("DELETE", f"/v1/decisions?range={decision['entity']}")
                continue
            alert = alert_of(decision, now)
            if alert is not None:
                alerts.append(alert)
        if alerts:
            try:
                self._call("POST", "/v1/alerts", alerts)
            except CrowdSecError:
                metrics.CROWDSEC_PUSHES.labels("failed").inc(len(alerts))
                raise
            metrics.CROWDSEC_PUSHES.labels("pushed").inc(len(alerts))
        return len(alerts)


class CrowdSecBouncer:
    """The push loop: `enforcement.decisions` from its beginning (a consumer group of its own), each
    batch pushed, offsets committed only once CrowdSec took it; a failed push is retried."""

    def __init__(self, settings: CrowdSecSettings, kafka: KafkaSettings) -> None:
        from confluent_kafka import Consumer

        self.settings = settings
        self.pusher = CrowdSecPusher(settings)
        self.consumer = Consumer({**kafka.client_config(), "group.id": settings.group_id,
                                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})  # fmt: skip
        self.pushed = 0

    def run(self, stopped: threading.Event) -> None:
        from confluent_kafka import TopicPartition

        self.consumer.subscribe([ENFORCEMENT_DECISIONS])
        try:
            while not stopped.is_set():
                messages = [m for m in self.consumer.consume(500, timeout=1.0) if not m.error()]
                decisions = [orjson.loads(value) for m in messages if (value := m.value())]
                if not decisions:
                    continue
                try:
                    pushed = self.pusher.push(decisions)
                except (CrowdSecError, urllib3.exceptions.HTTPError) as error:
                    log.error("crowdsec_push_failed", error=str(error)[:300], retry_in_s=self.settings.push_interval_s)
                    first = messages[0]  # rewind to the first decision not pushed
                    self.consumer.seek(TopicPartition(first.topic() or "", first.partition() or 0, first.offset() or 0))
                    stopped.wait(self.settings.push_interval_s)
                    continue
                self.consumer.commit(asynchronous=False)
                self.pushed += pushed
                if pushed:
                    log.info("crowdsec_pushed", alerts=pushed)
        finally:
            self.consumer.close()


def run() -> None:
    bouncer = CrowdSecBouncer(CrowdSecSettings(), KafkaSettings())
    stopped = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bouncer.run(stopped)
