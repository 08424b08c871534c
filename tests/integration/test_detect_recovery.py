"""A detection worker SIGKILLed mid-stream and restarted emits exactly the detections, with the
same scores, that one uninterrupted engine computes from the same events.

It also fails if the worker acknowledges envelopes before a checkpoint covers them (the restored
engine then misses the events of the window that was open when it died), and it caught
faust-streaming/faust#596 (a gap in offsets after a table's changelog recovery, after which the
partition is never committed again) when the checkpoints still lived in a Faust table.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from extractguard.contracts.topics import DETECTIONS, GATEWAY_EVENTS
from extractguard.demo.processes import Service, wait_group_stable
from extractguard.detection.engine import DetectionEngine
from extractguard.gateway.events import build_event
from extractguard.gateway.partitioning import partition_for
from extractguard.gateway.publisher import EventPublisher
from extractguard.kafka_offsets import end_offsets, start_group_at_end
from extractguard.settings import DetectionSettings, KafkaSettings, PublisherSettings
from extractguard.simulator.scenario import CampaignSpec, OrganicSpec, Scenario
from extractguard.simulator.traffic import generate
from tests.integration.conftest import free_port, read_from

pytestmark = pytest.mark.kafka

PARTITIONS = 4


def _committed(kafka: KafkaSettings, group: str) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**kafka.client_config(), "group.id": group})
    tps = consumer.committed([TopicPartition(GATEWAY_EVENTS, p) for p in range(PARTITIONS)], timeout=10)
    consumer.close()
    return {tp.partition: tp.offset for tp in tps}


def _wait_caught_up(kafka: KafkaSettings, group: str, service: Service, timeout_s: float = 120) -> None:
    target = end_offsets(kafka, GATEWAY_EVENTS)
    deadline = time.monotonic() + timeout_s
    while _committed(kafka, group) != target:
        assert service.alive(), service.tail()
        assert time.monotonic() < deadline, f"worker did not catch up: {_committed(kafka, group)} vs {target}"
        time.sleep(0.5)


def test_killed_worker_resumes_with_the_same_scores(
    kafka: KafkaSettings, services: list[Service], tmp_path: Path, run_id: str
) -> None:
    start_ms = (int(time.time() * 1000) // 60_000 - 180) * 60_000  # three hours ago, on a minute
    scenario = Scenario(
        organic=OrganicSpec(accounts=200),
        campaigns=[CampaignSpec(name="c", accounts=100, start_s=600)],
        duration_s=1500,
        seed=5,
    )
    events = [build_event(request, b"k") for _, request in generate(scenario, start_ms)]
    settings = DetectionSettings()
    expected: dict[str, float] = {}
    for partition in range(PARTITIONS):
        mine = [e for e in events if partition_for(e["account_id"], PARTITIONS) == partition]
        for detection in DetectionEngine(settings).process(mine, partition):
            expected[detection["detection_id"]] = detection["score"]
    assert expected, "the scenario must produce detections for this test to mean anything"

    app_id = f"extractguard-detect-test-{run_id}"
    start_group_at_end(kafka, app_id, [GATEWAY_EVENTS])
    detections_start = end_offsets(kafka, DETECTIONS)
    # Frequent commits: were the worker to acknowledge envelopes before a checkpoint covers them,
    # the committed offset would run ahead of the checkpoint and the open window would lose them.
    env = {"EXTRACTGUARD_DETECT_APP_ID": app_id, "EXTRACTGUARD_DETECT_WEB_PORT": str(free_port()),
           "EXTRACTGUARD_DETECT_COMMIT_INTERVAL_S": "0.2", "EXTRACTGUARD_DETECT_FAUST_LOG_LEVEL": "info"}  # fmt: skip
    worker = Service("detect", env, tmp_path)
    services.append(worker)
    campaign_ms = start_ms + int(scenario.campaigns[0].start_s * 1000)
    phases = [
        [e for e in events if e["event_time_ms"] < campaign_ms - 60_000],
        # up to the middle of the campaign's first minute: that window is open when the worker dies
        [e for e in events if campaign_ms - 60_000 <= e["event_time_ms"] < campaign_ms + 30_000],
        [e for e in events if e["event_time_ms"] >= campaign_ms + 30_000],
    ]
    small = PublisherSettings(envelope_max_events=10, linger_ms=0)
    worker.start()
    wait_group_stable(kafka, app_id, 120, worker)
    for phase, batch in enumerate(phases):
        with EventPublisher(kafka, small, background_linger=False) as publisher:
            publisher.publish_many(batch)
        _wait_caught_up(kafka, app_id, worker)
        if phase == 1:
            time.sleep(1)  # a few more commits, no new window closed
            worker.kill()  # SIGKILL: the campaign's first window dies with the process
            worker.start()
    time.sleep(2)
    worker.stop()

    emitted: dict[str, set[float]] = {}
    window = range(start_ms, start_ms + int(scenario.duration_s * 1000) + 1)
    for message in read_from(kafka, DETECTIONS, detections_start, expect=10**9, timeout_s=10):
        detection = orjson.loads(message.value())
        if detection["window_start_ms"] in window:
            emitted.setdefault(detection["detection_id"], set()).add(detection["score"])
    log = worker.log_path.read_text()
    assert '"restored": true' in log, "the restarted worker must resume from its checkpoint"
    assert all(len(scores) == 1 for scores in emitted.values()), "a replayed detection changed its score"
    assert {detection_id: scores.pop() for detection_id, scores in emitted.items()} == expected
