"""The checkpoint-before-acknowledge stage: per-partition state of a stream worker, made durable
before the input it covers is acknowledged.

Both Faust workers (detection over `gateway.events`; the campaign linker over
`fingerprint.activity` and the resolver over `link.evidence`) run their agents through one
`CheckpointedStage`. One input message goes through these steps, in the order given:

1. **restore** — the first message of a partition after an assignment loads the partition's
   state from the `StateStore` (the last checkpoint, or a fresh state);
2. **skip** — a message at or below the offset the restored checkpoint covers is acknowledged at
   once and not handled again;
3. **read** — the `Reader` turns the bytes into valid items and dead letters (a whole message, or
   each line of an envelope); dead letters are sent to the stage's DLQ with their headers, and the
   `InvalidRateGuard` counts both;
4. **handle** — the stage's `Handler` updates the state with the valid items and appends every
   send it makes to `pending`;
5. **checkpoint**, when due (`CheckpointPolicy`: every N messages or every T seconds, whichever
   comes first; a quiet partition by `checkpoint_quiet`): every pending send is awaited until
   Kafka has it, the state and the offset it covers are saved, and only then are the messages it
   covers acknowledged (so Faust may commit them).

Guarantees, in the style of arroyo's processing-strategy contracts:

- **Ordering.** Messages of one partition are handled strictly in offset order, one at a time (a
  lock per partition); partitions are independent.
- **Acknowledgement never runs ahead of durability.** A message is acknowledged only after a
  checkpoint that covers it was acknowledged by Kafka, and a checkpoint is saved only after every
  send made while handling the messages it covers was acknowledged. A worker killed at any moment
  therefore resumes from a state that holds exactly the messages up to its checkpoint's offset,
  and is redelivered the rest: each input counts once in the state.
- **Outputs are at-least-once.** What a crash makes a worker redo is re-sent; handlers give what
  they send deterministic ids or idempotent merges, so downstream deduplicates.
- **Bad input is kept, never fatal.** A message (or line) the reader refuses becomes a
  `DeadLetter` in the stage's DLQ with the reason code, the original bytes and where it came from
  (`eg-source` is `kafka:<topic>`, with `eg-source-topic`, `-partition`, `-offset`, and
  `-line` for envelopes); the state never sees it.
- **Stop when nearly everything is invalid.** The guard raises `TooManyInvalid` out of `process`;
  nothing of that message is acknowledged, so a fixed deploy resumes where this one stopped.
- **A broker outage is waited out.** A checkpoint the store could not make durable
  (`CheckpointError`: the broker is down or restarting) is tried again a checkpoint interval
  later, its messages still unacknowledged; only after `max_deferred_s` without one does the
  error escape (a broker gone that long is an outage to page about, not to ride out).
- **Revocation.** `forget` drops a partition's state and its unacknowledged messages; the next
  owner restores from the last checkpoint and is redelivered them.
- **Checkpoint format.** `STAGE_FORMAT` frames the codec's bytes with the offset they cover. A
  checkpoint the codec cannot read (another layout version, or written before this framing)
  gives a fresh state; the consumer then resumes from its committed offset.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
import time
import zlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import orjson

from extractguard import gc_policy, metrics
from extractguard.checkpoints import CheckpointError
from extractguard.contracts.dead_letters import DeadLetter
from extractguard.contracts.rejection import InvalidMessage, InvalidRateGuard, Reason

S = TypeVar("S")  # one partition's state
T = TypeVar("T")  # one valid item the reader makes of a message

#: The frame around a codec's bytes: magic, frame version, the last input offset the state holds.
_FRAME = struct.Struct(">4sHq")
_MAGIC = b"EGCS"
STAGE_FORMAT = 1


class StateStore(Protocol):
    """Where checkpoints live (`checkpoints.CheckpointStore` in production). Both calls block and
    are run off the event loop."""

    def load(self, partition: int) -> bytes | None:
        """The partition's latest checkpoint, or None when it never had one. May raise on a broker
        failure: the message is then not handled, and the worker fails."""

    def save(self, partition: int, blob: bytes) -> None:
        """Return only once the checkpoint is durable; raise when it is not (never return early)."""


class StateCodec(Protocol[S]):
    """Turns one partition's state into bytes and back."""

    def dump(self, state: S) -> bytes: ...

    def load(self, blob: bytes) -> S | None:
        """The state, or None when `blob` is of a layout this code does not read (start afresh)."""


@dataclass(frozen=True, slots=True)
class PickledState(Generic[S]):
    """A codec pickling the state with a layout `version` of its own, bumped when the pickled
    classes change so an old checkpoint is discarded rather than misread. Checkpoints come only
    from the stage's own compacted topic, never from outside input, so pickle is safe here.

    >>> codec = PickledState(dict, version=2)
    >>> codec.load(codec.dump({"a": 1}))
    {'a': 1}
    >>> PickledState(dict, version=3).load(codec.dump({"a": 1})) is None
    True
    """

    kind: type[S]
    version: int

    def dump(self, state: S) -> bytes:
        return zlib.compress(pickle.dumps((self.version, state), protocol=pickle.HIGHEST_PROTOCOL), 1)

    def load(self, blob: bytes) -> S | None:
        try:
            version, state = pickle.loads(zlib.decompress(blob))
        except Exception:  # another layout altogether: unreadable is as good as old
            return None
        return state if version == self.version and isinstance(state, self.kind) else None


