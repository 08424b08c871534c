"""The decisions, served to bouncers over HTTP: `GET /v1/decisions`, on the ingest, under the gateway's
own token, for gateways that may post to ExtractGuard but may not reach its broker.

The ingest follows the compacted `enforcement.decisions` topic with the gateway package's own
`DecisionFeed` (one way to read the topic) into a `DecisionLog`: the newest record of every
target with the topic offset it was read at. A position is the topic's offsets read so far,
`<partition>:<next offset>,...`: the same numbering in every ingest replica and across restarts
(the broker keeps it), so a bouncer resumes from its position whichever replica answers, even one
started since. It sends the last position it got and receives what changed after it, waiting up
to `wait_s` for a change (a long poll). No position, or one that does not parse (an older ingest's
`<epoch>.<sequence>`), gets the whole set with `reset: true`. A replica that has read less than
the position waits until it has read past it. Until the ingest has read the topic to its end,
answers say `ready: false` and carry no position.

What a resumed bouncer may miss: the lift of a decision whose tombstone the broker compacted away
while the bouncer was gone (after `delete.retention.ms`, a day by default); the decision itself
has expired by then (`expires_at_ms`), which every bouncer honours on its own.

>>> feed = DecisionLog()
>>> feed.apply({"scope": "account", "entity": "a-1", "updated_at_ms": 5, "status": "active"}, at=(0, 7))
True
>>> position, reset, records = feed.since(None)
>>> position, reset, [key for key, _ in records]
('0:8', True, ['account:a-1'])
>>> feed.apply({"scope": "account", "entity": "a-1", "updated_at_ms": 4, "status": "expired"}, at=(0, 8))  # older
False
>>> feed.apply({"scope": "org", "entity": "o-1", "updated_at_ms": 6, "status": "active"}, at=(0, 9))
True
>>> feed.since("0:8")[2][0][0], feed.since("0:10")[2], feed.since("e0.2")[1]
('org:o-1', [], True)
"""

from __future__ import annotations

import asyncio
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
#: partition -> the next offset to read there.
Offsets = dict[int, int]


class Follower(Protocol):
    """What keeps a `DecisionLog` fed (`DecisionFeed`; a test's stand-in)."""

    def start(self) -> object: ...

    def stop(self, timeout_s: float = 10.0) -> None: ...


def parse_position(position: str | None) -> Offsets | None:
    """The offsets a position names; None for none or one that does not parse.

    >>> parse_position("0:12,2:5"), parse_position("e1.4"), parse_position("0:-1")
    ({0: 12, 2: 5}, None, None)
    """
    if not position:
        return None
    offsets: Offsets = {}
    for part in position.split(","):
        partition, _, offset = part.partition(":")
        if not (partition.isdigit() and offset.isdigit()):
            return None
        offsets[int(partition)] = int(offset)
    return offsets


def format_position(offsets: Offsets) -> str:
    return ",".join(f"{partition}:{offset}" for partition, offset in sorted(offsets.items()))


class DecisionLog:
    """The newest decision of every target with the topic offset it was read at (a `DecisionSink`)."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self._lock = threading.Lock()
        self._next: Offsets = {}
        # Per partition, in the order read (so in offset order): key -> (offset, record or tombstone).
        self._by_partition: dict[int, OrderedDict[str, tuple[int, dict[str, Any] | None]]] = {}

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for held in self._by_partition.values() for _o, record in held.values() if record is not None)

    def apply(self, payload: dict[str, Any] | None, key: str | None = None, at: tuple[int, int] | None = None) -> bool:
        """Take one record of the topic read at `at` (partition, offset; a test's record without one
        takes partition 0's next); None is a tombstone for `key`. False when older than the held."""
        key = key or (None if payload is None else target_key(payload["scope"], payload["entity"]))
        with self._lock:
            partition, offset = at if at is not None else (0, self._next.get(0, 0))
            self._next[partition] = max(self._next.get(partition, 0), offset + 1)
            if key is None:
                return False
            held_records = self._by_partition.setdefault(partition, OrderedDict())
            held = held_records.get(key, (0, None))[1]
            if held is not None and payload is not None and held["updated_at_ms"] > payload["updated_at_ms"]:
                return False
            held_records[key] = (offset, payload)
            held_records.move_to_end(key)
            return True

    def take_counts(self) -> Counter[tuple[str, str, str, str]]:
        return Counter()  # the ingest enforces nothing, so it reports nothing

    def since(self, position: str | None) -> tuple[str, bool, list[Record]]:
        """(the position now, whether this is a whole snapshot, the records changed after `position`)."""
        asked = parse_position(position)
        reset = asked is None
        after = asked or {}
        with self._lock:
            changed: list[Record] = []
            for partition, held_records in self._by_partition.items():
                start = after.get(partition, 0)
                newest_first: list[Record] = []
                for key in reversed(held_records):
                    offset, record = held_records[key]
                    if offset < start:
                        break
                    if record is not None or not reset:  # a snapshot has no use for tombstones
                        newest_first.append((key, record))
                changed += newest_first[::-1]
            # Never behind the bouncer: what another replica already gave it is not given again.
            now = {p: max(after.get(p, 0), self._next.get(p, 0)) for p in {*after, *self._next}}
            return format_position(now), reset, changed


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
