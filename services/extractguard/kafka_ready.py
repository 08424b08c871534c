"""Kafka's passing states: a topic just created has partitions without a leader for a moment.

A fresh broker answers a metadata or offset request on a new topic with NOT_LEADER_FOR_PARTITION
or LEADER_NOT_AVAILABLE until its controller has elected a leader for every partition. Those are
retriable errors, not failures: every command that creates topics and then reads offsets (the
demo, the evaluation, the bench, the tests, a worker creating its checkpoint topic) goes through
`wait_for_leaders` after creating and `retry_retriable` around the look-up, so a first run on a
fresh machine behaves like every later one. Both are bounded and end with an error that says what
was still missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

T = TypeVar("T")

# Errors a broker gives while a partition's leadership is still being settled; librdkafka marks
# some of them retriable() and reports others (an unknown partition just after creation) as
# plain errors, so the set is named here.
_SETTLING = {
    # A broker restarting: its group coordinator moves or loads (a commit then says so).
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_PARTITION,
    KafkaError._UNKNOWN_TOPIC,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
}


class KafkaNotReady(RuntimeError):
    """The broker did not settle within the time allowed; the message says what was missing."""


def is_retriable(error: BaseException) -> bool:
    """True for a KafkaException that a later attempt can get past (leadership, coordinator, timeouts).

    >>> is_retriable(KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION)))
    True
    >>> is_retriable(KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)))
    False
    >>> is_retriable(ValueError("not Kafka"))
    False
    """
    if not isinstance(error, KafkaException) or not error.args or not isinstance(error.args[0], KafkaError):
        return False
    kafka_error: KafkaError = error.args[0]
    return bool(kafka_error.retriable()) or kafka_error.code() in _SETTLING


def retry_retriable(call: Callable[[], T], what: str, timeout_s: float = 30.0) -> T:
    """Run `call`, again after a short backoff while it fails with a retriable Kafka error.

    Any other error is raised at once; a retriable one that outlasts `timeout_s` becomes
    `KafkaNotReady` naming `what` and the broker's last word.
    """
    retrying = Retrying(
        retry=retry_if_exception(is_retriable),
        stop=stop_after_delay(timeout_s),
        wait=wait_exponential(multiplier=0.05, max=1.0),
        reraise=True,
    )
    try:
        return retrying(call)
    except KafkaException as error:
        if is_retriable(error):
            raise KafkaNotReady(f"{what}: Kafka still answers {error} after {timeout_s:.0f}s") from error
        raise


def partitions_without_leader(metadata: Any, expected: Mapping[str, int]) -> list[str]:
    """`topic[partition]` of every expected partition that the metadata shows without a leader."""
    missing: list[str] = []
    for topic, count in expected.items():
        present = metadata.topics.get(topic)
        if present is None or present.error is not None:
            missing += [f"{topic}[{p}]" for p in range(count)]
            continue
        for partition in range(count):
            info = present.partitions.get(partition)
            if info is None or info.error is not None or info.leader < 0:
                missing.append(f"{topic}[{partition}]")
    return missing


def wait_for_leaders(admin: Any, expected: Mapping[str, int], timeout_s: float = 60.0) -> None:
    """Return once every expected partition (topic -> partition count) has a leader.

    `admin` is anything with librdkafka's `list_topics(timeout=)` (an AdminClient, a Consumer).
    Raises `KafkaNotReady` listing the partitions still without a leader after `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    pause = 0.05
    while True:
        remaining = max(deadline - time.monotonic(), 0.1)
        try:
            missing = partitions_without_leader(admin.list_topics(timeout=min(remaining, 10.0)), expected)
        except KafkaException as error:
            if not is_retriable(error):
                raise
            missing = [f"metadata ({error})"]
        if not missing:
            return
        if time.monotonic() >= deadline:
            shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            raise KafkaNotReady(f"no leader after {timeout_s:.0f}s for {shown}")
        time.sleep(pause)
        pause = min(pause * 2, 1.0)