@dataclass(frozen=True, slots=True)
class Position:
    """Where one input message came from."""

    topic: str
    partition: int
    offset: int


@dataclass(slots=True)
class Read(Generic[T]):
    """What a reader made of one message: its valid items and its refused parts."""

    items: list[T] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


#: Reads one message's bytes. Must not raise for bad input: refusals are dead letters.
Reader = Callable[[bytes, Position], Read[T]]
#: `handle(state, items, position, pending)` updates the state and appends each send's
#: acknowledgement to `pending`. Must not block the loop; may await sends.
Handler = Callable[[S, list[T], Position, list[Awaitable[Any]]], Awaitable[None]]
#: Sends one dead letter to the DLQ; returns the awaitable acknowledgement of the send.
DeadLetterSender = Callable[[DeadLetter], Awaitable[Awaitable[Any]]]

#: What a decoder for a whole message may raise besides `InvalidMessage` on malformed input.
MALFORMED = (InvalidMessage, ValueError, KeyError, TypeError, IndexError)


def whole_message(decode: Callable[[bytes], T], service: str) -> Reader[T]:
    """A reader for topics whose one message is one item: a decoding failure dead-letters it.

    >>> read = whole_message(int, "svc")
    >>> read(b"7", Position("t", 0, 3)).items
    [7]
    >>> [(d.error.code, d.source, d.source_offset) for d in read(b"x", Position("t", 0, 3)).dead]
    [(<Reason.SCHEMA_VIOLATION: 'schema_violation'>, 'kafka:t', 3)]
    """

    def read(value: bytes, where: Position) -> Read[T]:
        try:
            return Read(items=[decode(value)])
        except MALFORMED as error:
            # A contract's own check gives its reason as it is; anything else is named here.
            invalid = error if isinstance(error, InvalidMessage) else InvalidMessage(
                Reason.NOT_JSON if isinstance(error, orjson.JSONDecodeError) else Reason.SCHEMA_VIOLATION,
                f"{type(error).__name__}: {error}"[:500],
            )  # fmt: skip
            dead = DeadLetter(
                value, invalid, service, f"kafka:{where.topic}", where.topic, where.partition, where.offset
            )
            return Read(dead=[dead])

    return read


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """When a partition's checkpoint is due: after `every_messages` unacknowledged messages, or
    `interval_s` after the last checkpoint, whichever comes first — but never sooner after the
    last one than its cost divided by `max_overhead`.

    The cost bound is what keeps a stage with a large state moving: the campaign linker's day-long
    slow books make a checkpoint take seconds, and at a 2 s interval the linker spent 56% of its
    time pickling (py-spy, make eval's `adaptive` replay), so it fell further behind the faster it
    was fed. With the bound, checkpointing takes at most about `max_overhead` of the stage's time;
    the price is a longer redelivery after a crash, which the guarantees above already cover.
    """

    interval_s: float
    every_messages: int = 1_000_000
    max_overhead: float = 0.1
    max_deferred_s: float = 300.0


class InputMessage(Protocol):
    """One consumed message, as the stage needs it (`faust.EventT` is one)."""

    @property
    def value(self) -> Any: ...

    def ack(self) -> bool: ...


class StageLog(Protocol):
    def info(self, event: str, **fields: Any) -> Any: ...

    def warning(self, event: str, **fields: Any) -> Any: ...


@dataclass(slots=True)
class _Partition(Generic[S]):
    state: S
    offset: int  # the last input offset the state holds; -1 for none
    last_checkpoint: float
    last_cost: float = 0.0  # seconds the last checkpoint took (pickling, saving, acknowledging)
    deferred_since: float | None = None  # when a checkpoint first failed, while they still fail
    pending: list[Awaitable[Any]] = field(default_factory=list)
    uncovered: list[InputMessage] = field(default_factory=list)


