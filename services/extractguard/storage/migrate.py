"""Numbered, reversible ClickHouse migrations (`migrations/NNNN_name.sql`, `-- +up` / `-- +down`).

Applied versions are recorded in `extractguard_migrations`; `apply` runs what is missing in order,
`revert` undoes the newest. `{events_ttl_days}` and other settings are substituted at apply time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_(\w+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    up: list[str]
    down: list[str]


def _statements(block: str) -> list[str]:
    lines = [line for line in block.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def load(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name} is not named NNNN_name.sql")
        text = path.read_text()
        if "-- +up" not in text or "-- +down" not in text:
            raise ValueError(f"{path.name} needs both '-- +up' and '-- +down' sections")
        up, down = text.split("-- +up", 1)[1].split("-- +down", 1)
        found.append(Migration(int(match[1]), match[2], _statements(up), _statements(down)))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration numbers in {directory}")
    return found


def _ensure_ledger(client: Client) -> None:
    client.command(
        "CREATE TABLE IF NOT EXISTS extractguard_migrations "
        "(version UInt32, name String, applied_at DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )


def applied(client: Client) -> set[int]:
    _ensure_ledger(client)
    return {row[0] for row in client.query("SELECT version FROM extractguard_migrations FINAL").result_rows}


def apply(client: Client, params: dict[str, object] | None = None) -> list[str]:
    """Apply every migration not yet applied; returns the names applied now."""
    done = applied(client)
    ran = []
    for migration in load():
        if migration.version in done:
            continue
        for statement in migration.up:
            client.command(statement.format(**(params or {})))
        client.insert(
            "extractguard_migrations", [[migration.version, migration.name]], column_names=["version", "name"]
        )
        ran.append(f"{migration.version:04d}_{migration.name}")
    return ran


def revert(client: Client) -> str | None:
    """Undo the newest applied migration."""
    done = applied(client)
    if not done:
        return None
    newest = next(m for m in reversed(load()) if m.version in done)
    for statement in newest.down:
        client.command(statement)
    client.command(f"DELETE FROM extractguard_migrations WHERE version = {newest.version}")
    return f"{newest.version:04d}_{newest.name}"
