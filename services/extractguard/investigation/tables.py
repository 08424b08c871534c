"""Rows as a plain-text table for people (the `--json` flag gives them to scripts instead).

>>> print(render([{"id": "c1", "members": 3}, {"id": "c22", "members": 12}]))
id   members
---  -------
c1   3
c22  12
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

MAX_CELL = 60


def cell(value: Any, column: str = "") -> str:
    if value is None:
        return "-"
    if column.endswith("_ms") and isinstance(value, int) and value > 10**11:
        return datetime.datetime.fromtimestamp(value / 1000, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    text = ", ".join(cell(v) for v in value) if isinstance(value, list | tuple) else str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def render(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "(none)"
    names = list(columns or rows[0].keys())
    cells = [names] + [[cell(row.get(n), n) for n in names] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(names))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
