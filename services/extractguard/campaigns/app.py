"""The campaign service: a Faust application with two agents.

- `link` consumes `fingerprint.activity` (partitioned by fingerprint) and keeps one
  `FingerprintLinker` per partition; each window it weighs goes to `link.evidence` as one
  envelope, empty or not, so the resolver's event-time clock advances when nothing is found.
- `resolve` consumes `link.evidence` (one partition) into the `CampaignResolver`; each campaign it
  changes goes to the compacted `campaigns` topic, and as a `campaign` detection to `detections`,
  which the alerter turns into one alert per campaign that updates as it grows.

Both run through `checkpointed_stage.CheckpointedStage`, as the detection worker does: what they
sent is awaited, their state is checkpointed into a compacted topic of this app's own, and only
then are their inputs acknowledged. A restart resumes from the checkpoint and skips the inputs it
covers. Re-sent shares and evidence are
harmless: the linker merges sharers by account and drops shares of windows it already weighed,
and the resolver's evidence merge is idempotent per window.

A message that cannot be decoded goes to the topic's DLQ with the reason, and the agent goes on;
when nearly every message is invalid (more than `max_invalid_fraction` of the last
`invalid_window_messages`) the worker stops (exit status 3).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import faust
import orjson

from extractguard import gc_policy, metrics
from extractguard.campaigns.linking import Evidence, FingerprintLinker
from extractguard.campaigns.resolver import Campaign, CampaignResolver
from extractguard.campaigns.watchlist import named_in
from extractguard.checkpointed_stage import (
    CheckpointedStage,
    CheckpointPolicy,
    DeadLetterSender,
    Handler,
    PickledState,
    Position,
    Reader,
    StateCodec,
    StateStore,
    whole_message,
)
from extractguard.checkpoints import CheckpointStore
from extractguard.contracts.dead_letters import DeadLetter
from extractguard.contracts.findings import Feature, Finding
from extractguard.contracts.link_activity import Census, Share
from extractguard.contracts.link_activity import decode as decode_activity
from extractguard.contracts.link_evidence import decode as decode_evidence
from extractguard.contracts.link_evidence import encode as encode_evidence
from extractguard.contracts.rejection import InvalidRateGuard
from extractguard.contracts.topics import (
    CAMPAIGNS,
    DETECTIONS,
    FINGERPRINT_ACTIVITY,
    GATEWAY_EVENTS,
    LINK_EVIDENCE,
    contract,
    dlq_name,
)
from extractguard.faust_app import stop_on_too_many_invalid, worker_app
from extractguard.logs import configure
from extractguard.settings import CampaignSettings, KafkaSettings

SERVICE = "campaigns"
log = configure(SERVICE)

settings = CampaignSettings()
kafka = KafkaSettings()
sources = contract(GATEWAY_EVENTS).topic.partitions
link_partitions = contract(FINGERPRINT_ACTIVITY).topic.partitions
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


#: One `fingerprint.activity` envelope: (source partition, window start, window end, shares, census).
SharesEnvelope = tuple[int, int, int, list[Share], Census | None]
#: One `link.evidence` envelope: (the linker's event-time clock, the evidence it weighed).
EvidenceBatch = tuple[int, list[Evidence]]


def _decode_shares(value: bytes) -> SharesEnvelope:
    envelope = decode_activity(value)
    return envelope.source, envelope.window_start_ms, envelope.window_end_ms, envelope.shares, envelope.census


async def _link(
    linker: FingerprintLinker, envelopes: list[SharesEnvelope], _where: Position, pending: list[Awaitable[Any]]
) -> None:
    for source, start, end, shares, census in envelopes:
        closed_before = linker.weighed_until_ms
        evidence = linker.add(source, start, end, shares, census)
        if linker.weighed_until_ms != closed_before:
            body = encode_evidence(linker.weighed_until_ms, [e.to_record() for e in evidence])
            pending.append(await evidence_topic.send(value=body, force=True))
            metrics.LINK_EVIDENCE.inc(len(evidence))


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


def _decode_evidence(value: bytes) -> EvidenceBatch:
    envelope = decode_evidence(value)
    return envelope.window_end_ms, [Evidence.from_record(r) for r in envelope.evidence]


async def _resolve(
    resolver: CampaignResolver, batches: list[EvidenceBatch], _where: Position, pending: list[Awaitable[Any]]
) -> None:
    for now_ms, evidence in batches:
        resolver.add_many(evidence)
        for campaign in resolver.resolve(now_ms):
            key = campaign.campaign_id.encode()
            record = orjson.dumps(named_in(campaign.to_record()))
            pending.append(await campaigns_topic.send(key=key, value=record, force=True))
            detection = orjson.dumps(campaign_detection(campaign, settings.window_s * 1000))
            pending.append(await detections_topic.send(key=b"campaign:" + key, value=detection, force=True))
            metrics.CAMPAIGN_UPDATES.labels(campaign.status).inc()
            log.info("campaign", campaign=campaign.campaign_id, status=campaign.status, members=len(campaign.members))


def _dead_letter_sender(topic: str) -> DeadLetterSender:
    async def send(dead: DeadLetter) -> Awaitable[Any]:
        return await dlqs[topic].send(value=dead.original, headers=dead.headers(), force=True)  # type: ignore[arg-type]

    return send


# Checkpoint layouts of the linker's and the resolver's state, bumped when their pickled classes change.
LINKER_FORMAT = 5
RESOLVER_FORMAT = 5
S = TypeVar("S")
T = TypeVar("T")
_policy = CheckpointPolicy(settings.checkpoint_interval_s, settings.checkpoint_every_messages)


def _stage(
    name: str,
    topic: str,
    store: StateStore,
    codec: StateCodec[S],
    fresh: Callable[[], S],
    read: Reader[T],
    handle: Handler[S, T],
) -> CheckpointedStage[S, T]:
    """One of the worker's two checkpointed stages: what differs is its input and its state; the
    dead letters, the checkpoint pacing and the invalid-rate guard are the worker's."""
    return CheckpointedStage(
        name, service=SERVICE, topic=topic, dlq_topic=dlq_name(topic), store=store, codec=codec, fresh=fresh,
        read=read, handle=handle, send_dead_letter=_dead_letter_sender(topic), policy=_policy,
        guard=InvalidRateGuard(settings.max_invalid_fraction, window=settings.invalid_window_messages), log=log,
    )  # fmt: skip


