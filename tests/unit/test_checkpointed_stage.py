"""The checkpointed stage's contract, with a fake store, fake messages and a fake clock.

Each test would fail if one of the guarantees in `checkpointed_stage`'s docstring broke: an ack
before the checkpoint, a checkpoint before the sends, a restored state counting a message twice or
missing one, bad input reaching the state or lost, the guard not stopping, a stale layout misread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import pytest

from extractguard.checkpointed_stage import (
    CheckpointedStage,
    CheckpointPolicy,
    PickledState,
    Position,
    Read,
    whole_message,
)
from extractguard.checkpoints import CheckpointError
from extractguard.contracts.dead_letters import DeadLetter
from extractguard.contracts.rejection import InvalidMessage, InvalidRateGuard, Reason, TooManyInvalid

TOPIC = "things"


@dataclass
class Tally:
    seen: list[int] = field(default_factory=list)


@dataclass
class Message:
    value: bytes
    acks: int = 0
    log: list[str] | None = None

    def ack(self) -> bool:
        self.acks += 1
        if self.log is not None:
            self.log.append(f"ack {self.value!r}")
        return True


class FakeStore:
    def __init__(self, events: list[str] | None = None) -> None:
        self.blobs: dict[int, bytes] = {}
        self.events = events if events is not None else []
        self.fail = False
        self.unavailable = False

    def load(self, partition: int) -> bytes | None:
        return self.blobs.get(partition)

    def save(self, partition: int, blob: bytes) -> None:
        if self.fail:
            raise RuntimeError("a bug in the store")
        if self.unavailable:
            raise CheckpointError("checkpoint of partition 0 not acknowledged: timeout")
        self.events.append("save")
        self.blobs[partition] = blob


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))


def read_numbers(value: bytes, where: Position) -> Read[int]:
    """An envelope of comma-separated numbers; anything else on a line is refused."""
    read: Read[int] = Read()
    for line, part in enumerate(value.split(b",")):
        if part.isdigit():
            read.items.append(int(part))
        else:
            error = InvalidMessage(Reason.WRONG_TYPE, "not a number")
            read.dead.append(
                DeadLetter(
                    part, error, "test", f"kafka:{where.topic}", where.topic, where.partition, where.offset, line
                )
            )
    return read


class Harness:
    def __init__(
        self,
        store: FakeStore | None = None,
        *,
        every: int = 3,
        interval_s: float = 60.0,
        guard: InvalidRateGuard | None = None,
        version: int = 1,
    ) -> None:
        self.store = store or FakeStore()
        self.events = self.store.events
        self.sent: list[bytes] = []
        self.dead: list[DeadLetter] = []
        self.clock = FakeClock()
        self.log = Log()
        self.loop = asyncio.new_event_loop()  # one loop for the stage's life, as in a worker
        self.stage: CheckpointedStage[Tally, int] = CheckpointedStage(
            "count",
            service="test",
            topic=TOPIC,
            dlq_topic=f"{TOPIC}.dlq",
            store=self.store,
            codec=PickledState(Tally, version),
            fresh=Tally,
            read=read_numbers,
            handle=self.handle,
            send_dead_letter=self.send_dead_letter,
            policy=CheckpointPolicy(interval_s=interval_s, every_messages=every),
            guard=guard,
            log=self.log,
            clock=self.clock,
        )

    def _acknowledged_later(self, what: str) -> Awaitable[Any]:
        # A send Kafka acknowledges only after the loop has turned: the stage must wait for it.
        async def later() -> None:
            await asyncio.sleep(0)
            self.events.append(what)

        return asyncio.ensure_future(later())

    async def handle(self, state: Tally, items: list[int], where: Position, pending: list[Awaitable[Any]]) -> None:
        state.seen.extend(items)
        for item in items:
            self.sent.append(str(item).encode())
            pending.append(self._acknowledged_later(f"sent {item}"))

    async def send_dead_letter(self, dead: DeadLetter) -> Awaitable[Any]:
        self.dead.append(dead)
        return self._acknowledged_later(f"dead {dead.original!r}")

    def feed(self, messages: list[Message], start: int = 0, partition: int = 0) -> None:
        async def go() -> None:
            for offset, message in enumerate(messages[start:], start):
                await self.stage.process(partition, offset, message)

        self.run(go())

    def run(self, step: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(step)

    def state(self, partition: int = 0) -> Tally:
        return self.run(self.stage.state(partition))


def _messages(*values: bytes) -> list[Message]:
    return [Message(v) for v in values]


def test_nothing_is_acknowledged_before_a_checkpoint_covers_it_and_the_sends_came_first() -> None:
    h = Harness(every=3)
    messages = _messages(b"1", b"2", b"3", b"4")
    h.feed(messages)
    assert [m.acks for m in messages] == [1, 1, 1, 0], "the fourth is not covered by a checkpoint yet"
    save = h.events.index("save")
    assert {"sent 1", "sent 2", "sent 3"} <= set(h.events[:save]), "a checkpoint was saved before its sends"
    assert h.stage.offset(0) == 3


def test_a_restarted_stage_skips_what_its_checkpoint_holds_and_counts_the_rest_once() -> None:
    values = [str(i).encode() for i in range(10)]
    uninterrupted = Harness(every=3)
    uninterrupted.feed(_messages(*values))
    for crash_after in range(1, len(values)):
        first = Harness(every=3)
        delivered = _messages(*values)
        first.feed(delivered[:crash_after])  # then SIGKILL: whatever was not acknowledged is redelivered
        committed = next((i for i, m in enumerate(delivered) if not m.acks), crash_after)
        second = Harness(first.store, every=3)
        redelivered = _messages(*values)
        second.feed(redelivered, start=committed)
        assert second.state().seen == uninterrupted.state().seen, f"crash after {crash_after}"


def test_messages_at_or_below_the_restored_offset_are_acknowledged_without_being_handled() -> None:
    first = Harness(every=2)
    first.feed(_messages(b"1", b"2"))
    second = Harness(first.store, every=2)
    again = _messages(b"1", b"2")
    second.feed(again)  # the commit did not reach Kafka before the crash: both come back
    assert [m.acks for m in again] == [1, 1]
    assert second.state().seen == [1, 2]
    assert second.sent == [], "a message the checkpoint holds was handled again"
    assert ("state_ready", {"stage": "count", "partition": 0, "restored": True, "discarded": False,
                            "last_offset": 1}) in second.log.lines  # fmt: skip


def test_bad_lines_go_to_the_dlq_with_where_they_came_from_and_their_neighbours_still_land() -> None:
    h = Harness(every=1)
    message = Message(b"1,x,3")
    h.feed([message])
    assert h.state().seen == [1, 3]
    [dead] = h.dead
    headers = dict(dead.headers())
    assert headers["eg-source"] == b"kafka:things"
    assert (headers["eg-source-topic"], headers["eg-source-partition"], headers["eg-source-offset"]) == (
        b"things",
        b"0",
        b"0",
    )
    assert headers["eg-source-line"] == b"1" and headers["eg-reason-code"] == b"wrong_type"
    assert h.events.index("dead b'x'") < h.events.index("save"), "the dead letter must be in Kafka first"
    assert message.acks == 1


def test_a_whole_message_reader_dead_letters_what_its_decoder_refuses() -> None:
    def decode(value: bytes) -> int:
        if value == b"schema":
            raise InvalidMessage(Reason.MISSING_FIELD, "no n", "n")
        return int(value)

    read = whole_message(decode, "svc")
    where = Position(TOPIC, 2, 9)
    assert read(b"5", where).items == [5]
    [contract] = read(b"schema", where).dead
    assert (contract.error.code, contract.error.field) == (Reason.MISSING_FIELD, "n")
    [other] = read(b"five", where).dead
    assert other.error.code == Reason.SCHEMA_VIOLATION and "ValueError" in other.error.detail
    assert (other.source, other.source_partition, other.source_offset) == ("kafka:things", 2, 9)
    import orjson

    [not_json] = whole_message(orjson.loads, "svc")(b"{", where).dead
    assert not_json.error.code == Reason.NOT_JSON


def test_the_guard_stops_the_stage_when_nearly_everything_is_invalid_and_acknowledges_nothing_of_it() -> None:
    h = Harness(every=1, guard=InvalidRateGuard(max_fraction=0.5, window=4))
    messages = _messages(b"x", b"y", b"z", b"w")
    with pytest.raises(TooManyInvalid):
        h.feed(messages)
    assert messages[-1].acks == 0


def test_a_checkpoint_of_another_layout_gives_a_fresh_state_not_a_misread_one() -> None:
    old = Harness(every=1, version=1)
    old.feed(_messages(b"1"))
    new = Harness(old.store, every=1, version=2)
    assert new.state().seen == []
    assert new.stage.offset(0) == -1
    assert any(event == "state_ready" and fields["discarded"] for event, fields in new.log.lines)
    legacy = FakeStore()
    legacy.blobs[0] = b"\x78\x01 a checkpoint written before the stage framed them"
    assert Harness(legacy).state().seen == []


def test_a_checkpoint_is_due_by_time_and_a_quiet_partition_gets_one_too() -> None:
    h = Harness(every=1000, interval_s=5.0)
    messages = _messages(b"1", b"2")
    h.feed(messages[:1])
    assert messages[0].acks == 0
    h.clock.now = 5.0
    h.feed(messages, start=1)
    assert [m.acks for m in messages] == [1, 1], "due by time at the second message"
    third = Message(b"3")
    h.run(h.stage.process(0, 2, third))
    h.run(h.stage.checkpoint_quiet())
    assert third.acks == 0, "not due yet"
    h.clock.now = 10.0
    h.run(h.stage.checkpoint_quiet())
    assert third.acks == 1


def test_a_costly_checkpoint_is_not_repeated_until_its_cost_is_a_tenth_of_the_time() -> None:
    # A state that takes 3 s to save (the campaign linker's day-long books): due every message, it
    # would checkpoint without end; the next one waits until 30 s after it ended.
    h = Harness(every=1, interval_s=2.0)
    save = h.store.save

    def slow_save(partition: int, blob: bytes) -> None:
        h.clock.now += 3.0
        save(partition, blob)

    h.store.save = slow_save  # type: ignore[method-assign]
    messages = _messages(*(str(i).encode() for i in range(4)))
    h.feed(messages[:2])
    assert [m.acks for m in messages[:2]] == [1, 0] and h.events.count("save") == 1
    h.clock.now = 32.9  # the first ended at 3.0
    h.feed(messages[:3], start=2)
    assert messages[2].acks == 0
    h.clock.now = 33.0
    h.feed(messages, start=3)
    assert [m.acks for m in messages] == [1, 1, 1, 1] and h.events.count("save") == 2
    fifth = Message(b"4")
    h.run(h.stage.process(0, 4, fifth))
    h.clock.now = 60.0
    h.run(h.stage.checkpoint_quiet())
    assert fifth.acks == 0, "a quiet partition waits out the cost too"
    h.clock.now = 70.0
    h.run(h.stage.checkpoint_quiet())
    assert fifth.acks == 1 and h.state().seen == [0, 1, 2, 3, 4]


def test_a_failed_save_leaves_the_messages_unacknowledged() -> None:
    h = Harness(every=1)
    h.store.fail = True
    message = Message(b"1")
    with pytest.raises(RuntimeError, match="a bug in the store"):
        h.feed([message])
    assert message.acks == 0


def test_a_broker_outage_defers_the_checkpoint_then_gives_up_after_max_deferred_s() -> None:
    h = Harness(every=1, interval_s=5.0)
    h.store.unavailable = True
    first = Message(b"1")
    h.feed([first])  # the broker is down: no raise, nothing acknowledged
    assert first.acks == 0 and h.stage.offset(0) == 0
    h.clock.now = 5.0
    h.run(h.stage.checkpoint_quiet())
    assert first.acks == 0
    h.store.unavailable = False  # back
    h.clock.now = 10.0
    h.run(h.stage.checkpoint_quiet())
    assert first.acks == 1, "the deferred checkpoint is taken once the broker is back"
    h.store.unavailable = True
    second = Message(b"2")
    h.run(h.stage.process(0, 1, second))
    h.clock.now = 10.0 + 300.0
    with pytest.raises(CheckpointError):
        h.run(h.stage.checkpoint_quiet())
    assert second.acks == 0


def test_a_revoked_partition_is_restored_from_its_checkpoint_on_reassignment() -> None:
    h = Harness(every=2)
    h.feed(_messages(b"1", b"2", b"3"))
    h.stage.forget(0)
    assert h.stage.offset(0) == -1
    assert h.state().seen == [1, 2], "the third was not checkpointed: its next owner is redelivered it"


def test_partitions_are_independent() -> None:
    h = Harness(every=1)
    h.feed(_messages(b"1"), partition=0)
    h.feed(_messages(b"7"), partition=1)
    assert h.state(0).seen == [1] and h.state(1).seen == [7]
    assert set(h.store.blobs) == {0, 1}


def test_both_stream_apps_run_every_stage_through_the_component_with_a_guard() -> None:
    from extractguard.campaigns import app as campaigns
    from extractguard.detection import app as detection

    stages = [detection.detection_stage, campaigns.linking, campaigns.resolving]
    assert all(isinstance(stage, CheckpointedStage) and stage.guard is not None for stage in stages)
    [dead] = campaigns.linking.read(b"\xff not json", Position("fingerprint.activity", 1, 4)).dead
    assert dead.error.code == Reason.INVALID_UTF8 and dead.source == "kafka:fingerprint.activity"
    [dead] = campaigns.resolving.read(b'{"window_end_ms": 1}', Position("link.evidence", 0, 4)).dead
    assert dead.error.code == Reason.MISSING_FIELD and "evidence" in dead.error.detail


def test_a_tripped_guard_ends_a_faust_worker_rather_than_letting_its_supervisor_restart_the_agent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from extractguard import faust_app

    exits: list[int] = []
    monkeypatch.setattr(faust_app.os, "_exit", exits.append)
    log = Log()
    log.critical = log.warning  # type: ignore[attr-defined]

    async def trips() -> None:
        raise TooManyInvalid("950 of the last 1000 messages were invalid (limit 90%)")

    asyncio.run(faust_app.stop_on_too_many_invalid(trips(), log))
    assert exits == [faust_app.EXIT_TOO_MANY_INVALID]
    assert log.lines[0][0] == "too_many_invalid"
