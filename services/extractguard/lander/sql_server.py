"""Read-only SQL over HTTP, served by the lander while it owns the embedded ClickHouse.

chdb lets one process hold a database path, so in single-machine mode every other reader (the
`extractguard sql` command, the demo report, the alerter's SQL rules) asks the lander:
`POST /sql` with the query as the body answers `{"columns": [...], "rows": [...]}`. Queries run
with ClickHouse's `readonly=1`, so nothing can be changed through this door. The same server
answers `/healthz` and `/metrics`.
"""

from __future__ import annotations

import datetime
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client

from extractguard.health import PollHealth, respond

MAX_QUERY_BYTES = 64 * 1024


def _default(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def run_query(client: Client, lock: threading.Lock, sql: str) -> dict[str, Any]:
    with lock:
        result = client.query(sql, settings={"readonly": 1})
    return {"columns": list(result.column_names), "rows": [list(r) for r in result.result_rows]}


class SqlServer:
    def __init__(
        self, client: Client, lock: threading.Lock, host: str, port: int, health: PollHealth | None = None
    ) -> None:
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
                length = int(self.headers.get("Content-Length", "0"))
                if length > MAX_QUERY_BYTES:
                    self._send(413, orjson.dumps({"error": f"query over {MAX_QUERY_BYTES} bytes"}))
                    return
                sql = self.rfile.read(length).decode("utf-8", "replace")
                try:
                    answer = run_query(outer.client, outer.lock, sql)
                except Exception as error:
                    self._send(400, orjson.dumps({"error": str(error)}))
                    return
                self._send(200, orjson.dumps(answer, default=_default))

        self.client = client
        self.lock = lock
        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="sql-server", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
