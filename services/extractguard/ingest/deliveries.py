"""Kafka's delivery callbacks (called on the ingest's poll thread) as asyncio futures, so a handler
answers only once Kafka acknowledged what it produced; and the one way the ingest keeps a line it
rejects (its topic's DLQ, with why)."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from confluent_kafka import KafkaError, Message

from extractguard import metrics
from extractguard.contracts.dead_letters import DeadLetter
from extractguard.contracts.rejection import InvalidMessage
from extractguard.contracts.topics import dlq_name

SERVICE = "ingest"


class RawProducer(Protocol):
    def produce_raw(self, topic: str, value: bytes, headers: Any, on_delivery: Any) -> None: ...


class Deliveries:
    """Bridges librdkafka delivery callbacks (poll thread) to asyncio futures."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def future(self) -> tuple[asyncio.Future[None], Any]:
        future: asyncio.Future[None] = self.loop.create_future()

        def done(error: KafkaError | None, _message: Message) -> None:
            def settle() -> None:
                if future.done():
                    return
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(RuntimeError(str(error)))

            self.loop.call_soon_threadsafe(settle)

        return future, done


def dead_letter(
    deliveries: Deliveries, publisher: RawProducer, topic: str, line: bytes, error: InvalidMessage, source: str,
    index: int | None = None,
) -> asyncio.Future[None]:  # fmt: skip
    """Keep `line` (line `index` of a request from `source`, or its whole body), rejected for
    `error`, on `topic`'s DLQ; the future of its delivery (the request is answered once Kafka has it)."""
    dead = DeadLetter(original=line, error=error, service=SERVICE, source=source, line=index)
    future, done = deliveries.future()
    publisher.produce_raw(dlq_name(topic), line, dead.headers(), done)
    metrics.DLQ_MESSAGES.labels(dlq_name(topic), str(error.code)).inc()
    return future
