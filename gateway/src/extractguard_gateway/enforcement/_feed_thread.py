"""The background thread both decision feeds run in (the Kafka one and the HTTP one): it repeats one
step until stopped, and after a failure waits and resumes, so requests never wait on the feed.

Standard library only: the HTTP feed is used where the gateway's environment gains nothing for it.
"""

from __future__ import annotations

import abc
import threading
from typing import TypeVar

_Feed = TypeVar("_Feed", bound="FeedThread")


class FeedThread(abc.ABC):
    """Subclasses give `_step` (one unit of following: it may block until `_stop` is set) and
    `_failed` (how a failure is logged); `_failures` are the exceptions the loop survives, waiting
    `_retry_s` before it starts over. `records` counts the records the feed applied."""

    _failures: tuple[type[Exception], ...] = (Exception,)
    _retry_s: float = 5.0

    def __init__(self, thread_name: str) -> None:
        self.records = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    def start(self: _Feed) -> _Feed:
        self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except self._failures as error:
                self._failed(error)
                self._stop.wait(self._retry_s)

    @abc.abstractmethod
    def _step(self) -> None:
        """One unit of following; must return (or raise) soon after `_stop` is set."""

    @abc.abstractmethod
    def _failed(self, error: Exception) -> None:
        """Log `error`; called inside the `except` block, so `log.exception` carries the traceback."""
