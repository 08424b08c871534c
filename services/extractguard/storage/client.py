"""Open ClickHouse through clickhouse-connect, embedded or remote, from one DSN.

`chdb:///path` runs the ClickHouse engine in this process, persistent at `path`; only one process
may hold a path (ClickHouse locks it), which is why, in single-machine mode, the lander owns the
database and serves read-only SQL to everyone else (see `lander/sql_server.py`).
`http(s)://user:password@host:port/database` talks to a server or cluster with the same SQL.
"""

from __future__ import annotations

from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client


class DatabaseLocked(RuntimeError):
    """Another process owns this embedded database."""


def is_embedded(dsn: str) -> bool:
    return dsn.startswith("chdb:")


def embedded_path(dsn: str) -> Path:
    return Path(dsn.removeprefix("chdb://"))


def connect(dsn: str) -> Client:
    if is_embedded(dsn):
        embedded_path(dsn).mkdir(parents=True, exist_ok=True)
    try:
        return clickhouse_connect.get_client(dsn=dsn)
    except Exception as error:
        if "Cannot lock file" in str(error) or "already running" in str(error):
            raise DatabaseLocked(
                f"the embedded ClickHouse at {embedded_path(dsn)} is open in another process "
                "(the lander owns it while the pipeline runs; query it through `extractguard sql`)"
            ) from error
        raise
