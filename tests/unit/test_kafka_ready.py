"""A topic just created answers NOT_LEADER_FOR_PARTITION for a moment: look-ups retry, provisioning waits."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from extractguard.kafka_ready import KafkaNotReady, retry_retriable, wait_for_leaders


def _kafka_error(code: int) -> KafkaException:
    return KafkaException(KafkaError(code))


def test_a_lookup_that_meets_a_partition_without_leader_is_retried_until_it_answers() -> None:
    calls: list[int] = []

    def look_up() -> dict[int, int]:
        calls.append(1)
        if len(calls) < 3:
            raise _kafka_error(KafkaError.NOT_LEADER_FOR_PARTITION)
        return {0: 42}

    assert retry_retriable(look_up, "end offsets", timeout_s=5) == {0: 42}
    assert len(calls) == 3


def test_an_error_no_retry_can_mend_is_raised_at_once() -> None:
    calls: list[int] = []

    def look_up() -> None:
        calls.append(1)
        raise _kafka_error(KafkaError.TOPIC_AUTHORIZATION_FAILED)

    with pytest.raises(KafkaException):
        retry_retriable(look_up, "end offsets", timeout_s=5)
    assert len(calls) == 1


def test_a_broker_that_never_settles_ends_in_an_error_naming_what_was_asked() -> None:
    def look_up() -> None:
        raise _kafka_error(KafkaError.LEADER_NOT_AVAILABLE)

    began = time.monotonic()
    with pytest.raises(KafkaNotReady, match=r"end offsets of gateway\.events"):
        retry_retriable(look_up, "end offsets of gateway.events", timeout_s=0.5)
    assert time.monotonic() - began < 5


def _metadata(leaders: dict[str, list[int]]) -> Any:
    return SimpleNamespace(
        topics={
            topic: SimpleNamespace(
                error=None,
                partitions={
                    p: SimpleNamespace(leader=leader, error=None) for p, leader in enumerate(partition_leaders)
                },
            )
            for topic, partition_leaders in leaders.items()
        }
    )


class _SettlingBroker:
    """Metadata of a topic whose partitions get their leaders one list_topics call at a time."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.calls = 0

    def list_topics(self, timeout: float) -> Any:
        self.calls += 1
        return _metadata({"t": [1 if p < self.calls - 1 else -1 for p in range(self.partitions)]})


def test_provisioning_waits_until_every_partition_has_a_leader() -> None:
    broker = _SettlingBroker(partitions=3)
    wait_for_leaders(broker, {"t": 3}, timeout_s=10)
    assert broker.calls == 4  # no leader, then one, two, three partitions led


def test_waiting_for_leaders_is_bounded_and_names_the_partitions_without_one() -> None:
    class Stuck:
        def list_topics(self, timeout: float) -> Any:
            return _metadata({"t": [1, -1]})

    with pytest.raises(KafkaNotReady, match=r"t\[1\]") as raised:
        wait_for_leaders(Stuck(), {"t": 2, "missing": 1}, timeout_s=0.3)
    assert "missing[0]" in str(raised.value)
    assert "t[0]" not in str(raised.value)


def test_sigterm_ends_a_run_through_its_exit_handlers(tmp_path: Path) -> None:
    """What stops a broker the run started (an exit handler) must also run when the run is SIGTERMed."""
    marker = tmp_path / "stopped"
    child = textwrap.dedent(f"""
        import atexit, pathlib, sys, time
        from extractguard.demo.processes import exit_on_sigterm
        exit_on_sigterm()
        atexit.register(lambda: pathlib.Path({str(marker)!r}).write_text("stopped"))
        print("ready", flush=True)
        time.sleep(60)
    """)
    process = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 128 + signal.SIGTERM
    assert marker.read_text() == "stopped"
