"""The supervisor behind `extractguard up`: starts the stack, restarts what dies, stops it all on exit.

One process (`extractguard up --foreground`) owns the services as children (`demo.processes.Service`,
the same mechanism the demo, the eval and the chaos runs use):
1. the local broker, when no other answers and KAFKA_BOOTSTRAP_SERVERS points nowhere else, and
   the declared topics;
2. each service in the order of `stack.services`, each waited for (its ready URL, or merely alive)
   before the next starts, so the alerter's first SQL rule finds the lander's door open;
3. a watch: a service that exits is restarted after a back-off that doubles per crash (up to
   `max_restart_backoff_s`) and starts over once it has stayed up `stable_after_s`; the services'
   own checkpoints make a restart lose nothing;
4. on SIGTERM (`extractguard down`), Ctrl-C or any error: every service stopped, last started first,
   then the broker if this process started it.
What it is doing is written to `state.json` in the stack's folder for `status` and `down`.

Why not supervisord (the `supervisor` package): it restarts with back-off and keeps logs, but has
no notion of one program waiting for another's readiness (the alerter for the lander's door, each
Faust worker for its checkpoint topics), and it would be a second way of running a service beside
the `Service` the demo, eval, chaos and the integration tests share; the watch here is ~40 lines
over that one mechanism.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from extractguard.demo.processes import (
    Service,
    ServiceDied,
    ensure_local_kafka,
    exit_on_sigterm,
    stop_local_kafka,
    wait_http,
)
from extractguard.logs import configure
from extractguard.settings import StackSettings
from extractguard.stack.services import StackService, stack_services
from extractguard.stack.state import ServiceState, StackState, stack_dir

log = configure("stack")


class _Supervised:
    """A service with its restart schedule."""

    def __init__(self, spec: StackService, service: Service, state: ServiceState, backoff_s: float) -> None:
        self.spec = spec
        self.service = service
        self.state = state
        self.backoff_s = backoff_s
        self.started_at = 0.0
        self.restart_at: float | None = None


class Supervisor:
    def __init__(
        self,
        settings: StackSettings,
        folder: Path,
        specs: list[StackService] | None = None,
        command_of: Callable[[StackService], list[str] | None] = lambda _spec: None,
    ) -> None:
        self.settings = settings
        self.folder = folder
        self.log_dir = folder / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.state = StackState(supervisor_pid=os.getpid())
        self.children: list[_Supervised] = []
        for spec in specs if specs is not None else stack_services(settings):
            service = Service(spec.name, spec.env, self.log_dir, command=command_of(spec))
            state = ServiceState(spec.name, spec.role, str(service.log_path), spec.endpoint)
            self.state.services[spec.name] = state
            self.children.append(_Supervised(spec, service, state, settings.restart_backoff_s))
        self.save()

    def save(self) -> None:
        self.state.write(self.folder / "state.json")

    def start(self) -> None:
        """Start every service in order, each ready before the next; raises if one is not."""
        for child in self.children:
            self._start(child)
            if child.spec.ready_url is not None:
                wait_http(child.spec.ready_url, self.settings.ready_timeout_s, child.service)
            elif not child.service.alive():
                raise ServiceDied(child.service, "exited during start")
            child.state.state = "running"
            self.save()
            log.info("service_ready", name=child.spec.name, pid=child.service.pid)
        self.state.phase = "ready"
        self.save()

    def _start(self, child: _Supervised) -> None:
        child.service.start()
        child.started_at = time.monotonic()
        child.restart_at = None
        child.state.pid = child.service.pid
        child.state.state = "starting"
        self.save()

    def watch_once(self, now: float | None = None) -> None:
        """Restart the services that died, once their back-off has passed."""
        now = time.monotonic() if now is None else now
        changed = False
        for child in self.children:
            if child.service.alive():
                if child.state.state != "running":
                    child.state.state, changed = "running", True
                if now - child.started_at >= self.settings.stable_after_s:
                    child.backoff_s = self.settings.restart_backoff_s
                continue
            if child.restart_at is None:
                process = child.service.process
                child.state.last_exit_code = None if process is None else process.returncode
                child.state.state, changed = "restarting", True
                child.restart_at = now + child.backoff_s
                log.warning("service_exited", name=child.spec.name, exit_code=child.state.last_exit_code,
                            restart_in_s=child.backoff_s, log=child.state.log)  # fmt: skip
                child.backoff_s = min(child.backoff_s * 2, self.settings.max_restart_backoff_s)
            elif now >= child.restart_at:
                self._start(child)
                child.state.restarts += 1
                log.info("service_restarted", name=child.spec.name, pid=child.service.pid,
                         restarts=child.state.restarts)  # fmt: skip
        if changed:
            self.save()

    def stop(self) -> None:
        """Stop every service, the last started first (the alerter before the lander it reads)."""
        self.state.phase = "stopping"
        self.save()
        for child in reversed(self.children):
            code = child.service.stop()
            child.state.state = "stopped"
            child.state.last_exit_code = code
            child.state.pid = None
            self.save()
            log.info("service_stopped", name=child.spec.name, exit_code=code)


def supervise(settings: StackSettings | None = None, poll_s: float = 0.5) -> None:
    """Run the stack until SIGTERM or Ctrl-C: `extractguard up --foreground`."""
    settings = settings or StackSettings()
    folder = stack_dir()
    folder.mkdir(parents=True, exist_ok=True)
    exit_on_sigterm()
    supervisor = Supervisor(settings, folder)
    started_kafka = False
    try:
        from extractguard.contracts.provision import provision
        from extractguard.settings import KafkaSettings

        started_kafka = ensure_local_kafka()
        supervisor.state.kafka_started = started_kafka
        provision(KafkaSettings())
        supervisor.start()
        log.info("stack_ready", services=[c.spec.name for c in supervisor.children], log_dir=str(supervisor.log_dir))
        while True:
            time.sleep(poll_s)
            supervisor.watch_once()
    except (KeyboardInterrupt, SystemExit):
        pass
    except ServiceDied as error:  # said in one line, with the reason from the service's log
        supervisor.state.error = str(error)[:4000]
        log.error("stack_failed", error=str(error)[:4000])
    except Exception as error:
        supervisor.state.error = str(error)[:4000]
        log.error("stack_failed", error=str(error)[:4000])
        raise
    finally:
        # A second SIGTERM must not cut the stop short and leave children behind.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        failed = supervisor.state.error is not None
        supervisor.stop()
        if started_kafka:
            stop_local_kafka()
        supervisor.state.phase = "failed" if failed else "stopped"
        supervisor.save()
    if supervisor.state.error is not None:
        raise SystemExit(1)
