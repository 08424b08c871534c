"""Numbered, reversible ClickHouse migrations (`migrations/NNNN_name.sql`, `-- +up` / `-- +down`).

Applied versions are recorded in `extractguard_migrations`; `apply` runs what is missing in order,
`revert` undoes the newest. `{events_ttl_days}`, `{database}` and other settings are substituted at
apply time. A file marked `-- +server-only` (access management: roles and grants) is skipped on the
embedded engine, which has none, and recorded as applied there.

On a ClickHouse cluster (`cluster` set, EXTRACTGUARD_CLICKHOUSE_CLUSTER) the same migrations are
rewritten as they run (`on_cluster`): every table becomes a replicated `<name>_local` on each
shard plus a `Distributed` table under the original name (sharded by account where the table has
one, so an account's rows stay on one shard), materialized views read and write the local tables,
views and drops run `ON CLUSTER`. The SQL files stay single-node and readable; the rewrite is the
one place that knows about clusters.

>>> local, table = on_cluster("CREATE TABLE IF NOT EXISTS t (account_id String) ENGINE = ReplacingMergeTree(v)", "prod")
>>> local.split(" (")[0]
"CREATE TABLE IF NOT EXISTS t_local ON CLUSTER 'prod'"
>>> local.split("ENGINE = ")[1]
"ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/t_local', '{replica}', v)"
>>> table.split("ENGINE = ")[1]
"Distributed('prod', currentDatabase(), 't_local', cityHash64(account_id))"
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
    server_only: bool = False


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
        server_only = "-- +server-only" in text
        found.append(Migration(int(match[1]), match[2], _statements(up), _statements(down), server_only))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration numbers in {directory}")
    return found


_CREATE_TABLE = re.compile(
    r"^CREATE TABLE IF NOT EXISTS (\w+)\s*(\(.*?\))\s*ENGINE = (\w*)MergeTree(\(([^)]*)\))?(.*)$", re.S
)
_CREATE_MV = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) TO (\w+) AS(.*)$", re.S)
_CREATE_VIEW = re.compile(r"^CREATE VIEW IF NOT EXISTS (\w+) AS(.*)$", re.S)
_DROP = re.compile(r"^DROP (TABLE|VIEW) IF EXISTS (\w+)$")
_ALTER = re.compile(r"^ALTER TABLE (\w+) (.*)$", re.S)
_FROM = re.compile(r"\bFROM (\w+)")
_INSERT_SELECT = re.compile(r"^INSERT INTO \w+\s+SELECT\b", re.S)
_ACCESS = re.compile(r"^(CREATE ROLE IF NOT EXISTS \w+|DROP ROLE IF EXISTS \w+|GRANT|REVOKE)(.*)$", re.S)


def on_cluster(statement: str, cluster: str) -> list[str]:
    """One single-node DDL statement as the statements that do the same on `cluster`."""
    c = cluster.replace("'", "")
    if match := _CREATE_TABLE.match(statement):
        name, columns, flavour, _args, args, rest = match.groups()
        path = f"'/clickhouse/tables/{{shard}}/{{database}}/{name}_local', '{{replica}}'"
        engine = f"Replicated{flavour}MergeTree({path}{', ' + args if args else ''})"
        key = "cityHash64(account_id)" if re.search(r"\baccount_id\s+String", columns) else "rand()"
        return [
            f"CREATE TABLE IF NOT EXISTS {name}_local ON CLUSTER '{c}' {columns} ENGINE = {engine}{rest}",
            f"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER '{c}' AS {name}_local "
            f"ENGINE = Distributed('{c}', currentDatabase(), '{name}_local', {key})",
        ]
    if match := _CREATE_MV.match(statement):
        name, target, select = match.groups()
        return [
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name} ON CLUSTER '{c}' TO {target}_local AS"
            + _FROM.sub(lambda m: f"FROM {m[1]}_local", select)
        ]
    if match := _CREATE_VIEW.match(statement):
        return [f"CREATE VIEW IF NOT EXISTS {match[1]} ON CLUSTER '{c}' AS{match[2]}"]
    if match := _ALTER.match(statement):  # the shards' tables, then the Distributed table over them
        name, change = match.groups()
        return [f"ALTER TABLE {name}_local ON CLUSTER '{c}' {change}", f"ALTER TABLE {name} ON CLUSTER '{c}' {change}"]
    if match := _ACCESS.match(statement):  # access entities are replicated by ON CLUSTER itself
        head, rest = match.groups()
        return [f"{head} ON CLUSTER '{c}'{rest}"]
    if _INSERT_SELECT.match(statement):  # a backfill: once, through the Distributed tables
        return [statement]
    if match := _DROP.match(statement):
        kind, name = match.groups()
        drops = [f"DROP {kind} IF EXISTS {name} ON CLUSTER '{c}' SYNC"]
        return [*drops, f"DROP TABLE IF EXISTS {name}_local ON CLUSTER '{c}' SYNC"] if kind == "TABLE" else drops
    raise ValueError(f"no ON CLUSTER form for: {statement[:80]}")


def _ensure_ledger(client: Client, cluster: str | None) -> None:
    columns = "(version UInt32, name String, applied_at DateTime DEFAULT now())"
    if cluster:  # one ledger for the whole cluster, replicated to every node
        c = cluster.replace("'", "")
        client.command(
            f"CREATE TABLE IF NOT EXISTS extractguard_migrations ON CLUSTER '{c}' {columns} ENGINE = "
            "ReplicatedReplacingMergeTree('/clickhouse/extractguard/migrations', '{replica}') ORDER BY version"
        )
        return
    client.command(
        f"CREATE TABLE IF NOT EXISTS extractguard_migrations {columns} ENGINE = ReplacingMergeTree ORDER BY version"
    )


def applied(client: Client, cluster: str | None = None) -> set[int]:
    _ensure_ledger(client, cluster)
    return {row[0] for row in client.query("SELECT version FROM extractguard_migrations FINAL").result_rows}


def is_embedded_client(client: Client) -> bool:
    """Whether the client is chdb's in-process engine (no access management there)."""
    return "chdb" in type(client).__module__.lower()


