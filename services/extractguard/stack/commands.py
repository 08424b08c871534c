"""`extractguard up`, `down` and `status`: the stack beside a gateway, on one machine.

`up` starts the supervisor (`up --foreground`) as a process of its own session, so it outlives the
shell, and returns once every service is ready (or says which one was not, with its log's tail);
`down` sends the supervisor SIGTERM and waits until it and every service it started are gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import click

from extractguard.pids import pid_alive
from extractguard.stack.state import left_behind, read_state, stack_dir, state_path


def _running_supervisor() -> dict[str, Any] | None:
    state = read_state()
    if state is None or state["phase"] in ("stopped", "failed") or not pid_alive(state["supervisor_pid"]):
        return None
    return state


def _print_services(state: dict[str, Any]) -> None:
    for name, service in state["services"].items():
        pid = service["pid"] if pid_alive(service["pid"]) else None
        restarts = f"  restarts {service['restarts']}" if service["restarts"] else ""
        click.echo(f"  {name:<10} {service['state']:<10} pid {pid or '-':<8} {service['endpoint'] or ''}{restarts}")


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as log:
            return "".join(log.readlines()[-lines:])
    except FileNotFoundError:
        return ""


@click.command()
@click.option("--foreground", is_flag=True, help="Supervise in this process (what `up` runs in the background).")
@click.option("--timeout-s", default=300.0, show_default=True, help="How long `up` waits for the stack to be ready.")
def up(foreground: bool, timeout_s: float) -> None:
    """Start the services a gateway needs (lander, ingest, detect, campaigns, enforcer, alerter) and the
    local broker if none is configured, supervised: a service that dies is restarted.

    Ports: EXTRACTGUARD_STACK_INGEST_PORT, _LANDER_SQL_PORT, _ENFORCER_WEB_PORT, ... (see `status`).
    """
    if foreground:
        from extractguard.stack.supervisor import supervise

        supervise()
        return
    running = _running_supervisor()
    if running is not None:
        click.echo(f"already up (supervisor pid {running['supervisor_pid']}, phase {running['phase']})")
        _print_services(running)
        return
    earlier = read_state()
    if earlier is not None and left_behind(earlier):
        raise click.ClickException(
            f"services of an earlier `up` are still running without their supervisor "
            f"({', '.join(left_behind(earlier))}): run `extractguard down` first"
        )
    folder = stack_dir()
    folder.mkdir(parents=True, exist_ok=True)
    state_path().unlink(missing_ok=True)
    with (folder / "supervisor.log").open("ab") as out:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "extractguard.cli", "up", "--foreground"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "EXTRACTGUARD_LOG_FORMAT": "json"},
        )  # fmt: skip
    click.echo(f"starting the stack (supervisor pid {supervisor.pid}; logs in {folder / 'logs'})")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = read_state()
        if state is not None and state["phase"] == "ready":
            click.echo("up:")
            _print_services(state)
            return
        if supervisor.poll() is not None:
            error = (read_state() or {}).get("error")
            why = error or f"the supervisor exited:\n{_tail(str(folder / 'supervisor.log'))}"
            raise click.ClickException(f"the stack did not start: {why}")
        time.sleep(0.5)
    supervisor.send_signal(signal.SIGTERM)
    raise click.ClickException(f"the stack was not ready within {timeout_s:.0f} s; stopping it (see {folder})")


@click.command()
@click.option("--timeout-s", default=120.0, show_default=True, help="How long to wait for everything to stop.")
def down(timeout_s: float) -> None:
    """Stop the stack `up` started: every service, then the local broker if `up` started it."""
    state = read_state()
    if state is None or (not pid_alive(state["supervisor_pid"]) and not left_behind(state)):
        click.echo("not running")
        return
    if pid_alive(state["supervisor_pid"]):
        os.kill(state["supervisor_pid"], signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and pid_alive(state["supervisor_pid"]):
            time.sleep(0.3)
        if pid_alive(state["supervisor_pid"]):
            raise click.ClickException(
                f"the supervisor (pid {state['supervisor_pid']}) did not stop within {timeout_s:.0f} s"
            )
        state = read_state() or state
    else:
        # The supervisor was killed (SIGKILL, OOM) and could not stop its services: stop them here,
        # and the broker if it had started it.
        _stop_orphans(state, timeout_s)
    left = left_behind(state)
    if left:
        raise click.ClickException(f"still running: {', '.join(left)}")
    click.echo("down: every service stopped")


def _stop_orphans(state: dict[str, Any], timeout_s: float) -> None:
    orphans = left_behind(state)
    for pid in orphans.values():
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and left_behind(state):
        time.sleep(0.3)
    for pid in left_behind(state).values():
        os.kill(pid, signal.SIGKILL)
    click.echo(f"stopped {len(orphans)} service(s) the supervisor left behind: {', '.join(orphans)}")
    if state.get("kafka_started"):
        from extractguard.demo.processes import stop_local_kafka

        stop_local_kafka()


@click.command()
def status() -> None:
    """What `up` runs: each service's state, pid, endpoint and restarts (exit 3 when not up)."""
    state = _running_supervisor()
    if state is None:
        click.echo("not running")
        sys.exit(3)
    click.echo(f"{state['phase']} (supervisor pid {state['supervisor_pid']}; logs in {stack_dir() / 'logs'})")
    _print_services(state)
    if state["phase"] != "ready" or any(s["state"] != "running" for s in state["services"].values()):
        sys.exit(1)


def register(main: click.Group) -> None:
    for command in (up, down, status):
        main.add_command(command)
