"""Start, watch and stop the services of a local run as child processes."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import orjson
import urllib3
from confluent_kafka.admin import AdminClient

from extractguard.local_kafka import KAFKA_SCRIPT
from extractguard.paths import project_root
from extractguard.settings import KafkaSettings


def ensure_local_kafka() -> bool:
    """Start the local broker unless one answers or the bootstrap servers are another cluster.

    Returns True if this process started it. A broker started here is stopped on every way out of
    the process — a normal end, an exception, Ctrl-C, SIGTERM (turned into SystemExit so `finally`
    blocks and exit handlers run) — unless `stop_local_kafka` stopped it first. Only SIGKILL can
    leave it running.
    """
    kafka = KafkaSettings()
    if not kafka.local_broker:
        return False
    script = project_root().joinpath(*KAFKA_SCRIPT)
    if subprocess.run([str(script), "status"], capture_output=True, text=True).returncode == 0:
        return False
    if _answers(kafka.port):
        return False  # a broker of another data directory (another checkout, a test's) serves the port
    # Registered before `up`: a start that fails half-way (the broker launched, never answered)
    # is stopped too.
    atexit.register(stop_local_kafka)
    exit_on_sigterm()
    subprocess.run([str(script), "up"], check=True)
    return True


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def stop_local_kafka() -> None:
    atexit.unregister(stop_local_kafka)
    subprocess.run([str(project_root().joinpath(*KAFKA_SCRIPT)), "down"], check=False)


def exit_on_sigterm() -> None:
    """Make SIGTERM end this process like Ctrl-C does: through `finally` blocks and exit handlers.

    Only where SIGTERM still has its default action (which ends the process without running
    either) and only from the main thread; a handler someone else installed is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_system_exit)


def _raise_system_exit(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


class Service:
    """One service as a child process (`extractguard NAME`, or `command`), its output in a log of its own.

    `start` may be called again after the process ended (a supervisor's restart): the log is appended to.
    """

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        log_dir: Path,
        log_name: str | None = None,
        command: list[str] | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{log_name or name}.log"
        self.env = {**os.environ, **env, "EXTRACTGUARD_LOG_FORMAT": "json"}
        self.command = command or [sys.executable, "-m", "extractguard.cli", name]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:  # the child holds its own descriptor
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.process is not None and self.alive():
            self.process.kill()
            self.process.wait()

    def stop(self, timeout_s: float = 30) -> int | None:
        if self.process is None:
            return None
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def last_error(self, lines: int = 200) -> str:
        """Why it ended, in one line from its log: the last error a structured log line names (its
        event and error), else the last line of a traceback, else the last line."""
        tail = [line for line in self.tail(lines).splitlines() if line.strip()]
        for line in reversed(tail):
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("level") in ("error", "critical"):
                detail = record.get("error") or record.get("reason") or record.get("detail")
                return f"{record.get('event')}: {detail}" if detail else str(record.get("event"))
        for line in reversed(tail):
            if not line.startswith((" ", "Traceback")) and ("Error" in line or "Exception" in line):
                return line.strip()
        return tail[-1].strip() if tail else "nothing in its log"


class ServiceDied(RuntimeError):
    """A service ended while it was needed; the message is one line: who, doing what, why, where
    its log is."""

    def __init__(self, service: Service, doing: str) -> None:
        code = None if service.process is None else service.process.poll()
        self.service_name = service.name
        self.reason = service.last_error()
        super().__init__(f"{service.name} {doing} (exit status {code}): {self.reason} (log: {service.log_path})")


def wait_http(url: str, timeout_s: float, service: Service | None = None) -> None:
    http = urllib3.PoolManager(retries=False, timeout=2)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service is not None and not service.alive():
            raise ServiceDied(service, "exited during start")
        try:
            if http.request("GET", url).status == 200:
                return
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout_s}s")


def wait_group_stable(kafka: KafkaSettings, group: str, timeout_s: float, service: Service | None = None) -> None:
    """Wait until a consumer group has members with partitions assigned."""
    admin = AdminClient(kafka.client_config())
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service is not None and not service.alive():
            raise ServiceDied(service, "exited during start")
        description = admin.describe_consumer_groups([group])[group].result()
        assigned = sum(len(m.assignment.topic_partitions) for m in description.members if m.assignment)
        if str(description.state).endswith("STABLE") and assigned:
            return
        time.sleep(0.5)
    raise TimeoutError(f"consumer group {group} did not become stable within {timeout_s}s")
