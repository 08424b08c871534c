"""The campaign service: a Faust application with two agents.

- `link` consumes `fingerprint.activity` (partitioned by fingerprint) and keeps one
  `FingerprintLinker` per partition; each window it weighs goes to `link.evidence` as one
  envelope, empty or not, so the resolver's event-time clock advances when nothing is found.
- `resolve` consumes `link.evidence` (one partition) into the `CampaignResolver`; each campaign it
  changes goes to the compacted `campaigns` topic, and as a `campaign` detection to `detections`,
  which the alerter turns into one alert per campaign that updates as it grows.

Both follow the detection worker's rule: what they sent is awaited, their state is checkpointed
into a compacted topic of this app's own, and only then are their inputs acknowledged. A restart
resumes from the checkpoint and skips the inputs it covers. Re-sent shares and evidence are
harmless: the linker merges sharers by account and drops shares of windows it already weighed,
and the resolver's evidence merge is idempotent per window.

A message that cannot be decoded goes to the topic's DLQ with the reason, and the agent goes on.
"""

from __future__ import annotations

import asyncio
import pickle
import sys
import time
import zlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson

from extractguard import gc_policy, metrics
from extractguard.campaigns.linking import Evidence, FingerprintLinker
from extractguard.campaigns.resolver import Campaign, CampaignResolver
from extractguard.checkpoints import CheckpointStore
from extractguard.contracts.dead_letters import DeadLetter
from extractguard.contracts.findings import Feature, Finding
from extractguard.contracts.link_activity import Census, Share
from extractguard.contracts.link_activity import decode as decode_activity
from extractguard.contracts.rejection import InvalidMessage, Reason
from extractguard.contracts.topics import (
    CAMPAIGNS,
    DETECTIONS,
    FINGERPRINT_ACTIVITY,
    GATEWAY_EVENTS,
    LINK_EVIDENCE,
    contract,
    dlq_name,
)
from extractguard.faust_app import worker_app
from extractguard.logs import configure
from extractguard.settings import CampaignSettings, KafkaSettings

SERVICE = "campaigns"
log = configure(SERVICE)

settings = CampaignSettings()
kafka = KafkaSettings()
sources = contract(GATEWAY_EVENTS).topic.partitions
link_partitions = contract(FINGERPRINT_ACTIVITY).topic.partitions
CHECKPOINT_FORMAT = 3
RESOLVER_VERSION = "1"

app = worker_app(
    settings.app_id,
    kafka,
    web_port=settings.web_port,
    web_bind=settings.web_bind,
    session_timeout_s=settings.session_timeout_s,
    commit_interval_s=settings.commit_interval_s,
    consumer_max_fetch_size=16 * 1024 * 1024,
)


def _topic(name: str) -> faust.TopicT:
    return app.topic(name, value_type=bytes, key_type=bytes, key_serializer="raw")


activity_topic = _topic(FINGERPRINT_ACTIVITY)
evidence_topic = _topic(LINK_EVIDENCE)
campaigns_topic = _topic(CAMPAIGNS)
detections_topic = _topic(DETECTIONS)
dlqs = {name: _topic(dlq_name(name)) for name in (FINGERPRINT_ACTIVITY, LINK_EVIDENCE)}
linker_checkpoints = CheckpointStore(kafka, f"{settings.app_id}-linker-checkpoints", link_partitions)
resolver_checkpoints = CheckpointStore(kafka, f"{settings.app_id}-resolver-checkpoints", 1)


#: What a stage's `decode` may raise on a malformed message: the message goes to the DLQ.
_MALFORMED = (InvalidMessage, orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError)


