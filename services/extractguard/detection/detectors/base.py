"""The protocol every detector implements, in the spirit of River's estimators.

A detector sees each event once (`learn_event`, for per-event online models) and each closed
event-time window once (`update`, which scores the window against what was learnt so far, then
learns it). Its whole state pickles, so a worker can checkpoint and restore it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

from extractguard.contracts.findings import Finding
from extractguard.detection.windows import ClosedWindow


@runtime_checkable
class Detector(Protocol):
    name: ClassVar[str]
    version: ClassVar[str]

    def learn_event(self, event: dict[str, Any]) -> None:
        """Learn from one validated event. Runs on the hot path: must be cheap and must not block."""

    def update(self, window: ClosedWindow) -> list[Finding]:
        """Score a closed window, then learn from it. Returns the findings, possibly none.

        Must be deterministic given the same sequence of events and windows.
        """
