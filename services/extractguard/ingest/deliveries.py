"""Kafka's delivery callbacks (called on the ingest's poll thread) as asyncio futures, so a handler
answers only once Kafka acknowledged what it produced."""

from __future__ import annotations

import asyncio
from typing import Any

from confluent_kafka import KafkaError, Message


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