class _Stage:
    """One agent's per-partition state, with the checkpoint-before-acknowledge bookkeeping and the
    consume loop both agents share: skip what the restored state covers, decode or dead-letter,
    handle, checkpoint when due."""

    def __init__(self, name: str, topic: str, store: CheckpointStore, make: Any) -> None:
        self.name = name
        self.topic = topic
        self.store = store
        self.make = make
        self.states: dict[int, Any] = {}
        self.offsets: dict[int, int] = {}  # partition -> last input offset the state holds
        self.unsent: dict[int, list[Awaitable[Any]]] = defaultdict(list)
        self.uncovered: dict[int, list[faust.EventT[bytes]]] = defaultdict(list)
        self.last_checkpoint: dict[int, float] = {}
        self.locks: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def state(self, partition: int) -> Any:
        if partition not in self.states:
            blob = await asyncio.to_thread(self.store.load, partition)
            state, offset = self.make(), -1
            if blob:
                fmt, restored, restored_offset = pickle.loads(zlib.decompress(blob))  # our own topic only
                if fmt == CHECKPOINT_FORMAT:
                    state, offset = restored, restored_offset
                    gc_policy.settle_restored_state()
            self.states[partition], self.offsets[partition] = state, offset
            self.last_checkpoint[partition] = time.monotonic()
            log.info("state_ready", stage=self.name, partition=partition, restored=bool(blob), last_offset=offset)
        return self.states[partition]

    def forget(self, partition: int) -> None:
        for book in (self.states, self.offsets, self.unsent, self.uncovered):
            book.pop(partition, None)

    async def checkpoint(self, partition: int) -> None:
        if partition not in self.states:
            return
        await asyncio.gather(*self.unsent[partition])
        self.unsent[partition].clear()
        blob = zlib.compress(
            pickle.dumps((CHECKPOINT_FORMAT, self.states[partition], self.offsets[partition]), protocol=5), 1
        )
        await asyncio.to_thread(self.store.save, partition, blob)
        self.last_checkpoint[partition] = time.monotonic()
        for event in self.uncovered[partition]:
            event.ack()
        self.uncovered[partition].clear()

    def due(self, partition: int) -> bool:
        return time.monotonic() - self.last_checkpoint.get(partition, 0) >= settings.checkpoint_interval_s

    async def consume(
        self,
        stream: faust.StreamT[bytes],
        decode: Callable[[bytes], Any],
        handle: Callable[[Any, Any, list[Awaitable[Any]]], Awaitable[None]],
    ) -> None:
        """`handle(state, decoded, pending)` appends what it sends to `pending`, awaited before the
        next checkpoint."""
        async for event in stream.noack().events():  # type: ignore[attr-defined]
            partition, offset = event.message.partition, event.message.offset
            async with self.locks[partition]:
                state = await self.state(partition)
                if offset <= self.offsets[partition]:
                    event.ack()  # the restored checkpoint already holds it
                    continue
                self.uncovered[partition].append(event)
                value = event.value or b""
                try:
                    decoded = decode(value)
                except _MALFORMED as error:
                    await self.dead_letter(partition, offset, value, error)
                else:
                    await handle(state, decoded, self.unsent[partition])
                self.offsets[partition] = offset
                if self.due(partition):
                    await self.checkpoint(partition)

    async def dead_letter(self, partition: int, offset: int, value: bytes, error: Exception) -> None:
        topic = self.topic
        if isinstance(error, InvalidMessage):  # the contract's own check: its reason as it gave it
            invalid = error
        else:
            reason = Reason.NOT_JSON if isinstance(error, orjson.JSONDecodeError) else Reason.SCHEMA_VIOLATION
            invalid = InvalidMessage(reason, f"{type(error).__name__}: {error}"[:500])
        reason = invalid.code
        dead = DeadLetter(
            original=value, error=invalid, service=SERVICE,
            source=f"{topic}[{partition}]@{offset}", source_topic=topic, source_partition=partition,
            source_offset=offset,
        )  # fmt: skip
        send = await dlqs[topic].send(value=value, headers=dead.headers(), force=True)  # type: ignore[arg-type]
        self.unsent[partition].append(send)
        metrics.DLQ_MESSAGES.labels(dlq_name(topic), str(reason)).inc()
        log.warning("invalid_message", topic=topic, partition=partition, offset=offset, reason=str(reason))


def _linker() -> FingerprintLinker:
    return FingerprintLinker(
        window_ms=settings.window_s * 1000, sources=sources, min_share=settings.min_share,
        min_surprise=settings.min_surprise,
    )  # fmt: skip


def _resolver() -> CampaignResolver:
    return CampaignResolver(
        min_members=settings.min_members, half_life_s=settings.half_life_s,
        dormant_after_s=settings.dormant_after_s, close_after_s=settings.close_after_s,
        resolve_interval_s=settings.resolve_interval_s,
    )  # fmt: skip


linking = _Stage("link", FINGERPRINT_ACTIVITY, linker_checkpoints, _linker)
resolving = _Stage("resolve", LINK_EVIDENCE, resolver_checkpoints, _resolver)


def _decode_shares(value: bytes) -> tuple[int, int, int, list[Share], Census | None]:
    envelope = decode_activity(value)
    return envelope.source, envelope.window_start_ms, envelope.window_end_ms, envelope.shares, envelope.census