def apply(client: Client, params: dict[str, object] | None = None, cluster: str | None = None) -> list[str]:
    """Apply every migration not yet applied; returns the names applied now."""
    embedded = is_embedded_client(client)
    done = applied(client, cluster)
    params = {"database": client.command("SELECT currentDatabase()"), **(params or {})}
    ran = []
    for migration in load():
        if migration.version in done:
            continue
        for statement in [] if migration.server_only and embedded else migration.up:
            sql = statement.format(**params)
            for command in on_cluster(sql, cluster) if cluster else [sql]:
                client.command(command)
        client.insert(
            "extractguard_migrations", [[migration.version, migration.name]], column_names=["version", "name"]
        )
        ran.append(f"{migration.version:04d}_{migration.name}")
    return ran


def grant_analyst_role(client: Client, grantees: list[str], cluster: str | None = None) -> list[str]:
    """Grant the analyst role (migration 0040) to existing ClickHouse users or roles."""
    on = f" ON CLUSTER '{cluster.replace(chr(39), '')}'" if cluster else ""
    done = []
    for grantee in grantees:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", grantee):
            raise ValueError(f"analyst grantee {grantee!r} is not a plain ClickHouse user name")
        client.command(f"GRANT{on} extractguard_analyst TO {grantee}")
        done.append(grantee)
    return done


def revert(client: Client, cluster: str | None = None) -> str | None:
    """Undo the newest applied migration."""
    done = applied(client, cluster)
    if not done:
        return None
    newest = next(m for m in reversed(load()) if m.version in done)
    for statement in [] if newest.server_only and is_embedded_client(client) else newest.down:
        for command in on_cluster(statement, cluster) if cluster else [statement]:
            client.command(command)
    client.command(f"DELETE FROM extractguard_migrations WHERE version = {newest.version}")
    return f"{newest.version:04d}_{newest.name}"
