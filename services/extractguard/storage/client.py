"""Open ClickHouse through clickhouse-connect, embedded or remote, from one DSN.

`chdb:///path` runs the ClickHouse engine in this process, persistent at `path`; only one process
may hold a path (ClickHouse locks it), which is why, in single-machine mode, the lander owns the
database and serves read-only SQL to everyone else (see `lander/sql_server.py`).
`http(s)://user:password@host:port/database` talks to a server or cluster with the same SQL.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client


class DatabaseLocked(RuntimeError):
    """Another process owns this embedded database."""


def is_embedded(dsn: str) -> bool:
    return dsn.startswith("chdb:")


def embedded_path(dsn: str) -> Path:
    return Path(dsn.removeprefix("chdb://"))


def _owner(path: Path) -> str | None:
    """The owner's description if another process holds the database's lock, else None.

    ClickHouse holds an exclusive flock on `<path>/status` (which also names the owner's PID);
    chdb's own error for this case does not always say so.
    """
    status = path / "status"
    if not status.exists():
        return None
    with status.open("rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = status.read_text(errors="replace")
            pid = next((line.split()[-1] for line in text.splitlines() if line.startswith("PID")), "?")
            return f"process {pid}"
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def _locked(dsn: str, owner: str) -> DatabaseLocked:
    return DatabaseLocked(
        f"the embedded ClickHouse at {embedded_path(dsn)} is open in {owner} "
        "(the lander owns it while the pipeline runs; query it through `extractguard sql`)"
    )


def connect(dsn: str) -> Client:
    if is_embedded(dsn):
        embedded_path(dsn).mkdir(parents=True, exist_ok=True)
        # Asked first, not after chdb fails: chdb writes "Cannot lock file ... Another server
        # instance in same directory is already running" to stderr itself, which every reader
        # beside a running lander (`extractguard sql`) would print. Our own lock (this process
        # opened it already) is no obstacle.
        owner = _owner(embedded_path(dsn))
        if owner is not None and owner != f"process {os.getpid()}":
            raise _locked(dsn, owner)
    try:
        return clickhouse_connect.get_client(dsn=dsn)
    except Exception as error:
        owner = _owner(embedded_path(dsn)) if is_embedded(dsn) else None
        if owner is not None:
            raise _locked(dsn, owner) from error
        raise