linking: CheckpointedStage[FingerprintLinker, SharesEnvelope] = _stage(
    "link", FINGERPRINT_ACTIVITY, linker_checkpoints, PickledState(FingerprintLinker, LINKER_FORMAT), _linker,
    whole_message(_decode_shares, SERVICE), _link,
)  # fmt: skip
resolving: CheckpointedStage[CampaignResolver, EvidenceBatch] = _stage(
    "resolve", LINK_EVIDENCE, resolver_checkpoints, PickledState(CampaignResolver, RESOLVER_FORMAT), _resolver,
    whole_message(_decode_evidence, SERVICE), _resolve,
)  # fmt: skip


@app.agent(activity_topic)
async def link(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.noack().events():  # type: ignore[attr-defined]
        await stop_on_too_many_invalid(linking.process(event.message.partition, event.message.offset, event), log)


@app.agent(evidence_topic)
async def resolve(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.noack().events():  # type: ignore[attr-defined]
        await stop_on_too_many_invalid(resolving.process(event.message.partition, event.message.offset, event), log)


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
        await stage.checkpoint_quiet()


def run() -> None:
    sys.argv = ["extractguard-campaigns", "worker", "-l", settings.faust_log_level]
    gc_policy.for_streaming()
    linker_checkpoints.ensure_topic()
    resolver_checkpoints.ensure_topic()
    app.main()
