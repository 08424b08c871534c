"""`extractguard up` on a fresh home: every service ready, events landed and readable with
`extractguard sql` (quietly), each service killed in turn and restarted with nothing lost or landed
twice, a bouncer fed over HTTP resuming from its position across the ingest's restart, and `down`
leaving nothing running, with no error line in any service's log."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3

from extractguard.pids import pid_alive
from extractguard.settings import KafkaSettings
from extractguard_gateway.enforcement.cache import DecisionCache, Identity
from extractguard_gateway.enforcement.http_feed import HttpDecisionFeed
from tests.integration.conftest import cli_process, service_log_errors, stack_env

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

TOKEN = "stack-test-token"


def _status(cache: DecisionCache, account: str) -> int:
    return cache.verdict(Identity(account=account), int(time.time() * 1000)).status


def _within(seconds: float, check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.05)


def _events(golden: dict[str, list[Path]], run_id: str, numbers: range) -> bytes:
    template = orjson.loads(golden["gateway_event"][0].read_bytes())
    now_ms = int(time.time() * 1000) - 1000
    lines = [
        orjson.dumps(
            {**template, "event_id": f"{run_id}-{n:08d}", "event_time_ms": now_ms, "account_id": f"acct-{n % 3}"}
        )
        for n in numbers
    ]
    return b"\n".join(lines)


def _restarted(state_file: Path, name: str, killed: int, restarts: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        service: dict[str, Any] = orjson.loads(state_file.read_bytes())["services"][name]
        if service["restarts"] == restarts and service["state"] == "running" and service["pid"] != killed:
            return service
        time.sleep(0.3)
    raise AssertionError(f"{name} was not restarted: {service}")


def _send(
    http: urllib3.PoolManager, url: str, headers: dict[str, str], golden: dict[str, list[Path]], run_id: str, sent: int
) -> int:
    """Ten more events to the ingest; how many were sent in all."""
    answer = http.request("POST", url, body=_events(golden, run_id, range(sent, sent + 10)), headers=headers)
    assert answer.status in (200, 202), answer.data
    return sent + 10


def _ready_url(name: str, ports: dict[str, int]) -> str:
    path = {"lander": "/healthz", "ingest": "/healthz", "detect": "/metrics", "campaigns": "/metrics"}
    port = {"lander": "LANDER_SQL", "ingest": "INGEST"}.get(name, f"{name.upper()}_WEB")
    return f"http://127.0.0.1:{ports[port]}{path.get(name, '/readyz')}"


def _answers(http: urllib3.PoolManager, url: str) -> bool:
    try:
        return http.request("GET", url, timeout=2, retries=False).status == 200
    except urllib3.exceptions.HTTPError:
        return False


def test_up_runs_the_stack_restarts_each_killed_service_losing_nothing_and_down_stops_it_all(
    kafka: KafkaSettings, tmp_path: Path, golden: dict[str, list[Path]], run_id: str
) -> None:
    home = tmp_path / "home"
    env, ports = stack_env(kafka, home, TOKEN, run_id)
    state_file = home / "stack" / "state.json"
    killed_pids: list[int] = []
    up = cli_process(env, "up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "ingest" in up.stdout and f":{ports['INGEST']}" in up.stdout
        status = cli_process(env, "status", timeout_s=30)
        assert status.returncode == 0, status.stdout
        state = orjson.loads(state_file.read_bytes())
        assert list(state["services"]) == ["lander", "ingest", "detect", "campaigns", "enforcer", "alerter"]

        http = urllib3.PoolManager()
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}
        url = f"http://127.0.0.1:{ports['INGEST']}/v1/events"
        answer = http.request("POST", url, body=_events(golden, run_id, range(30)), headers=headers)
        assert answer.status in (200, 202), answer.data

        def count_now() -> int:
            query = f"SELECT count() AS n FROM events WHERE startsWith(event_id, '{run_id}')"
            sql = cli_process(env, "sql", query, "--format", "json", timeout_s=60)
            assert sql.returncode == 0, sql.stderr
            assert "Cannot lock" not in sql.stderr and "Exception" not in sql.stderr, sql.stderr
            return int(orjson.loads(sql.stdout)[0]["n"])

        def landed(expect: int) -> int:
            count, deadline = count_now(), time.monotonic() + 60
            while time.monotonic() < deadline and count < expect:
                time.sleep(1)
                count = count_now()
            return count

        assert landed(30) == 30

        # A bouncer fed over HTTP by the stack's ingest, under the gateway's own token, from now on.
        cache = DecisionCache()
        feed = HttpDecisionFeed(cache, f"http://127.0.0.1:{ports['INGEST']}", TOKEN, wait_s=5).start()
        try:
            assert cache.ready.wait(30)

            def add(account: str, action: str = "suspend") -> str:
                added = cli_process(env, "decisions", "add", "--account", account, "--action", action, "--ttl",
                                    "1h", "--note", "stack test", "--by", "ana", timeout_s=60)  # fmt: skip
                assert added.returncode == 0, added.stdout + added.stderr
                return added.stdout.split("group ")[1].split(";")[0]

            # Each service killed in turn and restarted by the supervisor; events sent meanwhile
            # land once each. The lander is killed with events on their way to it; the ingest with a
            # bouncer following its feed, which resumes from its position after the restart (no
            # second snapshot) and gets the decision made while the ingest was down.
            sent, while_down = 30, f"while-down-{run_id}"
            for name in ("detect", "campaigns", "enforcer", "alerter", "ingest", "lander"):
                killed = state["services"][name]["pid"]
                os.kill(killed, signal.SIGKILL)
                if name == "lander":
                    sent = _send(http, url, headers, golden, run_id, sent)
                if name == "ingest":
                    add(while_down)
                restarted = _restarted(state_file, name, killed, 1)
                killed_pids.append(killed)
                ready_url = _ready_url(name, ports)
                _within(60, lambda url=ready_url: _answers(http, url), f"{name} ready after its restart")
                if name == "lander":
                    landed_at = time.monotonic()
                    assert landed(sent) == sent
                    print(f"\n{sent} events landed {time.monotonic() - landed_at:.1f} s after the lander was back")
                else:
                    sent = _send(http, url, headers, golden, run_id, sent)
                if name == "ingest":
                    _within(
                        30, lambda: _status(cache, while_down) == 403, "the decision made while the ingest was down"
                    )
                    assert feed.snapshots == 1, "the bouncer was sent the whole set again after the ingest restart"
                assert pid_alive(restarted["pid"])
            assert landed(sent) == sent
            time.sleep(3)
            assert count_now() == sent  # nothing twice
            distinct = cli_process(env, "sql", f"SELECT uniqExact(event_id) AS n FROM events WHERE "
                                   f"startsWith(event_id, '{run_id}')", "--format", "json", timeout_s=60)  # fmt: skip
            assert int(orjson.loads(distinct.stdout)[0]["n"]) == sent

            # After every restart, a manual suspend and its lift reach the bouncer within 5 s each.
            account = f"hand-{run_id}"
            group = add(account)
            _within(5, lambda: _status(cache, account) == 403, "the manual suspend over HTTP")
            lifted = cli_process(env, "decisions", "lift", group, "--note", "done", timeout_s=60)
            assert lifted.returncode == 0, lifted.stdout + lifted.stderr
            _within(5, lambda: _status(cache, account) == 200, "the lift over HTTP")
            assert feed.snapshots == 1
        finally:
            feed.stop(timeout_s=1)
    finally:
        down = cli_process(env, "down", timeout_s=180)
    assert down.returncode == 0, down.stdout + down.stderr
    state = orjson.loads(state_file.read_bytes())
    assert state["phase"] == "stopped"
    assert not pid_alive(state["supervisor_pid"])
    every_pid = killed_pids + [s["pid"] for s in state["services"].values() if s["pid"]]
    assert not any(pid_alive(pid) for pid in every_pid)
    assert cli_process(env, "status", timeout_s=30).returncode == 3
    errors = service_log_errors(home)
    assert not errors, "\n".join(errors)
