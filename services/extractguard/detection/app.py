"""The detection worker: a Faust application over `gateway.events`.

Stages for each Kafka message (one batch envelope of events of one partition):
1. split the envelope and validate every event; invalid ones go to `gateway.events.dlq` with
   their original bytes and source topic[partition] offset;
2. the partition's `DetectionEngine` counts the events into tumbling event-time windows per entity
   and feeds its detectors; closed windows are scored;
3. detections go to the `detections` topic keyed by entity, and each closed window's fingerprint
   shares to `fingerprint.activity`, re-keyed by fingerprint, for the campaign linker;
4. when `checkpoint_every_envelopes` / `checkpoint_interval_s` have passed, the detections and
   dead letters sent so far are awaited until Kafka has them, the engine is checkpointed (with
   the offset it covers) into this app's compacted checkpoint topic, and only then are the
   envelopes it covers acknowledged to Faust, which commits them.

Steps 1 and 4 are `checkpointed_stage.CheckpointedStage`'s, the one implementation the campaign
service's agents share; its docstring states the guarantees. So the committed offset never runs
ahead of the checkpoint. A restarted worker restores the
engine from the checkpoint topic (see `checkpoints` for why not a Faust table), skips the
envelopes its checkpoint already covers, and processes the rest: each event counts once, and
its scores are those of an uninterrupted worker. Checkpoints are not taken at every window close:
a replay closes hundreds of windows a minute and each checkpoint pickles the whole engine; what a
crash makes a worker redo is re-sent with the same deterministic ids, which downstream dedups.

When nearly every event is invalid (more than `max_invalid_fraction` of the last 1,000), the worker
stops (exit status 3) rather than route all traffic to the DLQ.

Faust costs ~200-280 us of CPU per Kafka message whatever it holds; envelopes of hundreds of
events make that a few microseconds per event.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable
from typing import Any

import faust
import orjson

from extractguard import gc_policy, metrics
from extractguard.checkpointed_stage import CheckpointedStage, CheckpointPolicy, PickledState, Position, Read
from extractguard.checkpoints import CheckpointStore
from extractguard.contracts.dead_letters import DeadLetter
from extractguard.contracts.intake import receive
from extractguard.contracts.link_activity import envelopes
from extractguard.contracts.rejection import InvalidRateGuard
from extractguard.contracts.schemas import validate_gateway_event
from extractguard.contracts.topics import DETECTIONS, FINGERPRINT_ACTIVITY, GATEWAY_EVENTS, contract, dlq_name
from extractguard.detection.engine import CHECKPOINT_FORMAT as ENGINE_CHECKPOINT_FORMAT
from extractguard.detection.engine import DetectionEngine
from extractguard.detection.verdicts import Verdicts
from extractguard.faust_app import stop_on_too_many_invalid, worker_app
from extractguard.logs import configure
from extractguard.settings import DetectionSettings, IngestSettings, KafkaSettings

SERVICE = "detect"
log = configure(SERVICE)

settings = DetectionSettings()
limits = IngestSettings()
kafka = KafkaSettings()
partitions = contract(GATEWAY_EVENTS).topic.partitions
link_partitions = contract(FINGERPRINT_ACTIVITY).topic.partitions

app = worker_app(
    settings.app_id,
    kafka,
    web_port=settings.web_port,
    web_bind=settings.web_bind,
    session_timeout_s=settings.session_timeout_s,
    commit_interval_s=settings.commit_interval_s,
    topic_partitions=partitions,
    table_cleanup_interval=60.0,
)

events_topic = app.topic(GATEWAY_EVENTS, value_type=bytes, key_type=bytes, key_serializer="raw")
detections_topic = app.topic(DETECTIONS, value_type=bytes, key_type=bytes, key_serializer="raw")
activity_topic = app.topic(FINGERPRINT_ACTIVITY, value_type=bytes, key_type=bytes, key_serializer="raw")
dlq_topic = app.topic(dlq_name(GATEWAY_EVENTS), value_type=bytes, key_type=bytes, key_serializer="raw")
# One checkpoint per partition of gateway.events, in a compacted topic of this app's own.
checkpoints = CheckpointStore(kafka, f"{settings.app_id}-detector-checkpoints", partitions)

# Verdicts on accounts, tailed from account.labels by every worker (see `verdicts`).
verdicts = Verdicts(kafka, settings.learn_from_sources, group_id=f"{settings.app_id}-verdicts")

guard = InvalidRateGuard(settings.max_invalid_fraction)


def _validate(line: bytes) -> dict[str, Any]:
    return validate_gateway_event(
        line, max_event_bytes=limits.max_event_bytes, max_clock_skew_s=limits.max_clock_skew_s
    )


def read_envelope(value: bytes, where: Position) -> Read[dict[str, Any]]:
    """Stage 1: each line of the envelope validated; the refused ones as dead letters."""
    intake = receive(value, _validate, service=SERVICE, topic=where.topic, partition=where.partition,
                     offset=where.offset)  # fmt: skip
    return Read(items=intake.valid, dead=intake.dead)


async def handle_events(
    engine: DetectionEngine, events: list[dict[str, Any]], where: Position, pending: list[Awaitable[Any]]
) -> None:
    """Stages 2-3 for one envelope's valid events."""
    partition, offset = where.partition, where.offset
    closed_before = engine.windows_closed
    detections = engine.process(events, partition, offset)
    metrics.DETECT_EVENTS.inc(len(events))
    for detection in detections:
        metrics.DETECTIONS.labels(detection["detector"], detection["severity"]).inc()
        key = f"{detection['entity_kind']}:{detection['entity']}".encode()
        # force=True: sent now. Faust would otherwise hold it until this event is acked, which
        # here waits for the checkpoint, which waits for this send.
        pending.append(await detections_topic.send(key=key, value=orjson.dumps(detection), force=True))
    if detections:
        log.info("detections_emitted", partition=partition, offset=offset, count=len(detections))
    # The repartition by fingerprint: every partition of fingerprint.activity hears of every window.
    for start, end, shares, census in engine.take_link_shares():
        for link_partition, body in envelopes(partition, start, end, shares, census, link_partitions).items():
            pending.append(await activity_topic.send(value=body, partition=link_partition, force=True))
    if engine.windows_closed != closed_before:
        metrics.DETECT_WINDOWS_CLOSED.inc(engine.windows_closed - closed_before)


