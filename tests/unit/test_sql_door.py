"""The lander's SQL door: who may read, and how much.

Loopback unless told otherwise; bound anywhere else it will not start without a token, and then
asks for it; read-only even for the limits it sets; a query time limit; a result-size limit.
"""

from __future__ import annotations

import os
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from pydantic import SecretStr

from extractguard.lander.sql_server import SqlServer, UnsafeSqlDoor
from extractguard.settings import LanderSettings
from extractguard.storage.query import QueryError, query_lander
from tests.conftest import embedded_client

pytestmark = pytest.mark.clickhouse
TOKEN = "sql-door-token-0123456789abcdef"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def client(embedded_path: Path) -> Iterator[Client]:
    handle = embedded_client(embedded_path)
    handle.command("CREATE TABLE IF NOT EXISTS door_numbers (n UInt64) ENGINE = MergeTree ORDER BY n")
    handle.command("TRUNCATE TABLE door_numbers")
    handle.command("INSERT INTO door_numbers SELECT number FROM numbers(1000)")
    yield handle


def _serve(client: Client, settings: LanderSettings) -> SqlServer:
    server = SqlServer(client, threading.Lock(), settings.sql_host, settings.sql_port, None, settings)
    server.start()
    return server


def test_beyond_loopback_the_door_will_not_open_without_a_token(client: Client) -> None:
    with pytest.raises(UnsafeSqlDoor, match="EXTRACTGUARD_LANDER_SQL_TOKEN"):
        SqlServer(client, threading.Lock(), "0.0.0.0", _port(), None, LanderSettings(sql_host="0.0.0.0"))
    assert LanderSettings().sql_host == "127.0.0.1", "loopback by default"


def test_a_token_is_asked_for_and_sent_by_query_lander(client: Client) -> None:
    settings = LanderSettings(sql_host="0.0.0.0", sql_port=_port(), sql_token=SecretStr(TOKEN))
    server = _serve(client, settings)
    try:
        assert query_lander("SELECT count() FROM door_numbers", settings)[1] == [[1000]]
        request = urllib.request.Request(f"http://127.0.0.1:{settings.sql_port}/sql", data=b"SELECT 1", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401
        wrong = LanderSettings(sql_host="127.0.0.1", sql_port=settings.sql_port, sql_token=SecretStr("wrong"))
        with pytest.raises(QueryError, match="bearer token"):
            query_lander("SELECT 1", wrong)
    finally:
        server.stop()


def test_read_only_even_for_its_own_limits_with_a_time_and_a_size_limit(client: Client) -> None:
    settings = LanderSettings(sql_port=_port(), sql_timeout_s=1, sql_max_result_rows=100)
    server = _serve(client, settings)
    try:
        for sql, reason in [
            ("INSERT INTO door_numbers VALUES (1)", "readonly"),
            ("DROP TABLE door_numbers", "readonly"),
            ("SELECT n FROM door_numbers SETTINGS max_result_rows = 0", "readonly"),
            ("SELECT n FROM door_numbers", "limit for result exceeded"),
            ("SELECT sum(cityHash64(number)) FROM numbers(20000000000)", "timeout|time limit|estimated"),
        ]:
            with pytest.raises(QueryError) as refused:
                query_lander(sql, settings)
            assert any(word in str(refused.value).lower() for word in reason.split("|")), (sql, refused.value)
        assert query_lander("SELECT count() FROM door_numbers", settings)[1] == [[1000]]
    finally:
        server.stop()


def test_a_reader_holds_what_the_engine_writes_to_stderr_while_it_opens(capfd: pytest.CaptureFixture[str]) -> None:
    from extractguard.storage.query import _quiet_engine

    with _quiet_engine() as said:
        os.write(2, b"Cannot lock file .../status. Another server instance in same directory is already running\n")
    os.write(2, b"after\n")
    assert said.getvalue().startswith(b"Cannot lock file") and capfd.readouterr().err == "after\n"
