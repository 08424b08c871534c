"""The newcomer's first run: a broker started from nothing, topics created, offsets read at once.

On a fresh broker the partitions of a topic just created have no leader for a moment, and an
offset look-up then fails with NOT_LEADER_FOR_PARTITION — the first `make demo` on a fresh machine
died of it. This test starts a broker of its own (own data directory and ports) from a child
process the way the demo does, provisions every declared topic and starts a consumer group at the
end of each at once; then SIGTERMs the child and checks that the broker it started is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from extractguard.pids import pid_alive
from tests.integration.conftest import free_port, own_kafka_home

pytestmark = pytest.mark.kafka

CHILD = textwrap.dedent("""
    import time
    from extractguard.contracts.provision import declared_topics, provision
    from extractguard.demo.processes import ensure_local_kafka
    from extractguard.kafka_offsets import end_offsets, start_group_at_end
    from extractguard.settings import KafkaSettings

    assert ensure_local_kafka(), "the child should have started a broker of its own"
    kafka = KafkaSettings()
    created = provision(kafka).created
    topics = [spec.name for spec in declared_topics()]
    start_group_at_end(kafka, "fresh-broker-test", topics)
    assert all(end == 0 for topic in topics for end in end_offsets(kafka, topic).values())
    print(f"ready {len(created)}", flush=True)
    time.sleep(120)
""")


def test_a_fresh_broker_serves_offsets_right_after_provisioning_and_dies_with_its_starter(tmp_path: Path) -> None:
    home = tmp_path / "home"
    own_kafka_home(home)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env |= {
        "EXTRACTGUARD_HOME": str(home),
        "EXTRACTGUARD_KAFKA_PORT": str(port),
        "EXTRACTGUARD_KAFKA_CONTROLLER_PORT": str(free_port()),
        "EXTRACTGUARD_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
        "EXTRACTGUARD_KAFKA_HEAP": "512m",
    }
    child = subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE, text=True)
    pidfile = home / "kafka" / "broker.pid"
    try:
        assert child.stdout is not None
        line = ""
        for line in iter(child.stdout.readline, ""):  # kafka.sh speaks first; EOF if the child died
            if line.startswith("ready"):
                break
        assert line.startswith("ready"), f"the child ended before its topics were ready (last line {line!r})"
        assert int(line.split()[1]) > 0, "the broker was fresh, so provisioning should have created topics"
        broker_pid = int(pidfile.read_text())
        assert pid_alive(broker_pid)
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=60) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 30
        while pid_alive(broker_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not pid_alive(broker_pid), "the broker started by a SIGTERMed run was left running"
        assert not pidfile.exists()
    finally:
        if child.poll() is None:
            child.kill()
        if pidfile.exists():
            subprocess.run(["kill", "-9", pidfile.read_text().strip()], check=False)
