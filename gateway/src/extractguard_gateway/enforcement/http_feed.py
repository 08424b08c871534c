"""Feed a `DecisionCache` over HTTP from ExtractGuard's ingest, for a gateway that may post to an
HTTPS endpoint but may not join the broker's network.

`GET <ingest>/v1/decisions?position=P&wait_s=W` with the gateway's own bearer token (the one it
posts events with) is a long poll: the ingest answers as soon as a decision changed after position
P, or after W seconds with none. The first answer (no position, or a position the ingest no longer
knows, as after its restart) is the whole set in force with `reset: true`: the cache drops what the
snapshot lacks. Each answer carries the position to resume from, so a bouncer that loses its
connection picks up where it stopped. The cache is marked ready once the ingest says its own copy
of the decisions topic is warm.

Standard library only: the gateway's environment gains nothing for it. Bouncer reports
(`enforcement.reports`) still need Kafka; over HTTP none are sent.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from extractguard_gateway.enforcement._feed_thread import FeedThread
from extractguard_gateway.enforcement.cache import DecisionCache

log = logging.getLogger("extractguard_gateway.enforcement")
#: The longest wait the ingest grants a long poll (its own cap).
MAX_WAIT_S = 30.0


class HttpDecisionFeed(FeedThread):
    # The ingest away or answering oddly: wait, resume.
    _failures = (OSError, ValueError, KeyError)
    _retry_s = 2.0

    def __init__(self, cache: DecisionCache, url: str, token: str, *, wait_s: float = 25.0) -> None:
        super().__init__("extractguard-decisions-http")
        self.cache = cache
        self.url = url.rstrip("/") + "/v1/decisions"
        self.token = token
        self.wait_s = min(wait_s, MAX_WAIT_S)
        self.position: str | None = None

    def _step(self) -> None:
        self.poll_once()

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
