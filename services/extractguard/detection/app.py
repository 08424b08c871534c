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

So the committed offset never runs ahead of the checkpoint. A restarted worker restores the
engine from the checkpoint topic (see `checkpoints` for why not a Faust table), skips the
envelopes its checkpoint already covers, and processes the rest: each event counts once, and
its scores are those of an uninterrupted worker. Checkpoints are not taken at every window close:
a replay closes hundreds of windows a minute and each checkpoint pickles the whole engine; what a
crash makes a worker redo is re-sent with the same deterministic ids, which downstream dedups.

Faust costs ~200-280 us of CPU per Kafka message whatever it holds; envelopes of hundreds of
events make that a few microseconds per event.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable
from typing import Any

import faust
import orjson

from extractguard import gc_policy, metrics
from extractguard.checkpoints import CheckpointStore
from extractguard.contracts.intake import receive
from extractguard.contracts.link_activity import envelopes
from extractguard.contracts.rejection import InvalidRateGuard
from extractguard.contracts.schemas import validate_gateway_event
from extractguard.contracts.topics import DETECTIONS, FINGERPRINT_ACTIVITY, GATEWAY_EVENTS, contract, dlq_name
from extractguard.detection.engine import DetectionEngine
from extractguard.detection.verdicts import Verdicts
from extractguard.faust_app import worker_app
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

engines: dict[int, DetectionEngine] = {}
# Per partition: sends (detections, dead letters) not yet known to be acknowledged by Kafka, and
# envelopes processed since the last checkpoint, not yet acknowledged to Faust.
unsent: dict[int, list[Awaitable[Any]]] = defaultdict(list)
uncovered: dict[int, list[faust.EventT[bytes]]] = defaultdict(list)
last_checkpoint: dict[int, float] = {}
locks: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
guard = InvalidRateGuard(settings.max_invalid_fraction)


def _validate(line: bytes) -> dict[str, Any]:
    return validate_gateway_event(
        line, max_event_bytes=limits.max_event_bytes, max_clock_skew_s=limits.max_clock_skew_s
    )


async def engine_for(partition: int) -> DetectionEngine:
    engine = engines.get(partition)
    if engine is None:
        blob = await asyncio.to_thread(checkpoints.load, partition)
        engine = DetectionEngine.restore(blob, settings) if blob else DetectionEngine(settings)
        if blob:
            gc_policy.settle_restored_state()
        engine.attach_verdicts(verdicts)
        engines[partition] = engine
        last_checkpoint[partition] = time.monotonic()
        log.info("engine_ready", partition=partition, restored=bool(blob), last_offset=engine.last_offset)
    return engine


@app.on_partitions_revoked.connect  # type: ignore[arg-type]
async def forget_revoked(_app: Any, revoked: set[Any], **_kwargs: Any) -> None:
    # Another worker may own these now: it resumes from the checkpoint; our copy would go stale.
    for tp in revoked:
        if tp.topic == GATEWAY_EVENTS:
            engines.pop(tp.partition, None)
            unsent.pop(tp.partition, None)
            uncovered.pop(tp.partition, None)


async def checkpoint(partition: int) -> None:
    """Make everything processed so far durable, then let Faust commit it. Caller holds the lock."""
    engine = engines.get(partition)
    if engine is None:
        return
    await asyncio.gather(*unsent[partition])
    unsent[partition].clear()
    await asyncio.to_thread(checkpoints.save, partition, engine.checkpoint())
    last_checkpoint[partition] = time.monotonic()
    for event in uncovered[partition]:
        event.ack()
    uncovered[partition].clear()


async def process_envelope(partition: int, offset: int, value: bytes) -> bool:
    """Stages 1-3 for one envelope; True when a checkpoint is due. Caller holds the lock."""
    engine = await engine_for(partition)
    intake = receive(
        value, _validate, service=SERVICE, topic=GATEWAY_EVENTS, partition=partition, offset=offset, guard=guard
    )
    pending = unsent[partition]
    for dead in intake.dead:
        pending.append(await dlq_topic.send(value=dead.original, headers=dead.headers(), force=True))  # type: ignore[arg-type]
        metrics.DLQ_MESSAGES.labels(dlq_topic.get_topic_name(), str(dead.error.code)).inc()
        log.warning("invalid_event", topic=GATEWAY_EVENTS, partition=partition, offset=offset, line=dead.line,
                    reason=str(dead.error.code), detail=dead.error.detail)  # fmt: skip
    closed_before = engine.windows_closed
    detections = engine.process(intake.valid, partition, offset)
    metrics.DETECT_EVENTS.inc(len(intake.valid))
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
    return (
        len(uncovered[partition]) >= settings.checkpoint_every_envelopes
        or time.monotonic() - last_checkpoint[partition] >= settings.checkpoint_interval_s
    )


@app.agent(events_topic)
async def detect(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.noack().events():  # type: ignore[attr-defined]
        partition, offset = event.message.partition, event.message.offset
        async with locks[partition]:
            if offset <= (await engine_for(partition)).last_offset:
                event.ack()  # the restored checkpoint already holds it
                continue
            uncovered[partition].append(event)
            if await process_envelope(partition, offset, event.value or b""):
                await checkpoint(partition)


@app.timer(interval=settings.checkpoint_interval_s)
async def checkpoint_quiet_partitions() -> None:
    """A partition that went quiet still gets its last envelopes checkpointed and committed."""
    for partition in list(uncovered):
        if (
            uncovered[partition]
            and time.monotonic() - last_checkpoint.get(partition, 0) >= settings.checkpoint_interval_s
        ):
            async with locks[partition]:
                await checkpoint(partition)


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
