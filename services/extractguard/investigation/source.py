"""Where investigation reads from: ClickHouse through the lander's SQL door while the lander owns
the embedded database, or directly (a server, or an embedded database nobody holds).

Queries return times as epoch milliseconds (`toUnixTimestamp64Milli`), so both roads give the
same values; literals are quoted by clickhouse-connect's own `format_query_value`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from clickhouse_connect.driver.binding import format_query_value

from extractguard.settings import ClickHouseSettings, lander_door
from extractguard.storage.query import query_any

Ask = Callable[[str], tuple[list[str], list[list[Any]]]]
Row = dict[str, Any]


def literal(value: Any) -> str:
    """A value as a ClickHouse literal.

    >>> literal("cmp-1' OR 1=1 --")
    "'cmp-1\\\\' OR 1=1 --'"
    """
    return str(format_query_value(value))


class Source:
    def __init__(self, ask: Ask) -> None:
        self.ask = ask

    @classmethod
    def from_settings(cls) -> Source:
        clickhouse, lander = ClickHouseSettings(), lander_door()
        return cls(lambda sql: query_any(sql, clickhouse, lander))

    def rows(self, sql: str) -> list[Row]:
        columns, rows = self.ask(sql)
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def one(self, sql: str) -> Row | None:
        found = self.rows(sql)
        return found[0] if found else None

    @cached_property
    def tables(self) -> set[str]:
        return {r["name"] for r in self.rows("SELECT name FROM system.tables WHERE database = currentDatabase()")}

    def has(self, table: str) -> bool:
        return table in self.tables

    def columns(self, table: str) -> list[str]:
        sql = f"SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {literal(table)}"
        return [r["name"] for r in self.rows(sql)]
