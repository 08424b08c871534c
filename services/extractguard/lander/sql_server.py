"""Read-only SQL over HTTP, served by the lander while it owns the embedded ClickHouse.

chdb lets one process hold a database path, so in single-machine mode every other reader (the
`extractguard sql` command, the demo report, the alerter's SQL rules) asks the lander:
`POST /sql` with the query as the body answers `{"columns": [...], "rows": [...]}`. The same
server answers `/healthz` and `/metrics`.

Who may read, and how much: the door listens on loopback unless told otherwise, and bound to any
other address it refuses to start without a bearer token (`EXTRACTGUARD_LANDER_SQL_TOKEN`, which
`query_lander` sends), compared in constant time. Queries run with ClickHouse's `readonly=1`, so
nothing can be changed through this door, not even the limits it sets with it: a query time
limit (`max_execution_time`) and a result-size limit (`max_result_rows`, `max_result_bytes`,
over them the query fails with ClickHouse's reason rather than being cut short silently).
"""

from __future__ import annotations

import datetime
import hmac
import ipaddress
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client

from extractguard.health import OpsHTTPServer, PollHealth, respond
from extractguard.settings import LanderSettings

MAX_QUERY_BYTES = 64 * 1024


class UnsafeSqlDoor(ValueError):
    """The SQL door would be reachable from elsewhere without a token."""


def is_loopback(host: str) -> bool:
    """
    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def query_settings(settings: LanderSettings) -> dict[str, Any]:
    """`readonly` last: ClickHouse then refuses any query that tries to change the others."""
    return {
        "max_execution_time": settings.sql_timeout_s,
        "max_result_rows": settings.sql_max_result_rows,
        "max_result_bytes": settings.sql_max_result_bytes,
        "result_overflow_mode": "throw",
        "readonly": 1,
    }


def _default(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def run_query(client: Client, lock: threading.Lock, sql: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    with lock:
        result = client.query(sql, settings=settings or {"readonly": 1})
    return {"columns": list(result.column_names), "rows": [list(r) for r in result.result_rows]}


class SqlServer:
    def __init__(
        self,
        client: Client,
        lock: threading.Lock,
        host: str,
        port: int,
        health: PollHealth | None = None,
        settings: LanderSettings | None = None,
    ) -> None:
        settings = settings or LanderSettings(sql_host=host, sql_port=port)
        token = settings.sql_token.get_secret_value().encode() if settings.sql_token else None
        if token is None and not is_loopback(host):
            raise UnsafeSqlDoor(
                f"the SQL door would listen on {host}, beyond loopback, without a token: set "
                "EXTRACTGUARD_LANDER_SQL_TOKEN (or EXTRACTGUARD_LANDER_SQL_HOST=127.0.0.1)"
            )
        limits = query_settings(settings)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:  # access logs would drown the JSON logs
                return

            def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                answer = respond(health, self.path)
                if answer is None:
                    self._send(404, b'{"error":"not found"}')
                else:
                    self._send(*answer)

            def do_POST(self) -> None:
                if self.path != "/sql":
                    self._send(404, b'{"error":"not found"}')
                    return
                if token is not None:
                    supplied = self.headers.get("Authorization", "").removeprefix("Bearer ").encode()
                    if not hmac.compare_digest(supplied, token):
                        self._send(401, b'{"error":"missing or wrong bearer token"}')
                        return
                length = int(self.headers.get("Content-Length", "0"))
                if length > MAX_QUERY_BYTES:
                    self._send(413, orjson.dumps({"error": f"query over {MAX_QUERY_BYTES} bytes"}))
                    return
                sql = self.rfile.read(length).decode("utf-8", "replace")
                try:
                    answer = run_query(outer.client, outer.lock, sql, limits)
                except Exception as error:
                    self._send(400, orjson.dumps({"error": str(error)}))
                    return
                self._send(200, orjson.dumps(answer, default=_default))

        self.client = client
        self.lock = lock
        self.httpd = OpsHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="sql-server", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