@app.agent(activity_topic)
async def link(stream: faust.StreamT[bytes]) -> None:
    async def handle(linker: FingerprintLinker, decoded: Any, pending: list[Awaitable[Any]]) -> None:
        source, start, end, shares, census = decoded
        closed_before = linker.weighed_until_ms
        evidence = linker.add(source, start, end, shares, census)
        if linker.weighed_until_ms != closed_before:
            body = orjson.dumps(
                {"window_end_ms": linker.weighed_until_ms, "evidence": [e.to_record() for e in evidence]}
            )
            pending.append(await evidence_topic.send(value=body, force=True))
            metrics.LINK_EVIDENCE.inc(len(evidence))

    await linking.consume(stream, _decode_shares, handle)


def campaign_detection(campaign: Campaign, window_ms: int) -> dict[str, Any]:
    """A campaign change as a detection: the alerter keys one alert per campaign on it."""
    top = ", ".join(name for name, _w, _n in campaign.fingerprints[:3])
    finding = Finding(
        detector="campaign",
        detector_version=RESOLVER_VERSION,
        entity_kind="campaign",
        entity=campaign.campaign_id,
        score=campaign.score,
        threshold=settings.min_surprise,
        window_start_ms=campaign.updated_ms - window_ms,
        window_end_ms=campaign.updated_ms,
        severity="info" if campaign.status in ("closed", "merged") else campaign.severity,  # type: ignore[arg-type]
        summary=(
            f"campaign {campaign.campaign_id} ({campaign.status}): {len(campaign.members)} accounts linked, "
            f"{campaign.shaped_members} of them extraction-shaped; held together by {top}"
            + (f"; behind org {', '.join(campaign.fronting_orgs)}, which fronts them" if campaign.fronting_orgs else "")
            + (f"; merged into {campaign.merged_into}" if campaign.merged_into else "")
        ),
        features=[
            Feature("members", len(campaign.members)),
            Feature("shaped_members", campaign.shaped_members),
            Feature("fingerprints", len(campaign.fingerprints)),
            Feature("first_seen_ms", campaign.first_seen_ms),
            *(Feature(f"weight:{name}"[:64], weight) for name, weight, _n in campaign.fingerprints[:8]),
        ],
        accounts=campaign.members,
    )
    detection = finding.to_detection(0, campaign.updated_ms)
    if campaign.merged_into:
        detection["evidence"]["merged_into"] = campaign.merged_into  # the alerter folds its alert into it
    return detection


def _decode_evidence(value: bytes) -> tuple[int, list[Evidence]]:
    doc = orjson.loads(value)
    return int(doc["window_end_ms"]), [Evidence.from_record(r) for r in doc["evidence"]]


@app.agent(evidence_topic)
async def resolve(stream: faust.StreamT[bytes]) -> None:
    async def handle(resolver: CampaignResolver, decoded: Any, pending: list[Awaitable[Any]]) -> None:
        now_ms, evidence = decoded
        resolver.add_many(evidence)
        for campaign in resolver.resolve(now_ms):
            key = campaign.campaign_id.encode()
            record = orjson.dumps(campaign.to_record())
            pending.append(await campaigns_topic.send(key=key, value=record, force=True))
            detection = orjson.dumps(campaign_detection(campaign, settings.window_s * 1000))
            pending.append(await detections_topic.send(key=b"campaign:" + key, value=detection, force=True))
            metrics.CAMPAIGN_UPDATES.labels(campaign.status).inc()
            log.info("campaign", campaign=campaign.campaign_id, status=campaign.status, members=len(campaign.members))

    await resolving.consume(stream, _decode_evidence, handle)


@app.on_partitions_revoked.connect  # type: ignore[arg-type]
async def forget_revoked(_app: Any, revoked: set[Any], **_kwargs: Any) -> None:
    for tp in revoked:
        if tp.topic == FINGERPRINT_ACTIVITY:
            linking.forget(tp.partition)
        elif tp.topic == LINK_EVIDENCE:
            resolving.forget(tp.partition)


@app.timer(interval=settings.checkpoint_interval_s)
async def checkpoint_quiet_partitions() -> None:
    for stage in (linking, resolving):
        for partition in list(stage.uncovered):
            if stage.uncovered[partition] and stage.due(partition):
                async with stage.locks[partition]:
                    await stage.checkpoint(partition)


def run() -> None:
    sys.argv = ["extractguard-campaigns", "worker", "-l", settings.faust_log_level]
    gc_policy.for_streaming()
    linker_checkpoints.ensure_topic()
    resolver_checkpoints.ensure_topic()
    app.main()
