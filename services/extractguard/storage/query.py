"""Run a read-only query wherever the database is: through the lander's SQL door when it owns the
embedded database, directly otherwise (a server DSN, or an embedded database nobody holds)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson

from extractguard.paths import data_home
from extractguard.settings import ClickHouseSettings, LanderSettings
from extractguard.storage import door
from extractguard.storage.client import DatabaseLocked, connect, is_embedded


class QueryError(RuntimeError):
    pass


def query_lander(sql: str, lander: LanderSettings, timeout_s: float = 60) -> tuple[list[str], list[list[Any]]]:
    headers = {"Authorization": f"Bearer {lander.sql_token.get_secret_value()}"} if lander.sql_token else {}
    host = "127.0.0.1" if lander.sql_host in ("0.0.0.0", "::") else lander.sql_host  # bound everywhere: ask here
    request = urllib.request.Request(f"http://{host}:{lander.sql_port}/sql", data=sql.encode(), method="POST",
                                     headers=headers)  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer = orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        raise QueryError(orjson.loads(error.read()).get("error", str(error))) from None
    return answer["columns"], answer["rows"]


@contextlib.contextmanager
def _quiet_engine() -> Iterator[io.BytesIO]:
    """Hold what the embedded engine writes to the process's stderr while a reader opens it.

    chdb writes "Cannot lock file … Another server instance in same directory is already running"
    to file descriptor 2 itself when a lander takes the database between a reader's look and its
    open (a lander restarting); the reader then asks the lander's door, and that line is noise.
    What was written is kept in the yielded buffer, for the caller to show when the open fails
    for another reason.
    """
    said = io.BytesIO()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield said
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            said.write(held.read())


#: How long a reader waits for an announced lander's door to open (the lander starting).
DOOR_WAIT_S = 60.0


def query_any(sql: str, clickhouse: ClickHouseSettings, lander: LanderSettings) -> tuple[list[str], list[list[Any]]]:
    # A lander that announced this database (it owns it, or is about to) is asked through its door,
    # however early in its start: opening the database then would take it from the lander.
    if is_embedded(clickhouse.dsn):
        owner = door.announced(data_home(), clickhouse.dsn)
        if owner is not None:
            return _through_door(sql, lander.model_copy(update={"sql_host": owner[0], "sql_port": owner[1]}))
    # Otherwise open the database: asking whichever lander listens on the port could answer from
    # another database. Only when the embedded database is held do we go through its owner.
    try:
        with _quiet_engine() as said:
            client = connect(clickhouse.dsn)
    except DatabaseLocked as error:
        if not is_embedded(clickhouse.dsn):
            raise QueryError(str(error)) from None
        # A lander (re)starting took the database between our look and our open: ask its door.
        owner = door.announced(data_home(), clickhouse.dsn)
        if owner is not None:
            return _through_door(sql, lander.model_copy(update={"sql_host": owner[0], "sql_port": owner[1]}))
        try:
            return query_lander(sql, lander)
        except (urllib.error.URLError, ConnectionError):
            raise QueryError(f"{error}; and no lander answers on {lander.sql_host}:{lander.sql_port}") from None
    except Exception:
        sys.stderr.buffer.write(said.getvalue())  # what the engine said about a failure of its own
        raise
    try:
        result = client.query(sql, settings={"readonly": 1})
    except Exception as error:
        raise QueryError(str(error)) from None
    finally:
        client.close()
    return list(result.column_names), [list(r) for r in result.result_rows]


def _through_door(sql: str, lander: LanderSettings) -> tuple[list[str], list[list[Any]]]:
    deadline = time.monotonic() + DOOR_WAIT_S
    while True:
        try:
            return query_lander(sql, lander)
        except (urllib.error.URLError, ConnectionError) as error:
            if isinstance(error, urllib.error.HTTPError) or time.monotonic() > deadline:
                raise QueryError(f"the lander's SQL door at {lander.sql_host}:{lander.sql_port}: {error}") from None
            time.sleep(0.3)
