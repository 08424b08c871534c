"""Fixtures for tests against the real Kafka broker (`make kafka-up`) and embedded ClickHouse."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
from extractguard.local_kafka import LocalKafka
from extractguard.paths import data_home
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


def consecutive_free_ports(count: int, env: str | None = None) -> int:
    """The first of `count` consecutive ports free now (a cluster's brokers and controllers), or the
    one the environment variable `env` names (a machine where each worker has its own port range)."""
    if env and os.environ.get(env):
        return int(os.environ[env])
    for _ in range(200):
        base = random.randrange(20_000, 60_000 - count)
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + count):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {count} consecutive free ports found")


def own_kafka_home(home: Path) -> dict[str, str]:
    """EXTRACTGUARD_HOME for a broker (or cluster) of a test's own, with the session broker's jars
    linked in rather than fetched again from Maven."""
    libs = data_home() / "kafka" / "libs"
    (home / "kafka").mkdir(parents=True)
    if (libs / ".complete").exists():
        (home / "kafka" / "libs").symlink_to(libs)
    return {"EXTRACTGUARD_HOME": str(home)}


#: The SCRAM password the services use against `sasl_kafka`: the no-secrets test greps every log for it.
SASL_PASSWORD = "eg-sasl-password-3b9e1f7a0c5d2864"


@dataclass(frozen=True)
class SecureKafka:
    """A broker reached only over SASL/SCRAM-SHA-512 on TLS."""

    settings: KafkaSettings  # the services' user, password and CA
    # The same as a service's environment (EXTRACTGUARD_KAFKA_*); not in a failed test's output.
    env: dict[str, str] = field(repr=False)
    local: LocalKafka = field(repr=False)


@pytest.fixture(scope="session")
def sasl_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    """A single-node broker of the session's own whose one client listener is SASL_SSL: a
    certificate made with the JDK's keytool (the clients trust it as their CA), and SCRAM users made
    when the storage is formatted (`kafka-storage format --add-scram`): `broker` for the broker
    itself, `extractguard` for the services. Topics are provisioned over it."""
    home = tmp_path_factory.mktemp("sasl-kafka")
    base = consecutive_free_ports(2, env="EXTRACTGUARD_TEST_SASL_PORT")
    store_password, broker_password = uuid.uuid4().hex, uuid.uuid4().hex
    keystore, ca = home / "broker.p12", home / "ca.pem"
    keytool = ["keytool", "-noprompt", "-keystore", str(keystore), "-storetype", "PKCS12", "-storepass", store_password]
    subprocess.run([*keytool, "-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048", "-validity", "2",
                    "-dname", "CN=127.0.0.1", "-ext", "SAN=IP:127.0.0.1,DNS:localhost", "-keypass", store_password],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(
        [*keytool, "-exportcert", "-rfc", "-alias", "broker", "-file", str(ca)], check=True, capture_output=True
    )
    # The broker is a client of itself (inter-broker listener): it must trust its certificate too.
    truststore = home / "trust.p12"
    subprocess.run(["keytool", "-noprompt", "-importcert", "-alias", "ca", "-file", str(ca), "-keystore",
                    str(truststore), "-storetype", "PKCS12", "-storepass", store_password],
                   check=True, capture_output=True)  # fmt: skip
    properties = home / "sasl.properties"
    properties.write_text(
        "listeners=SASL_SSL://127.0.0.1:@PORT@,CONTROLLER://127.0.0.1:@CONTROLLER_PORT@\n"
        "advertised.listeners=SASL_SSL://127.0.0.1:@PORT@\n"
        "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT\n"
        "inter.broker.listener.name=SASL_SSL\n"
        "sasl.enabled.mechanisms=SCRAM-SHA-512\n"
        "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512\n"
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule"
        f' required username="broker" password="{broker_password}";\n'
        f"ssl.keystore.type=PKCS12\nssl.keystore.location={keystore}\n"
        f"ssl.keystore.password={store_password}\nssl.key.password={store_password}\n"
        f"ssl.truststore.type=PKCS12\nssl.truststore.location={truststore}\nssl.truststore.password={store_password}\n"
    )
    scram = [
        f"SCRAM-SHA-512=[name=broker,password={broker_password}]",
        f"SCRAM-SHA-512=[name=extractguard,password={SASL_PASSWORD}]",
    ]
    local = LocalKafka(own_kafka_home(home / "home") | {
        "EXTRACTGUARD_KAFKA_NODES": "1",
        "EXTRACTGUARD_KAFKA_PORT": str(base),
        "EXTRACTGUARD_KAFKA_CONTROLLER_PORT": str(base + 1),
        "EXTRACTGUARD_KAFKA_EXTRA_PROPERTIES": str(properties),
        "EXTRACTGUARD_KAFKA_FORMAT_ARGS": " ".join(f"--add-scram {user}" for user in scram),
    })  # fmt: skip
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{base}",
        "EXTRACTGUARD_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "EXTRACTGUARD_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "EXTRACTGUARD_KAFKA_SASL_USERNAME": "extractguard",
        "EXTRACTGUARD_KAFKA_SASL_PASSWORD": SASL_PASSWORD,
        "EXTRACTGUARD_KAFKA_SSL_CA_LOCATION": str(ca),
    }
    with pytest.MonkeyPatch.context() as patch:  # the settings read from the environment, as a service's are
        for key, value in env.items():
            patch.setenv(key, value)
        settings = KafkaSettings()
    try:
        local.up()
        provision(settings)
        yield SecureKafka(settings, env, local)
    finally:
        local.down()


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
