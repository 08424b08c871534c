"""The analyst role: SELECT on ExtractGuard's database only, created on a ClickHouse server (and
on every node of a cluster), skipped on the embedded engine, which has no access management.

There is no ClickHouse server in the test environment (Debian's clickhouse-server predates roles),
so the server side is checked as the statements it runs; the chdb side runs in test_storage.
"""

from __future__ import annotations

from typing import Any

import pytest

from extractguard.storage import migrate


class RecordingClient:
    """Stands in for a server client: records the DDL it is sent."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def command(self, sql: str) -> Any:
        self.commands.append(sql)
        return "extractguard" if sql == "SELECT currentDatabase()" else None


def _analyst() -> migrate.Migration:
    return next(m for m in migrate.load() if m.name == "analyst_role")


def test_the_analyst_role_can_only_select_from_our_database() -> None:
    analyst = _analyst()
    assert analyst.server_only
    up = " ".join(analyst.up)
    assert "GRANT SELECT ON {database}.* TO extractguard_analyst" in up
    assert not any(word in up for word in ("INSERT", "ALTER", "DROP", "CREATE USER", "ALL", "*.*"))
    assert analyst.down == ["DROP ROLE IF EXISTS extractguard_analyst"]


def test_on_a_cluster_the_role_and_its_grant_go_to_every_node() -> None:
    statements = [s.format(database="extractguard") for s in _analyst().up]
    rewritten = [c for s in statements for c in migrate.on_cluster(s, "prod")]
    assert rewritten == [
        "CREATE ROLE IF NOT EXISTS extractguard_analyst ON CLUSTER 'prod'",
        "GRANT ON CLUSTER 'prod' SELECT ON extractguard.* TO extractguard_analyst",
    ]


def test_grantees_get_the_role_and_a_hostile_name_is_refused() -> None:
    client = RecordingClient()
    assert migrate.grant_analyst_role(client, ["ana", "bo_2"]) == ["ana", "bo_2"]  # type: ignore[arg-type]
    assert client.commands == ["GRANT extractguard_analyst TO ana", "GRANT extractguard_analyst TO bo_2"]
    with pytest.raises(ValueError, match="not a plain ClickHouse user name"):
        migrate.grant_analyst_role(client, ["ana; DROP TABLE events"])  # type: ignore[arg-type]
