"""Run a read-only query wherever the database is: through the lander's SQL door when it owns the
embedded database, directly otherwise (a server DSN, or an embedded database nobody holds)."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import orjson

from extractguard.settings import ClickHouseSettings, LanderSettings
from extractguard.storage.client import DatabaseLocked, connect, is_embedded


class QueryError(RuntimeError):
    pass


def query_lander(sql: str, lander: LanderSettings, timeout_s: float = 60) -> tuple[list[str], list[list[Any]]]:
    request = urllib.request.Request(
        f"http://{lander.sql_host}:{lander.sql_port}/sql", data=sql.encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer = orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        raise QueryError(orjson.loads(error.read()).get("error", str(error))) from None
    return answer["columns"], answer["rows"]


def query_any(sql: str, clickhouse: ClickHouseSettings, lander: LanderSettings) -> tuple[list[str], list[list[Any]]]:
    if is_embedded(clickhouse.dsn):
        try:
            return query_lander(sql, lander)
        except (urllib.error.URLError, ConnectionError):
            pass  # no lander running: open the database ourselves
    try:
        client = connect(clickhouse.dsn)
    except DatabaseLocked as error:
        raise QueryError(str(error)) from None
    try:
        result = client.query(sql, settings={"readonly": 1})
    except Exception as error:
        raise QueryError(str(error)) from None
    finally:
        client.close()
    return list(result.column_names), [list(r) for r in result.result_rows]
