"""Send alerts to every destination: one worker thread and queue each, so a slow or failing
destination never holds up the others nor the alerter's loop.

Each request is retried by urllib3's `Retry` (connection errors, 429 and 5xx, exponential
backoff, `Retry-After` honoured) and spaced by the destination's token bucket. Every outcome —
destination, alert, delivered or failed, attempts, HTTP status — is a `DeliveryRecord` handed to
`record` (the alerter produces them to `alert.deliveries`, which lands in ClickHouse).
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import urllib3
from urllib3.util.retry import Retry

from extractguard import metrics
from extractguard.alerting.destination import Alert, Destination, OutgoingRequest
from extractguard.logs import configure

log = configure("alerter")
DeliveryStatus = Literal["delivered", "failed"]


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    destination: str
    kind: str
    alert_id: str
    dedup_key: str
    alert_status: str
    status: DeliveryStatus
    attempts: int
    http_status: int | None
    error: str | None
    at_ms: int

    def payload(self) -> dict[str, Any]:
        """The `alert_delivery` contract (schemas/alert_delivery/v1.json)."""
        identity = f"{self.destination}|{self.alert_id}|{self.alert_status}|{self.at_ms}"
        return {
            "schema_version": 1,
            "delivery_id": hashlib.blake2b(identity.encode(), digest_size=16).hexdigest(),
            "destination": self.destination,
            "destination_kind": self.kind,
            "alert_id": self.alert_id,
            "dedup_key": self.dedup_key,
            "alert_status": self.alert_status,
            "status": self.status,
            "attempts": self.attempts,
            "http_status": self.http_status,
            "error": self.error,
            "delivered_at_ms": self.at_ms,
        }


class TokenBucket:
    """`rate` requests a second, `burst` at once. One float and one timestamp per destination:
    a rate-limiting library would bring its own storage backends for what is this small."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.capacity, self.clock = rate, float(burst), clock
        self.tokens, self.stamp = float(burst), clock()

    def wait_time(self) -> float:
        """Take a token; the seconds to wait before using it (0 when one was there)."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class Sender:
    """Sends one destination's requests, synchronously: the dispatcher's workers and tests use it."""

    def __init__(self, destination: Destination) -> None:
        config = destination.config
        self.destination = destination
        self.retry = Retry(
            total=config.attempts - 1,
            backoff_factor=config.backoff_s,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=None,
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        self.http = urllib3.PoolManager(retries=self.retry, timeout=urllib3.Timeout(total=config.timeout_s))
        self.bucket = TokenBucket(config.rate_per_s, config.burst)

    def send(self, alerts: Sequence[Alert]) -> list[DeliveryRecord]:
        records = []
        for request in self.destination.requests(alerts):
            time.sleep(self.bucket.wait_time())
            records += self._post(request)
        return records

    def _post(self, request: OutgoingRequest) -> list[DeliveryRecord]:
        http_status: int | None = None
        error: str | None = None
        attempts = self.destination.config.attempts
        try:
            response = self.http.request("POST", request.url, body=request.body, headers=request.headers)
            http_status = response.status
            attempts = 1 + (len(response.retries.history) if response.retries is not None else 0)
            ok = 200 <= response.status < 300
            if not ok:
                error = f"HTTP {response.status}"
        except urllib3.exceptions.HTTPError as failure:
            ok = False
            error = type(failure).__name__
        status: DeliveryStatus = "delivered" if ok else "failed"
        metrics.ALERT_DELIVERIES.labels(self.destination.kind, status).inc(len(request.alerts))
        now = int(time.time() * 1000)
        return [
            DeliveryRecord(
                self.destination.name, self.destination.kind, str(a.get("alert_id", "")), str(a.get("dedup_key", "")),
                str(a.get("status", "")), status, attempts, http_status, error, now,
            )
            for a in request.alerts
        ]  # fmt: skip


class Dispatcher:
    def __init__(
        self,
        destinations: Sequence[Destination],
        record: Callable[[DeliveryRecord], None],
        queue_max: int = 10_000,
    ) -> None:
        self.record = record
        self._queues: list[queue.Queue[Sequence[Alert] | None]] = []
        self._workers: list[threading.Thread] = []
        for destination in destinations:
            pending: queue.Queue[Sequence[Alert] | None] = queue.Queue(maxsize=queue_max)
            worker = threading.Thread(
                target=self._work, args=(Sender(destination), pending), name=f"deliver-{destination.name}", daemon=True
            )
            worker.start()
            self._queues.append(pending)
            self._workers.append(worker)
        self.destinations = list(destinations)

    def submit(self, alerts: Sequence[Alert]) -> None:
        """Queue the alerts for every destination; never blocks."""
        if not alerts:
            return
        for destination, pending in zip(self.destinations, self._queues, strict=True):
            try:
                pending.put_nowait(list(alerts))
            except queue.Full:
                log.error("delivery_queue_full", destination=destination.name, alerts=len(alerts))
                for alert in alerts:
                    self.record(
                        DeliveryRecord(
                            destination.name, destination.kind, alert["alert_id"], alert["dedup_key"],
                            alert["status"], "failed", 0, None, "queue full", int(time.time() * 1000),
                        )
                    )  # fmt: skip

    def _work(self, sender: Sender, pending: queue.Queue[Sequence[Alert] | None]) -> None:
        while True:
            alerts = pending.get()
            if alerts is None:
                return
            try:
                records = sender.send(alerts)
            except Exception as error:  # a destination's bug must not kill its worker
                log.exception("delivery_error", destination=sender.destination.name, error=str(error))
                continue
            for record in records:
                if record.status == "failed":
                    log.error("delivery_failed", destination=record.destination, alert=record.alert_id,
                              attempts=record.attempts, error=record.error)  # fmt: skip
                self.record(record)

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (within the timeout), then stop the workers."""
        for pending in self._queues:
            pending.put(None)
        deadline = time.monotonic() + timeout_s
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
