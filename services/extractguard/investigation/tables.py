"""Rows as a plain-text table for people (the `--json` flag gives them to scripts instead).

A column of epoch milliseconds (`*_ms`) is shown as a UTC date under its name without the unit
(`first_seen_ms` -> `first_seen`), so the header never names a unit the cell does not hold; a
table cut short says how many rows it left out.

>>> print(render([{"id": "c1", "output_tokens": 3}, {"id": "c22", "output_tokens": 76_500_000}]))
id   output_tokens
---  -------------
c1   3
c22  76,500,000
>>> print(render([{"seen_ms": 1764590400000}, {"seen_ms": 1764590460000}], limit=1))
seen (UTC)
-------------------
2025-12-01 12:00:00
(1 more row not shown of 2: --json or SQL for all)
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

MAX_CELL = 60


def is_time(column: str, value: Any = None) -> bool:
    """Whether a column holds epoch milliseconds (shown as a date)."""
    return column.endswith("_ms") and (value is None or (isinstance(value, int) and value > 10**11))


def header(column: str) -> str:
    return f"{column[:-3]} (UTC)" if is_time(column) else column


def cell(value: Any, column: str = "") -> str:
    if value is None:
        return "-"
    if is_time(column, value):
        return datetime.datetime.fromtimestamp(value / 1000, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    text = ", ".join(cell(v) for v in value) if isinstance(value, list | tuple) else str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def cut_note(shown: int, total: int) -> str:
    """What a cut table says under itself ('' when nothing was cut)."""
    left = total - shown
    return "" if left <= 0 else f"({left:,} more row{'s' * (left > 1)} not shown of {total:,}: --json or SQL for all)"


def render(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
    limit: int | None = None,
    total: int | None = None,
) -> str:
    """The rows as a table; at most `limit` of them, saying how many of `total` (default: all the
    rows given) were left out."""
    if not rows:
        return "(none)"
    shown = rows if limit is None else rows[:limit]
    names = list(columns or rows[0].keys())
    cells = [[header(n) for n in names]] + [[cell(row.get(n), n) for n in names] for row in shown]
    widths = [max(len(r[i]) for r in cells) for i in range(len(names))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    note = cut_note(len(shown), len(rows) if total is None else total)
    return "\n".join(lines + ([note] if note else []))
