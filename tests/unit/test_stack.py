"""`extractguard up`: the services in their order, one port block, and a supervisor that restarts
what dies, with a back-off, and leaves nothing running when it stops."""

from __future__ import annotations

import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import orjson
import pytest

from extractguard.health import OpsHTTPServer
from extractguard.settings import LanderSettings, StackSettings
from extractguard.stack.services import StackService, stack_services
from extractguard.stack.state import pid_alive
from extractguard.stack.supervisor import Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
QUITTER = [sys.executable, "-c", "raise SystemExit(3)"]


def test_the_lander_starts_first_and_the_alerter_last_and_every_reader_finds_the_door() -> None:
    services = stack_services(StackSettings(lander_sql_port=19181, ingest_port=19180))
    names = [s.name for s in services]
    assert names[0] == "lander" and names[-1] == "alerter"
    assert set(names) == {"lander", "ingest", "detect", "campaigns", "enforcer", "alerter"}
    assert all(s.env["EXTRACTGUARD_LANDER_SQL_PORT"] == "19181" for s in services)
    by_name = {s.name: s for s in services}
    assert by_name["lander"].ready_url == "http://127.0.0.1:19181/healthz"
    assert by_name["ingest"].env["EXTRACTGUARD_INGEST_PORT"] == "19180"
    assert by_name["ingest"].ready_url == "http://127.0.0.1:19180/healthz"


def test_unset_ports_leave_each_service_its_own_setting() -> None:
    services = stack_services(StackSettings(services=["ingest", "alerter"]))
    assert [s.name for s in services] == ["ingest", "alerter"]
    assert all("EXTRACTGUARD_INGEST_PORT" not in s.env for s in services)


def test_each_group_member_restarts_under_one_static_instance_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXTRACTGUARD_LANDER_GROUP_INSTANCE_ID", raising=False)
    monkeypatch.setenv("EXTRACTGUARD_ALERTER_GROUP_INSTANCE_ID", "alerter-of-ana")
    by_name = {s.name: s.env for s in stack_services(StackSettings())}
    ids = {name: env.get(f"EXTRACTGUARD_{name.upper()}_GROUP_INSTANCE_ID") for name, env in by_name.items()}
    assert ids["lander"] and ids["enforcer"] and ids["lander"] != ids["enforcer"]
    assert ids["alerter"] == "alerter-of-ana"  # the operator's own is kept
    assert ids == {**ids, "ingest": None, "detect": None, "campaigns": None}
    assert stack_services(StackSettings())[0].env == by_name["lander"]  # the same id on every start


def test_a_static_member_says_so_to_librdkafka_and_a_dynamic_one_does_not() -> None:
    assert LanderSettings(group_id="g").group_config() == {"group.id": "g"}
    static = LanderSettings(group_id="g", group_instance_id="host-lander").group_config()
    assert static == {"group.id": "g", "group.instance.id": "host-lander"}


def _fake(tmp_path: Path, command: list[str]) -> Supervisor:
    specs = [StackService(name, "a test's sleeper", {}, None, None) for name in ("detect", "campaigns")]
    stack = StackSettings(restart_backoff_s=0.2, max_restart_backoff_s=0.8, stable_after_s=30)
    return Supervisor(stack, tmp_path, specs, command_of=lambda _spec: command)


def test_a_killed_service_is_restarted_and_stop_leaves_nothing(tmp_path: Path) -> None:
    supervisor = _fake(tmp_path, SLEEPER)
    supervisor.start()
    try:
        detect = supervisor.children[0]
        first_pid = detect.service.pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (detect.state.restarts and detect.service.alive()):
            supervisor.watch_once()
            time.sleep(0.05)
        assert detect.state.restarts == 1 and detect.service.alive() and detect.service.pid != first_pid
        assert detect.state.last_exit_code == -signal.SIGKILL
        state = orjson.loads((tmp_path / "state.json").read_bytes())
        assert state["phase"] == "ready" and state["services"]["detect"]["pid"] == detect.service.pid
    finally:
        supervisor.stop()
    pids = [c.service.pid for c in supervisor.children]
    assert not any(pid_alive(pid) and c.service.alive() for pid, c in zip(pids, supervisor.children, strict=True))
    state = orjson.loads((tmp_path / "state.json").read_bytes())
    assert {s["state"] for s in state["services"].values()} == {"stopped"}


