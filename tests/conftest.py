"""Test guards: a test must carry the `kafka` or `clickhouse` marker to reach those systems.

Without the marker, constructing a Kafka client or opening ClickHouse fails the test at once, so
fast tests stay fast and a hidden dependency on a running broker cannot creep in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import confluent_kafka
import confluent_kafka.admin
import pytest
from clickhouse_connect.driver.client import Client

from extractguard.paths import schemas_dir
from extractguard.storage import migrate
from extractguard.storage.client import connect


def _forbidden(system: str, marker: str) -> Any:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError(f"this test touches {system} without @pytest.mark.{marker}")

    return refuse


@pytest.fixture(autouse=True)
def _guard_external_systems(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    markers = {m.name for m in request.node.iter_markers()}
    if "kafka" not in markers:
        for module in (
            "extractguard.gateway.publisher",
            "extractguard.lander.consumer",
            "extractguard.alerting.service",
            "extractguard.enforcement.service",
            "extractguard.contracts.provision",
        ):
            for name in ("Producer", "Consumer", "AdminClient"):
                with contextlib.suppress(AttributeError, ModuleNotFoundError):
                    monkeypatch.setattr(f"{module}.{name}", _forbidden("Kafka", "kafka"))
        monkeypatch.setattr(confluent_kafka, "Producer", _forbidden("Kafka", "kafka"))
        monkeypatch.setattr(confluent_kafka, "Consumer", _forbidden("Kafka", "kafka"))
        monkeypatch.setattr(confluent_kafka.admin, "AdminClient", _forbidden("Kafka", "kafka"))
    if "clickhouse" not in markers:
        monkeypatch.setattr("clickhouse_connect.get_client", _forbidden("ClickHouse", "clickhouse"))
    yield


@pytest.fixture
def golden() -> dict[str, list[Path]]:
    examples = schemas_dir() / "examples"
    return {d.name: sorted(d.glob("*.json")) for d in examples.iterdir() if d.is_dir()}


@pytest.fixture(scope="session")
def embedded_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one embedded ClickHouse path of this test process (chdb runs one path per process)."""
    return tmp_path_factory.mktemp("clickhouse") / "db"


def embedded_client(embedded_path: Path) -> Client:
    """The embedded ClickHouse at `embedded_path`, opened from a test's fixture."""
    with pytest.MonkeyPatch.context() as patch:
        patch.undo()  # the marker allows ClickHouse; the session fixture outlives the guard
        return connect(f"chdb://{embedded_path}")


def migrated_client(embedded_path: Path, events_ttl_days: int) -> Client:
    """The embedded ClickHouse with every migration reverted and applied again: empty tables, so
    nothing an earlier test landed in this process's one database is seen."""
    handle = embedded_client(embedded_path)
    while migrate.revert(handle):
        pass
    migrate.apply(handle, {"events_ttl_days": events_ttl_days})
    return handle


def read_only_query(handle: Client) -> Callable[..., tuple[list[str], list[list[Any]]]]:
    """`handle` asked read-only, answering (columns, rows) as the investigation commands and
    `extractguard sql` expect of their query function (any settings they pass are not needed)."""

    def ask(sql: str, *_settings: Any) -> tuple[list[str], list[list[Any]]]:
        result = handle.query(sql, settings={"readonly": 1})
        return list(result.column_names), [list(r) for r in result.result_rows]

    return ask
