"""Fixtures for tests against the real Kafka broker (`make kafka-up`) and embedded ClickHouse."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import pytest
from click.testing import CliRunner
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from extractguard.cli import main
from extractguard.contracts.enforcement import ENFORCEMENT_APPROVALS
from extractguard.contracts.provision import provision
from extractguard.contracts.topics import CAMPAIGNS, DETECTIONS, FINGERPRINT_ACTIVITY, GATEWAY_EVENTS, LINK_EVIDENCE
from extractguard.demo.processes import Service
from extractguard.kafka_offsets import start_group_at_end
from extractguard.lander.consumer import Lander
from extractguard.lander.sinks import landed_topics
from extractguard.settings import KafkaSettings, LanderSettings


@pytest.fixture(scope="session")
def kafka() -> KafkaSettings:
    settings = KafkaSettings()
    with pytest.MonkeyPatch.context():
        try:
            AdminClient({**settings.client_config(), "socket.timeout.ms": 5000}).list_topics(timeout=10)
        except Exception as error:
            pytest.fail(f"no Kafka broker at {settings.bootstrap_servers} ({error}); run `make kafka-up`")
        provision(settings)
    return settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(*args: str) -> str:
    """`extractguard ARGS` run in this process (its patches apply); its output, once it succeeded."""
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def cli_process(env: dict[str, str], *args: str, timeout_s: float = 360) -> subprocess.CompletedProcess[str]:
    """`extractguard ARGS` run as its own process with `env`, as a person runs it from a shell."""
    return subprocess.run(
        [sys.executable, "-m", "extractguard.cli", *args], env=env, capture_output=True, text=True, timeout=timeout_s
    )


class RunsUntilStopped(Protocol):
    """A service a test runs in a thread of its own: the lander, the enforcer."""

    def run(self) -> None: ...

    def stop(self) -> None: ...


def start_in_thread(service: RunsUntilStopped) -> threading.Thread:
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    return thread


def stop_in_thread(service: RunsUntilStopped, thread: threading.Thread) -> None:
    """Stop a service started by `start_in_thread`, waiting for its thread (30 s at most)."""
    service.stop()
    thread.join(timeout=30)


def within(seconds: float, check: Callable[[], bool], what: str) -> float:
    """Wait until `check()` holds, failing the test after `seconds`; how long it took, in seconds."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, f"{what}: not within {seconds} s"
        time.sleep(0.1)
    return time.monotonic() - started


def start_lander(
    kafka: KafkaSettings, client: Client, group_id: str, *, batch_max_wait_s: float = 0.5
) -> tuple[Lander, threading.Lock, threading.Thread]:
    """A lander landing into `client` in a thread of its own, from the end of every landed topic
    (what the test produces from now on). The test takes the lock to query `client` beside it,
    and stops the lander (then joins the thread) when done."""
    start_group_at_end(kafka, group_id, landed_topics())
    lock = threading.Lock()
    lander = Lander(client, lock, LanderSettings(group_id=group_id, batch_max_wait_s=batch_max_wait_s), kafka)
    return lander, lock, start_in_thread(lander)


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def services(tmp_path: Path) -> Iterator[list[Service]]:
    """Child processes started by a test; all are stopped when it ends, whatever happened."""
    started: list[Service] = []
    yield started
    for service in started:
        service.stop(timeout_s=20)
        if os.environ.get("EXTRACTGUARD_TEST_SHOW_LOGS"):
            print(f"--- {service.name} ---\n{service.tail(50)}")


def read_from(kafka: KafkaSettings, topic: str, start: dict[int, int], expect: int, timeout_s: float = 30) -> list:
    """Read at least `expect` messages of `topic` from the given offsets (or what came in time)."""
    import time

    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": f"extractguard-tests-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, o) for p, o in start.items()])
    messages = []
    deadline = time.monotonic() + timeout_s
    while len(messages) < expect and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            messages.append(message)
    consumer.close()
    return messages


STACK_PORTS = ("INGEST", "LANDER_SQL", "DETECT_WEB", "CAMPAIGNS_WEB", "ENFORCER_WEB", "ALERTER_WEB")


def stack_env(kafka: KafkaSettings, home: Path, token: str, run_id: str) -> tuple[dict[str, str], dict[str, int]]:
    """The environment of an `extractguard up` on a fresh `home` (and its ports, by name): every
    port free, and groups and Faust apps of this run alone, started at the topics' ends, as other
    tests share the broker (a new group would read their records first: their events, an hour
    newer than a scenario's, would make its events late in the detectors' windows)."""
    ports = {name: free_port() for name in STACK_PORTS}
    groups = {
        f"stack-l-{run_id}": landed_topics(), f"stack-d-{run_id}": [GATEWAY_EVENTS],
        f"stack-c-{run_id}": [FINGERPRINT_ACTIVITY, LINK_EVIDENCE], f"stack-a-{run_id}": [DETECTIONS, CAMPAIGNS],
        f"stack-e-{run_id}": [CAMPAIGNS, DETECTIONS, ENFORCEMENT_APPROVALS],
    }  # fmt: skip
    for group, topics in groups.items():
        start_group_at_end(kafka, group, topics)
    env = {
        **os.environ, "EXTRACTGUARD_HOME": str(home), "EXTRACTGUARD_INGEST_TOKEN": token,
        **{f"EXTRACTGUARD_STACK_{name}_PORT": str(port) for name, port in ports.items()},
        "EXTRACTGUARD_LANDER_GROUP_ID": f"stack-l-{run_id}", "EXTRACTGUARD_ALERTER_GROUP_ID": f"stack-a-{run_id}",
        "EXTRACTGUARD_ENFORCER_GROUP_ID": f"stack-e-{run_id}", "EXTRACTGUARD_DETECT_APP_ID": f"stack-d-{run_id}",
        "EXTRACTGUARD_CAMPAIGNS_APP_ID": f"stack-c-{run_id}",
        # Alerts and decisions of earlier runs on the shared topics are not this stack's.
        "EXTRACTGUARD_ALERTER_REBUILD_LOOKBACK_S": "0", "EXTRACTGUARD_ENFORCER_RESTORE_BOOK": "false",
    }  # fmt: skip
    return env, ports


def service_log_errors(home: Path) -> list[str]:
    """Every error line (and traceback) in the logs of the stack `up` ran in `home`, with what
    follows a traceback, so a failure says what went wrong."""
    errors = []
    for log in sorted((home / "stack" / "logs").glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()
        for number, line in enumerate(lines):
            if '"level": "error"' in line or '"level": "critical"' in line:
                errors.append(f"{log.name}: {line[:400]}")
            elif line.startswith("Traceback"):
                errors.append(f"{log.name}: " + " | ".join(lines[number : number + 30])[:3000])
    return errors