class CheckpointedStage(Generic[S, T]):
    """One agent's per-partition state and the checkpoint-before-acknowledge loop (see module)."""

    def __init__(
        self,
        name: str,
        *,
        service: str,
        topic: str,
        dlq_topic: str,
        store: StateStore,
        codec: StateCodec[S],
        fresh: Callable[[], S],
        read: Reader[T],
        handle: Handler[S, T],
        send_dead_letter: DeadLetterSender,
        policy: CheckpointPolicy,
        guard: InvalidRateGuard | None,
        log: StageLog,
        prepare: Callable[[S], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`prepare` is applied to every state made ready, fresh or restored (for what is not part
        of the checkpoint, such as a live verdict source)."""
        self.name = name
        self.service = service
        self.topic = topic
        self.dlq_topic = dlq_topic
        self.store = store
        self.codec = codec
        self.fresh = fresh
        self.read = read
        self.handle = handle
        self.send_dead_letter = send_dead_letter
        self.policy = policy
        self.guard = guard
        self.log = log
        self.prepare = prepare
        self.clock = clock
        self.partitions: dict[int, _Partition[S]] = {}
        self.locks: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

    def dump(self, state: S, offset: int) -> bytes:
        return _FRAME.pack(_MAGIC, STAGE_FORMAT, offset) + self.codec.dump(state)

    def undump(self, blob: bytes) -> tuple[S, int] | None:
        if len(blob) < _FRAME.size:
            return None
        magic, version, offset = _FRAME.unpack_from(blob)
        if magic != _MAGIC or version != STAGE_FORMAT:
            return None
        state = self.codec.load(blob[_FRAME.size :])
        return None if state is None else (state, offset)

    async def _ready(self, partition: int) -> _Partition[S]:
        book = self.partitions.get(partition)
        if book is None:
            blob = await asyncio.to_thread(self.store.load, partition)
            restored = self.undump(blob) if blob else None
            if restored is not None:
                gc_policy.settle_restored_state()
            state, offset = restored if restored is not None else (self.fresh(), -1)
            if self.prepare is not None:
                self.prepare(state)
            book = self.partitions[partition] = _Partition(state, offset, self.clock())
            self.log.info("state_ready", stage=self.name, partition=partition, restored=restored is not None,
                          discarded=bool(blob) and restored is None, last_offset=offset)  # fmt: skip
        return book

    async def state(self, partition: int) -> S:
        """The partition's state, restored on first use."""
        return (await self._ready(partition)).state

    def offset(self, partition: int) -> int:
        """The last input offset the partition's state holds (-1 when none or not ready)."""
        book = self.partitions.get(partition)
        return -1 if book is None else book.offset

    async def process(self, partition: int, offset: int, message: InputMessage) -> None:
        """Steps 1-5 for one message. Raises `TooManyInvalid` through the guard, and whatever the
        store or a send raises; the message then stays unacknowledged."""
        async with self.locks[partition]:
            book = await self._ready(partition)
            if offset <= book.offset:
                message.ack()  # the restored checkpoint already holds it
                return
            where = Position(self.topic, partition, offset)
            read = self.read(message.value or b"", where)
            if self.guard is not None:
                self.guard.record(valid=True, count=len(read.items))
                self.guard.record(valid=False, count=len(read.dead))
            book.uncovered.append(message)
            for dead in read.dead:
                book.pending.append(await self.send_dead_letter(dead))
                metrics.DLQ_MESSAGES.labels(self.dlq_topic, str(dead.error.code)).inc()
                self.log.warning("invalid_message", stage=self.name, topic=self.topic, partition=partition,
                                 offset=offset, line=dead.line, reason=str(dead.error.code),
                                 detail=dead.error.detail[:200])  # fmt: skip
            if read.items:
                await self.handle(book.state, read.items, where, book.pending)
            book.offset = offset
            if self._due(book):
                await self._checkpoint(partition, book)

    def _due(self, book: _Partition[S]) -> bool:
        since = self.clock() - book.last_checkpoint
        if since < book.last_cost / self.policy.max_overhead:
            return False
        return len(book.uncovered) >= self.policy.every_messages or since >= self.policy.interval_s

    async def _checkpoint(self, partition: int, book: _Partition[S]) -> None:
        began = self.clock()
        await asyncio.gather(*book.pending)
        book.pending.clear()
        try:
            await asyncio.to_thread(self.store.save, partition, self.dump(book.state, book.offset))
        except CheckpointError as error:
            now = self.clock()
            book.deferred_since = book.deferred_since if book.deferred_since is not None else now
            if now - book.deferred_since >= self.policy.max_deferred_s:
                raise
            book.last_checkpoint = now  # due again one interval later
            self.log.warning("checkpoint_deferred", stage=self.name, partition=partition,
                             unacknowledged=len(book.uncovered), error=str(error)[:200])  # fmt: skip
            return
        book.deferred_since = None
        book.last_checkpoint = self.clock()
        book.last_cost = book.last_checkpoint - began
        for message in book.uncovered:
            message.ack()
        book.uncovered.clear()

    async def checkpoint(self, partition: int) -> None:
        """Checkpoint a partition now, if it holds unacknowledged messages."""
        async with self.locks[partition]:
            book = self.partitions.get(partition)
            if book is not None and book.uncovered:
                await self._checkpoint(partition, book)

    async def checkpoint_quiet(self) -> None:
        """Checkpoint every partition whose checkpoint is due by time but that no message has come
        to since: a partition that went quiet still gets its last messages committed."""
        for partition, book in list(self.partitions.items()):
            if book.uncovered and self._due(book):
                await self.checkpoint(partition)

    def forget(self, partition: int) -> None:
        """The partition was revoked: another worker resumes it from the last checkpoint."""
        self.partitions.pop(partition, None)
