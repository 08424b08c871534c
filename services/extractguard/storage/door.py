"""Which process owns an embedded database, announced before it opens it, so a reader never races it.

chdb lets one process hold a path. The lander writes `run/lander.door` in the data directory (its
pid, the DSN and where its SQL door listens) *before* it opens the database; a reader that finds
the announcement for its DSN from a live process goes through the door, waiting for it to open,
instead of opening the database in the moment the lander starts (which would make the lander fail,
and print chdb's 'Cannot lock file' on the reader's terminal).

>>> import tempfile, pathlib, os
>>> home = pathlib.Path(tempfile.mkdtemp())
>>> announce(home, "chdb:///data/ch", "127.0.0.1", 8481)
>>> announced(home, "chdb:///data/ch") == ("127.0.0.1", 8481), announced(home, "chdb:///other")
(True, None)
>>> withdraw(home); announced(home, "chdb:///data/ch") is None
True
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from extractguard.pids import pid_alive

_FILE = ("run", "lander.door")


def _path(home: Path) -> Path:
    return home.joinpath(*_FILE)


def announce(home: Path, dsn: str, host: str, port: int) -> None:
    path = _path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_bytes(orjson.dumps({"pid": os.getpid(), "dsn": dsn, "host": host, "port": port}))
    partial.replace(path)


def withdraw(home: Path) -> None:
    path = _path(home)
    try:
        if orjson.loads(path.read_bytes()).get("pid") == os.getpid():
            path.unlink()
    except (FileNotFoundError, orjson.JSONDecodeError):
        pass


def announced(home: Path, dsn: str) -> tuple[str, int] | None:
    """(host, port) of the door of the live process that owns `dsn`, if one announced it."""
    try:
        door = orjson.loads(_path(home).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    if door.get("dsn") != dsn or not pid_alive(int(door.get("pid", 0))):
        return None
    return str(door["host"]), int(door["port"])
