"""Liveness of a consumer loop, for the Kubernetes probes: a loop that stops polling is dead.

Each consumer loop calls `beat()` on every poll (an idle poll counts: no traffic is not a fault).
`/healthz` answers 503 once no beat came for `max_silence_s`, so the kubelet restarts a worker whose
poll loop is stuck (a hung insert, a deadlock); `/readyz` answers 503 until the first beat. The
same beats feed the `extractguard_consumer_last_poll_timestamp_seconds` gauge.

>>> health = PollHealth("alerter", max_silence_s=30)
>>> health.status(now=100.0)
(503, 'no poll yet')
>>> health.beat(now=100.0); health.status(now=120.0)
(200, 'ok')
>>> health.status(now=131.0)
(503, 'no poll for 31 s')
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, Protocol

import orjson
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from extractguard import metrics


class PollHealth:
    def __init__(self, service: str, max_silence_s: float = 120.0) -> None:
        self.service = service
        self.max_silence_s = max_silence_s
        self.last_beat: float | None = None
        self._gauge = metrics.LAST_POLL.labels(service)

    def beat(self, now: float | None = None) -> None:
        self.last_beat = time.time() if now is None else now
        self._gauge.set(self.last_beat)

    def status(self, now: float | None = None) -> tuple[int, str]:
        if self.last_beat is None:
            return 503, "no poll yet"
        silence = (time.time() if now is None else now) - self.last_beat
        if silence > self.max_silence_s:
            return 503, f"no poll for {silence:.0f} s"
        return 200, "ok"

    def ready(self) -> tuple[int, str]:
        return (503, "no poll yet") if self.last_beat is None else (200, "ok")


def respond(health: PollHealth | None, path: str) -> tuple[int, bytes, str] | None:
    """The answer to a GET on one of the operational paths, or None for any other path."""
    if path == "/metrics":
        return 200, generate_latest(), CONTENT_TYPE_LATEST
    if path in ("/healthz", "/readyz"):
        if health is None:
            return 200, b'{"status":"ok"}', "application/json"
        status, detail = health.status() if path == "/healthz" else health.ready()
        return status, orjson.dumps({"status": detail}), "application/json"
    return None


class OpsHTTPServer(ThreadingHTTPServer):
    """The HTTP server of the ops pages and the lander's SQL door. A client that hangs up before its
    answer is written (a readiness probe that gave up on a busy service, an `extractguard sql`
    stopped with Ctrl-C) is no fault of the service: one warning line, where the standard library
    would print a traceback on stderr. Anything else keeps its traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):  # BrokenPipeError, ConnectionResetError, ...
            structlog.get_logger().warning("client_hung_up", error=type(error).__name__)
            return
        super().handle_error(request, client_address)


class HealthServer:
    """`/healthz`, `/readyz` and `/metrics` on a port of their own, in a daemon thread."""

    def __init__(self, health: PollHealth, host: str, port: int) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:  # probe logs would drown the JSON logs
                return

            def do_GET(self) -> None:
                status, body, content_type = respond(health, self.path) or (404, b'{"error":"not found"}', "x")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = OpsHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="health", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class ConsumerLoop(Protocol):
    """A service's poll loop: `run` until `stop` is called (from a signal handler)."""

    def run(self) -> None: ...

    def stop(self) -> None: ...


def run_with_probes(loop: ConsumerLoop, health: PollHealth, host: str, port: int) -> None:
    """Run `loop` with its probes served beside it; SIGTERM and SIGINT ask it to stop (it finishes
    the batch in hand and commits), and the probes stop with it."""

    def stop(_signum: int, _frame: FrameType | None) -> None:
        loop.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server = HealthServer(health, host, port)
    server.start()
    try:
        loop.run()
    finally:
        server.stop()