def test_a_crashing_service_waits_longer_each_time_up_to_the_cap(tmp_path: Path) -> None:
    supervisor = _fake(tmp_path, QUITTER)
    child = supervisor.children[0]
    supervisor._start(child)
    assert child.service.process is not None
    child.service.process.wait()
    waits = []
    now = 1000.0
    for _ in range(5):
        supervisor.watch_once(now)  # notices the exit, schedules the restart
        assert child.restart_at is not None
        waits.append(round(child.restart_at - now, 3))
        now = child.restart_at
        supervisor.watch_once(now)  # restarts it; it quits at once again
        child.service.process.wait()
    assert waits == [0.2, 0.4, 0.8, 0.8, 0.8]
    assert child.state.restarts == 5 and child.state.last_exit_code == 3
    supervisor.stop()


def test_a_service_that_dies_is_reported_in_one_line_with_the_reason_from_its_log(tmp_path: Path) -> None:

    from extractguard.demo.processes import Service, ServiceDied, wait_http

    line = '{"event": "too_many_invalid", "error": "1000 of the last 1000 messages were invalid", "level": "critical"}'
    crash = f"import sys; print('starting'); print({line!r}); print('shutting down'); sys.exit(3)"
    service = Service("detect", {}, tmp_path, command=[sys.executable, "-c", crash])
    service.start()
    assert service.process is not None
    service.process.wait()
    with pytest.raises(ServiceDied) as died:
        wait_http("http://127.0.0.1:9/healthz", 5, service)
    message = str(died.value)
    assert "\n" not in message
    assert message.startswith("detect exited during start (exit status 3): too_many_invalid: 1000 of the last 1000")
    other = Service("ingest", {}, tmp_path, command=[sys.executable, "-c", "raise ValueError('bad port')"])
    other.start()
    assert other.process is not None
    other.process.wait()
    assert other.last_error() == "ValueError: bad port"


def test_down_stops_the_services_a_killed_supervisor_left_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    from click.testing import CliRunner

    from extractguard.stack import commands
    from extractguard.stack.state import ServiceState, StackState

    monkeypatch.setenv("EXTRACTGUARD_HOME", str(tmp_path))
    (tmp_path / "stack").mkdir()
    orphans = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)  # extractguard"])
               for _ in range(2)]  # fmt: skip
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state = StackState(supervisor_pid=dead.pid, phase="ready")
    for name, process in zip(("lander", "ingest"), orphans, strict=True):
        state.services[name] = ServiceState(name, "", "", None, pid=process.pid, state="running")
    state.write(tmp_path / "stack" / "state.json")
    try:
        assert CliRunner().invoke(commands.up, []).exit_code == 1  # not over the orphans
        result = CliRunner().invoke(commands.down, ["--timeout-s", "10"])
        assert result.exit_code == 0, result.output
        assert "stopped 2 service(s) the supervisor left behind: lander, ingest" in result.output
        assert [process.wait(5) for process in orphans] == [-signal.SIGTERM, -signal.SIGTERM]
    finally:
        for process in orphans:
            process.kill()


def test_a_client_hanging_up_is_a_warning_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    server = OpsHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    try:
        for error in (BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset")):
            try:
                raise error
            except ConnectionError:
                server.handle_error(None, ("127.0.0.1", 1))
        assert "Traceback" not in capsys.readouterr().err
        try:
            raise RuntimeError("a fault of the handler")
        except RuntimeError:
            server.handle_error(None, ("127.0.0.1", 1))
        assert "RuntimeError: a fault of the handler" in capsys.readouterr().err  # still said in full
    finally:
        server.server_close()
