"""Receiving an envelope: split it, validate each line, and keep the refused ones as dead letters.

Shared by every consumer of `gateway.events` (detection workers, lander), so they refuse the same
things for the same reasons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from extractguard.contracts.dead_letters import DeadLetter
from extractguard.contracts.envelope import split
from extractguard.contracts.rejection import InvalidMessage, InvalidRateGuard
from extractguard.contracts.schemas import Payload


@dataclass(slots=True)
class Intake:
    valid: list[Payload] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


def receive(
    value: bytes,
    validate: Callable[[bytes], Payload],
    *,
    service: str,
    topic: str,
    partition: int,
    offset: int,
    guard: InvalidRateGuard | None = None,
    lines: Callable[[bytes], list[bytes]] = split,
) -> Intake:
    """Validate every line of one Kafka message; raises `TooManyInvalid` through the guard."""
    intake = Intake()
    parts = lines(value)
    for line_number, line in enumerate(parts):
        try:
            intake.valid.append(validate(line))
        except InvalidMessage as error:
            intake.dead.append(
                DeadLetter(line, error, service, f"kafka:{topic}", topic, partition, offset, line_number)
            )
    if guard is not None:
        guard.record(valid=True, count=len(intake.valid))
        guard.record(valid=False, count=len(intake.dead))
    return intake
