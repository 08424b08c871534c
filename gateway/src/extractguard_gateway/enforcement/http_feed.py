"""Feed a `DecisionCache` over HTTP from ExtractGuard's ingest, for a gateway that may post to an
HTTPS endpoint but may not join the broker's network.

`GET <ingest>/v1/decisions?position=P&wait_s=W` with the gateway's own bearer token (the one it
posts events with) is a long poll: the ingest answers as soon as a decision changed after position
P, or after W seconds with none. The first answer (no position) is the whole set in force with
`reset: true`: the cache drops what the snapshot lacks. Each answer carries the position to resume
from (the decisions topic's offsets, the same in every ingest replica and across its restarts), so a
bouncer that loses its connection, or is answered by another replica, picks up where it stopped.
The cache is marked ready once the ingest says its own copy of the decisions topic is warm.

Every `report_interval_s` (after the poll in progress) the requests each decision affected are
posted to `<ingest>/v1/decisions/reports` under the same token, as the Kafka-fed bouncer produces
them to `enforcement.reports`; the ingest produces them there. Reports the ingest did not take (it
was away, or answered other than 200) are kept, up to `MAX_HELD_REPORTS`, and sent with the next.

Standard library only: the gateway's environment gains nothing for it.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

from extractguard_gateway.enforcement._feed_thread import FeedThread
from extractguard_gateway.enforcement.cache import DecisionCache
from extractguard_gateway.enforcement.feed import report_records

log = logging.getLogger("extractguard_gateway.enforcement")
#: The longest wait the ingest grants a long poll (its own cap).
MAX_WAIT_S = 30.0
#: Reports held while the ingest does not take them; the oldest are dropped beyond it (and said so).
MAX_HELD_REPORTS = 10_000


class HttpDecisionFeed(FeedThread):
    # The ingest away or answering oddly: wait, resume.
    _failures = (OSError, ValueError, KeyError)
    _retry_s = 2.0

    def __init__(
        self,
        cache: DecisionCache,
        url: str,
        token: str,
        *,
        wait_s: float = 25.0,
        bouncer: str = "litellm",
        report_interval_s: float | None = 30.0,
    ) -> None:
        super().__init__("extractguard-decisions-http")
        self.cache = cache
        self.url = url.rstrip("/") + "/v1/decisions"
        self.token = token
        self.wait_s = min(wait_s, MAX_WAIT_S)
        self.position: str | None = None
        #: How many answers were the whole set (the first, and any after a position was refused).
        self.snapshots = 0
        self.bouncer = bouncer
        self.instance = f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
        #: None: no reports (EXTRACTGUARD_ENFORCE_REPORTS_TOPIC="").
        self.report_interval_s = report_interval_s
        self.held_reports: list[dict[str, Any]] = []
        self._window_start_ms = int(time.time() * 1000)
        self._reported_at = time.monotonic()

    def _step(self) -> None:
        self.poll_once()
        if self.report_interval_s is not None and time.monotonic() - self._reported_at >= self.report_interval_s:
            self.report()

    def stop(self, timeout_s: float = 10.0) -> None:
        super().stop(timeout_s)
        if self.report_interval_s is not None:
            try:
                self.report(timeout_s=5)  # the gateway is stopping: a short wait
            except (OSError, ValueError) as error:
                log.warning("extractguard: %d bouncer reports not sent at stop (%s)", len(self.held_reports), error)

    def report(self, timeout_s: float = 30.0) -> int:
        """Post the counts since the last report (and any held); returns how many records the
        ingest took. Raises (keeping them) when it did not take them."""
        now_ms = int(time.time() * 1000)
        self.held_reports += report_records(self.cache, self.bouncer, self.instance, self._window_start_ms, now_ms)
        self._window_start_ms, self._reported_at = now_ms, time.monotonic()
        if len(self.held_reports) > MAX_HELD_REPORTS:
            dropped = len(self.held_reports) - MAX_HELD_REPORTS
            log.warning("extractguard: the ingest took no reports for a while; the oldest %d dropped", dropped)
            del self.held_reports[:dropped]
        if not self.held_reports:
            return 0
        body = "\n".join(json.dumps(record) for record in self.held_reports).encode()
        request = urllib.request.Request(
            f"{self.url}/reports", data=body, method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/x-ndjson"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                answer: dict[str, Any] = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise ValueError(f"{self.url}/reports answered {error.code}: {error.read()[:200]!r}") from None
        if answer.get("rejected"):  # a fault of ours: the ingest kept them in its dead letters
            log.warning("extractguard: the ingest refused %d bouncer reports", answer["rejected"])
        self.held_reports = []
        return int(answer["accepted"])

    def _failed(self, error: Exception) -> None:
        log.warning("extractguard: the HTTP decision feed failed (%s); retrying in 2 s", error)

    def poll_once(self, wait_s: float | None = None) -> int:
        """One long poll; returns how many records it applied."""
        wait = self.wait_s if wait_s is None else wait_s
        query = {"wait_s": f"{wait:g}", **({"position": self.position} if self.position else {})}
        request = urllib.request.Request(
            f"{self.url}?{urllib.parse.urlencode(query)}", headers={"Authorization": f"Bearer {self.token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=wait + 15) as response:
                answer: dict[str, Any] = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise ValueError(f"{self.url} answered {error.code}: {error.read()[:200]!r}") from None
        records = answer["decisions"]
        if answer["reset"]:
            self.snapshots += 1
            # A snapshot: what it lacks is no longer in force (a tombstone missed while away).
            fresh = {record["key"] for record in records}
            for held in self.cache.decisions():
                if held.key not in fresh:
                    self.cache.apply(None, held.key)
        for record in records:
            self.cache.apply(record["decision"], record["key"])
        self.records += len(records)
        self.position = None if answer["position"] is None else str(answer["position"])
        if answer["ready"] and not self.cache.ready.is_set():
            self.cache.ready.set()
            log.info("extractguard: %d decisions loaded from %s", len(self.cache), self.url)
        return len(records)
