"""The stack's state file: what the supervisor is doing, for `status` and `down` to read.

Imported by the CLI at start, so it stays light: no Kafka, no logging set-up.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from extractguard.paths import data_home
from extractguard.pids import pid_alive

Phase = Literal["starting", "ready", "stopping", "stopped", "failed"]


def stack_dir() -> Path:
    return data_home() / "stack"


def state_path() -> Path:
    return stack_dir() / "state.json"


@dataclass(slots=True)
class ServiceState:
    name: str
    role: str
    log: str
    endpoint: str | None
    pid: int | None = None
    state: Literal["waiting", "starting", "running", "restarting", "stopped"] = "waiting"
    restarts: int = 0
    last_exit_code: int | None = None


@dataclass(slots=True)
class StackState:
    supervisor_pid: int
    phase: Phase = "starting"
    started_at_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    error: str | None = None
    #: Whether this stack started the local broker (and so stops it).
    kafka_started: bool = False
    services: dict[str, ServiceState] = field(default_factory=dict)

    def write(self, path: Path) -> None:
        # Written whole then renamed: `status` never reads half a file.
        partial = path.with_suffix(".tmp")
        partial.write_bytes(orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2))
        partial.replace(path)


def read_state(path: Path | None = None) -> dict[str, Any] | None:
    path = path or state_path()
    try:
        state: dict[str, Any] = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    return state


def ours(pid: int | None) -> bool:
    """Whether `pid` is alive and one of our services (not a process that took a dead one's pid)."""
    if not pid_alive(pid):
        return False
    try:
        return b"extractguard" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc here: trust the pid


def left_behind(state: dict[str, Any]) -> dict[str, int]:
    """The services of a stack still running, by name (after its supervisor died, they are orphans)."""
    return {name: s["pid"] for name, s in state["services"].items() if s["pid"] and ours(s["pid"])}
