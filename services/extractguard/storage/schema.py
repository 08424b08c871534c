"""The schema reference: every column of the tables an analyst queries, with the comment its
migration gave it, read back from ClickHouse's `system.columns` (so it is what the database holds,
not what a document remembers). `extractguard sql --schema` prints it; the README's schema
reference is this module's Markdown, checked by a test to match the migrations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

#: The tables whose every column carries a comment (migration 0061), in the order they are read.
DOCUMENTED_TABLES = ("events", "alerts")

Ask = Callable[[str], tuple[list[str], list[list[Any]]]]


def columns_sql(tables: Sequence[str]) -> str:
    names = ", ".join("'" + t.replace("\\", "").replace("'", "") + "'" for t in tables)
    return (
        "SELECT table, name, type, comment FROM system.columns "
        f"WHERE database = currentDatabase() AND table IN ({names}) ORDER BY table = 'events' DESC, table, position"
    )


def markdown(rows: Sequence[Sequence[Any]]) -> str:
    """The columns as one Markdown table per table (rows: table, name, type, comment).

    >>> print(markdown([("alerts", "rule", "LowCardinality(String)", "the rule | that raised it")]))
    #### `alerts`
    <BLANKLINE>
    | column | type | what it holds |
    |---|---|---|
    | `rule` | `LowCardinality(String)` | the rule \\| that raised it |
    """
    out: list[str] = []
    current = None
    for table, name, kind, comment in rows:
        if table != current:
            out += ([""] if out else []) + [f"#### `{table}`", "", "| column | type | what it holds |", "|---|---|---|"]
            current = table
        out.append(f"| `{name}` | `{kind}` | {str(comment).replace('|', chr(92) + '|')} |")
    return "\n".join(out)
