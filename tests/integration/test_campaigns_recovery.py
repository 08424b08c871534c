"""The campaign service SIGKILLed mid-stream and restarted ends with exactly the campaigns one
uninterrupted linker and resolver compute from the same input.

The fingerprint shares come from in-process detection engines over a small scenario and are
produced to `fingerprint.activity`; the service links them and resolves campaigns. It is killed
just after it started on the second part of the shares, when its last checkpoint is older than
some of what it handled, then restarted. It would fail if the service acknowledged inputs before
a checkpoint covered them (the restored linker would miss the shares of the window it had open,
and its evidence would differ), or if re-sent evidence counted twice in the resolver.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from extractguard.campaigns.linking import Evidence, FingerprintLinker
from extractguard.campaigns.resolver import CampaignResolver
from extractguard.contracts.link_activity import decode, envelopes
from extractguard.contracts.link_evidence import encode as encode_evidence
from extractguard.contracts.topics import CAMPAIGNS, DETECTIONS, FINGERPRINT_ACTIVITY, LINK_EVIDENCE, contract
from extractguard.demo.processes import Service, wait_group_stable
from extractguard.detection.engine import DetectionEngine
from extractguard.gateway.events import build_event
from extractguard.gateway.partitioning import partition_for
from extractguard.kafka_offsets import end_offsets, start_group_at_end
from extractguard.settings import CampaignSettings, DetectionSettings, KafkaSettings
from extractguard.simulator.scenario import CampaignSpec, OrganicSpec, Scenario
from extractguard.simulator.traffic import generate
from tests.integration.conftest import free_port, read_from

pytestmark = pytest.mark.kafka

SOURCES = contract("gateway.events").topic.partitions
LINK_PARTITIONS = contract(FINGERPRINT_ACTIVITY).topic.partitions


def _shares() -> list[tuple[int, bytes]]:
    """The `fingerprint.activity` envelopes detection workers send for the scenario, in order."""
    start_ms = (int(time.time() * 1000) // 60_000 - 180) * 60_000
    scenario = Scenario(
        organic=OrganicSpec(accounts=200),
        campaigns=[CampaignSpec(name="c", accounts=100, start_s=600)],
        duration_s=1500,
        seed=5,
    )
    events = [build_event(request, b"k") for _, request in generate(scenario, start_ms)]
    out: list[tuple[int, bytes]] = []
    for source in range(SOURCES):
        engine = DetectionEngine(DetectionSettings())
        mine = [e for e in events if partition_for(e["account_id"], SOURCES) == source]
        for i in range(0, len(mine), 50):
            engine.process(mine[i : i + 50], source)
            for start, end, shares, census in engine.take_link_shares():
                out += envelopes(source, start, end, shares, census, LINK_PARTITIONS).items()
    # As the workers send them: window by window, every source's share of a window near the others'.
    return sorted(out, key=lambda share: decode(share[1]).window_end_ms)


def _linked(shares: list[tuple[int, bytes]], settings: CampaignSettings) -> set[bytes]:
    """The evidence envelopes one uninterrupted linker per partition sends."""
    linkers = [
        FingerprintLinker(window_ms=settings.window_s * 1000, sources=SOURCES, min_share=settings.min_share,
                          min_surprise=settings.min_surprise)
        for _ in range(LINK_PARTITIONS)
    ]  # fmt: skip
    bodies: set[bytes] = set()
    for partition, body in shares:
        envelope, linker = decode(body), linkers[partition]
        before = linker.weighed_until_ms
        evidence = linker.add(envelope.source, envelope.window_start_ms, envelope.window_end_ms, envelope.shares,
                              envelope.census)  # fmt: skip
        if linker.weighed_until_ms != before:
            bodies.add(encode_evidence(linker.weighed_until_ms, [e.to_record() for e in evidence]))
    return bodies


def _resolved(evidence_bodies: list[bytes], settings: CampaignSettings) -> dict[str, tuple[str, list[str]]]:
    """Campaign id -> (status, members) of one uninterrupted resolver fed these envelopes in order."""
    resolver = CampaignResolver(
        min_members=settings.min_members, half_life_s=settings.half_life_s,
        dormant_after_s=settings.dormant_after_s, close_after_s=settings.close_after_s,
        resolve_interval_s=settings.resolve_interval_s,
    )  # fmt: skip
    latest: dict[str, tuple[str, list[str]]] = {}
    for body in evidence_bodies:
        doc = orjson.loads(body)
        resolver.add_many([Evidence.from_record(r) for r in doc["evidence"]])
        for campaign in resolver.resolve(int(doc["window_end_ms"])):
            latest[campaign.campaign_id] = (campaign.status, sorted(campaign.members))
    return latest


def _committed(kafka: KafkaSettings, group: str) -> dict[tuple[str, int], int]:
    consumer = Consumer({**kafka.client_config(), "group.id": group})
    wanted = [TopicPartition(FINGERPRINT_ACTIVITY, p) for p in range(LINK_PARTITIONS)]
    wanted.append(TopicPartition(LINK_EVIDENCE, 0))
    committed = consumer.committed(wanted, timeout=10)
    consumer.close()
    return {(tp.topic, tp.partition): tp.offset for tp in committed}


def _ends(kafka: KafkaSettings) -> dict[tuple[str, int], int]:
    return {(topic, p): end for topic in (FINGERPRINT_ACTIVITY, LINK_EVIDENCE)
            for p, end in end_offsets(kafka, topic).items()}  # fmt: skip


def _wait_caught_up(kafka: KafkaSettings, group: str, service: Service, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        # The linker's sends move link.evidence's end while we wait: read both again each round.
        target = _ends(kafka)
        if _committed(kafka, group) == target:
            return
        assert service.alive(), service.tail()
        assert time.monotonic() < deadline, f"not caught up: {_committed(kafka, group)} vs {target}"
        time.sleep(0.5)


def _produce(kafka: KafkaSettings, shares: list[tuple[int, bytes]]) -> None:
    producer = Producer({**kafka.client_config(), "enable.idempotence": True, "acks": "all"})
    for partition, body in shares:
        producer.produce(FINGERPRINT_ACTIVITY, value=body, partition=partition)
    assert producer.flush(30) == 0


def _records(messages: list[Any]) -> list[dict[str, Any]]:
    return [orjson.loads(m.value()) for m in messages]


def test_killed_campaign_service_resumes_with_the_same_campaigns(
    kafka: KafkaSettings, services: list[Service], tmp_path: Path, run_id: str
) -> None:
    settings = CampaignSettings()
    shares = _shares()
    expected_evidence = _linked(shares, settings)
    assert expected_evidence, "the scenario must produce link evidence for this test to mean anything"

    app_id = f"extractguard-campaigns-test-{run_id}"
    start_group_at_end(kafka, app_id, [FINGERPRINT_ACTIVITY, LINK_EVIDENCE])
    evidence_start, campaigns_start = end_offsets(kafka, LINK_EVIDENCE), end_offsets(kafka, CAMPAIGNS)
    detections_start = end_offsets(kafka, DETECTIONS)
    # Frequent commits, checkpoints every 3 s: acknowledging before a checkpoint would let the
    # committed offset run ahead of it.
    env = {"EXTRACTGUARD_CAMPAIGNS_APP_ID": app_id, "EXTRACTGUARD_CAMPAIGNS_WEB_PORT": str(free_port()),
           "EXTRACTGUARD_CAMPAIGNS_COMMIT_INTERVAL_S": "0.2", "EXTRACTGUARD_CAMPAIGNS_CHECKPOINT_INTERVAL_S": "3",
           "EXTRACTGUARD_CAMPAIGNS_FAUST_LOG_LEVEL": "info"}  # fmt: skip
    worker = Service("campaigns", env, tmp_path)
    services.append(worker)
    half, three_quarters = len(shares) // 2, 3 * len(shares) // 4
    worker.start()
    wait_group_stable(kafka, app_id, 120, worker)

    _produce(kafka, shares[:half])
    _wait_caught_up(kafka, app_id, worker)
    evidence_before = sum(end_offsets(kafka, LINK_EVIDENCE).values())
    _produce(kafka, shares[half:three_quarters])
    deadline = time.monotonic() + 60
    while sum(end_offsets(kafka, LINK_EVIDENCE).values()) == evidence_before:  # it is at work on them
        assert time.monotonic() < deadline and worker.alive(), worker.tail()
        time.sleep(0.05)
    worker.kill()  # SIGKILL, mid-way through the second part
    worker.start()
    _produce(kafka, shares[three_quarters:])
    _wait_caught_up(kafka, app_id, worker)
    time.sleep(1)
    worker.stop()

    log = worker.log_path.read_text()
    assert '"restored": true' in log, "the restarted service must resume from its checkpoints"
    evidence_bodies = [m.value() for m in read_from(kafka, LINK_EVIDENCE, evidence_start, 10**9, timeout_s=10)]
    assert set(evidence_bodies) == expected_evidence, "the linker's evidence differs from an uninterrupted one's"
    in_topic_order = _resolved(evidence_bodies, settings)
    once_each = _resolved(list(dict.fromkeys(evidence_bodies)), settings)
    assert in_topic_order == once_each, "re-sent evidence changed the campaigns"
    assert in_topic_order, "the scenario must produce a campaign for this test to mean anything"

    latest: dict[str, tuple[str, list[str]]] = {}
    for record in _records(read_from(kafka, CAMPAIGNS, campaigns_start, 10**9, timeout_s=10)):
        latest[record["campaign_id"]] = (record["status"], sorted(record["members"]))
    assert latest == in_topic_order
    campaign_detections = {
        d["entity"] for d in _records(read_from(kafka, DETECTIONS, detections_start, 10**9, timeout_s=10))
        if d["detector"] == "campaign"
    }  # fmt: skip
    assert campaign_detections == set(in_topic_order)
