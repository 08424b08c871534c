"""Tiny per-account sketches: distinct counts (HyperLogLog) and the dominant item (Misra-Gries).

There can be one per tracked account, so they are deliberately small: 16 one-byte HyperLogLog
registers (about 26% standard error, plenty to tell 3 templates from 300; ~75 bytes an account)
and a 4-counter heavy-hitter summary for where one is affordable.

>>> hll = Distinct()
>>> for i in range(1000): hll.add(hash64(f"template-{i}"))
>>> 600 < hll.estimate() < 1600
True
>>> top = Dominant()
>>> for item in ["a"] * 8 + ["b", "c"]: top.add(item)
>>> top.share()
0.8
"""

from __future__ import annotations

import math

import xxhash

_REGISTERS = 16
_ALPHA = 0.673  # HyperLogLog's bias correction for 16 registers


def hash64(value: str) -> int:
    return xxhash.xxh64_intdigest(value.encode())


class Distinct:
    """HyperLogLog with 16 registers (one byte each) over 64-bit hashes."""

    __slots__ = ("registers",)

    def __init__(self) -> None:
        self.registers = bytearray(_REGISTERS)

    def add(self, hashed: int) -> None:
        index = hashed & (_REGISTERS - 1)
        rest = hashed >> 4
        rank = 61 - rest.bit_length() if rest else 61  # leading zeros of the remaining 60 bits, + 1
        if rank > self.registers[index]:
            self.registers[index] = rank

    def estimate(self) -> float:
        registers = self.registers
        raw = _ALPHA * _REGISTERS * _REGISTERS / sum(2.0**-r for r in registers)
        empty = registers.count(0)
        if raw <= 2.5 * _REGISTERS and empty:
            return _REGISTERS * math.log(_REGISTERS / empty)  # small-range correction
        return raw


class Dominant:
    """Misra-Gries summary with 4 counters: the most frequent item's share of all items seen."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts: dict[str, float] = {}
        self.total = 0.0

    def add(self, item: str) -> None:
        self.total += 1.0
        counts = self.counts
        if item in counts:
            counts[item] += 1.0
        elif len(counts) < 4:
            counts[item] = 1.0
        else:
            for key in list(counts):
                counts[key] -= 1.0
                if counts[key] <= 0:
                    del counts[key]

    def share(self) -> float:
        """A lower bound of the most frequent item's share (Misra-Gries undercounts, never over)."""
        return max(self.counts.values(), default=0.0) / self.total if self.total else 0.0