async def send_dead_letter(dead: DeadLetter) -> Awaitable[Any]:
    return await dlq_topic.send(value=dead.original, headers=dead.headers(), force=True)  # type: ignore[arg-type]


detection_stage: CheckpointedStage[DetectionEngine, dict[str, Any]] = CheckpointedStage(
    "detect",
    service=SERVICE,
    topic=GATEWAY_EVENTS,
    dlq_topic=dlq_name(GATEWAY_EVENTS),
    store=checkpoints,
    # The engine's own layout version: the same bytes `DetectionEngine.checkpoint` writes.
    codec=PickledState(DetectionEngine, ENGINE_CHECKPOINT_FORMAT),
    fresh=lambda: DetectionEngine(settings),
    prepare=lambda engine: engine.attach_verdicts(verdicts),
    read=read_envelope,
    handle=handle_events,
    send_dead_letter=send_dead_letter,
    policy=CheckpointPolicy(settings.checkpoint_interval_s, settings.checkpoint_every_envelopes),
    guard=guard,
    log=log,
)


@app.on_partitions_revoked.connect  # type: ignore[arg-type]
async def forget_revoked(_app: Any, revoked: set[Any], **_kwargs: Any) -> None:
    # Another worker may own these now: it resumes from the checkpoint; our copy would go stale.
    for tp in revoked:
        if tp.topic == GATEWAY_EVENTS:
            detection_stage.forget(tp.partition)


@app.agent(events_topic)
async def detect(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.noack().events():  # type: ignore[attr-defined]
        await stop_on_too_many_invalid(
            detection_stage.process(event.message.partition, event.message.offset, event), log
        )


@app.timer(interval=settings.checkpoint_interval_s)
async def checkpoint_quiet_partitions() -> None:
    """A partition that went quiet still gets its last envelopes checkpointed and committed."""
    await detection_stage.checkpoint_quiet()


def run() -> None:
    # Faust's own CLI parses sys.argv; give it the worker command whatever we were started as.
    sys.argv = ["extractguard-detect", "worker", "-l", settings.faust_log_level]
    gc_policy.for_streaming()
    checkpoints.ensure_topic()
    verdicts.start()
    try:
        app.main()
    finally:
        verdicts.stop()
