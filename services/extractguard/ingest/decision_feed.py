"""The decisions, served to bouncers over HTTP: `GET /v1/decisions`, on the ingest, under the gateway's
own token, for gateways that may post to ExtractGuard but may not reach its broker.

The ingest follows the compacted `enforcement.decisions` topic with the gateway package's own
`DecisionFeed` (one way to read the topic) into a `DecisionLog`: the newest record of every
target, in the order they last changed, each with a sequence number. A position is
`<epoch>.<sequence>`; a bouncer sends the last one it got and receives what changed after it,
waiting up to `wait_s` for a change (a long poll). A position of another epoch (the ingest
restarted, its numbering with it) or none gets the whole set with `reset: true`; until the ingest
has read the topic to its end, answers say `ready: false` and carry no position.

>>> feed = DecisionLog(epoch="e1")
>>> feed.apply({"scope": "account", "entity": "a-1", "updated_at_ms": 5, "status": "active"})
True
>>> position, reset, records = feed.since(None)
>>> position, reset, [key for key, _ in records]
('e1.1', True, ['account:a-1'])
>>> feed.apply({"scope": "account", "entity": "a-1", "updated_at_ms": 4, "status": "expired"})  # older
False
>>> feed.apply({"scope": "org", "entity": "o-1", "updated_at_ms": 6, "status": "active"})
True
>>> feed.since("e1.1")[2][0][0], feed.since("e1.2")[2], feed.since("e0.2")[1]
('org:o-1', [], True)
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections import Counter, OrderedDict
from typing import Any, Protocol

from aiohttp import web

from extractguard.contracts.enforcement import ENFORCEMENT_DECISIONS
from extractguard.settings import KafkaSettings
from extractguard_gateway.enforcement.decisions import target_key
from extractguard_gateway.enforcement.feed import DecisionFeed

#: The longest a long poll is held (a proxy in between may cut longer ones).
MAX_WAIT_S = 30.0
#: How often a held poll looks for a change: the delay a change can take beyond its arrival.
CHECK_EVERY_S = 0.1

Record = tuple[str, dict[str, Any] | None]


class Follower(Protocol):
    """What keeps a `DecisionLog` fed (`DecisionFeed`; a test's stand-in)."""

    def start(self) -> object: ...

    def stop(self, timeout_s: float = 10.0) -> None: ...


class DecisionLog:
    """The newest decision of every target with the position it changed at (a `DecisionSink`)."""

    def __init__(self, epoch: str | None = None) -> None:
        self.epoch = epoch or secrets.token_hex(4)
        self.ready = threading.Event()
        self._lock = threading.Lock()
        self._sequence = 0
        self._by_key: OrderedDict[str, tuple[int, dict[str, Any] | None]] = OrderedDict()

    def __len__(self) -> int:
        return sum(1 for _seq, record in self._by_key.values() if record is not None)

    def apply(self, payload: dict[str, Any] | None, key: str | None = None) -> bool:
        """Take one record of the topic (None: a tombstone for `key`); False when older than the held."""
        key = key or (None if payload is None else target_key(payload["scope"], payload["entity"]))
        if key is None:
            return False
        with self._lock:
            held = None if payload is None else self._by_key.get(key, (0, None))[1]
            if held is not None and payload is not None and held["updated_at_ms"] > payload["updated_at_ms"]:
                return False
            self._sequence += 1
            self._by_key[key] = (self._sequence, payload)
            self._by_key.move_to_end(key)
            return True

    def take_counts(self) -> Counter[tuple[str, str, str, str]]:
        return Counter()  # the ingest enforces nothing, so it reports nothing

    def since(self, position: str | None) -> tuple[str, bool, list[Record]]:
        """(the position now, whether this is a whole snapshot, the records changed after `position`)."""
        epoch, _, number = (position or "").partition(".")
        reset = epoch != self.epoch or not number.isdigit()
        after = 0 if reset else int(number)
        with self._lock:
            changed: list[Record] = []
            for key in reversed(self._by_key):
                sequence, record = self._by_key[key]
                if sequence <= after:
                    break
                if record is not None or not reset:  # a snapshot has no use for tombstones
                    changed.append((key, record))
            return f"{self.epoch}.{self._sequence}", reset, changed[::-1]


def follow_decisions(kafka: KafkaSettings) -> tuple[DecisionLog, DecisionFeed]:
    """A `DecisionLog` fed from the topic by a background thread (the caller starts and stops it)."""
    decisions = DecisionLog()
    feed = DecisionFeed(decisions, kafka.bootstrap_servers, bouncer="ingest", topic=ENFORCEMENT_DECISIONS,
                        reports_topic=None, client_config=kafka.client_config())  # fmt: skip
    return decisions, feed


async def answer(request: web.Request, decisions: DecisionLog) -> web.Response:
    """The long poll: what changed after `position`, as soon as something did, or after `wait_s`."""
    try:
        wait_s = min(max(float(request.query.get("wait_s", "0")), 0.0), MAX_WAIT_S)
    except ValueError:
        return web.json_response({"error": {"code": "bad_request", "detail": "wait_s must be a number"}}, status=400)
    position = request.query.get("position")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        now, reset, records = decisions.since(position)
        warm = decisions.ready.is_set()
        if (warm and (records or reset)) or loop.time() >= deadline:
            break
        await asyncio.sleep(CHECK_EVERY_S)
    # Before its copy of the topic is warm the ingest gives no position: the bouncer's next poll asks
    # for the whole set again, which is answered at once when it is warm.
    return web.json_response({"position": now if warm else None, "reset": reset, "ready": warm,
                              "decisions": [{"key": k, "decision": d} for k, d in records]})  # fmt: skip
