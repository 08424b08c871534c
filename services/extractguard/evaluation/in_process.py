"""Replay a scenario straight into the detection state, in this process: no Kafka, no services.

For iterating on detection: the same stages as the pipeline, called directly and in event-time
order — one `DetectionEngine` per partition of `gateway.events` (accounts placed as the producers
place them), the closed windows' fingerprint shares to one `FingerprintLinker` per partition of
`fingerprint.activity`, their evidence to the `CampaignResolver`, and every detection (the
engines' and the resolver's campaign detections) through the alerter's `AlertBook` with
`renotify_s=0` — then scored exactly as `make eval` scores. No timing of the real pipeline
(partitions drifting apart, checkpoints, restarts) is reproduced, so figures can differ a little
from `make eval`'s; `make eval` stays the measurement.

    .venv/bin/extractguard eval --in-process --scenario hydra --hours 12
    .venv/bin/extractguard eval --in-process --stream events.ndjson --labels labels.jsonl

or from Python (a notebook, a test):

    from extractguard.evaluation.in_process import replay_in_process
    from extractguard.evaluation.sources import SimulatedReplay
    score = replay_in_process(SimulatedReplay(scenario, start_ms)).score
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from extractguard.alerting.book import AlertBook
from extractguard.alerting.rules import DEFAULT_RULES, OPTIONAL_RULES
from extractguard.campaigns.linking import Evidence, FingerprintLinker
from extractguard.campaigns.resolver import CampaignResolver
from extractguard.campaigns.watchlist import named_in
from extractguard.contracts.link_activity import Census, Share, partition_of
from extractguard.contracts.topics import FINGERPRINT_ACTIVITY, GATEWAY_EVENTS, contract
from extractguard.detection.engine import DetectionEngine
from extractguard.evaluation.ablation import FAMILIES, Withheld, ablation_rows
from extractguard.evaluation.enforcement_replay import RequestLog, score_enforcement
from extractguard.evaluation.scorecard import Scorecard
from extractguard.evaluation.scoring import ScenarioScore, Truth, score_resolved_campaigns, score_scenario
from extractguard.evaluation.sources import Replay
from extractguard.gateway.partitioning import partition_for
from extractguard.settings import AlerterSettings, CampaignSettings, DetectionSettings, ModelLaunch

#: Events handed to an engine at a time, as an envelope of the SDK would carry them.
ENVELOPE_EVENTS = 500


@dataclass
class InProcessResult:
    score: ScenarioScore
    events: int
    wall_seconds: float
    #: Every detection of the run (the engines' and the resolver's), in the order they were made.
    detections: list[dict[str, Any]] = field(default_factory=list)
    #: Every alert delivery whose accounts differ from its key's previous one (what the score reads).
    alerts: list[dict[str, Any]] = field(default_factory=list)
    #: The resolver's latest record of every campaign.
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Every record the resolver published, in order (what lands in `campaigns`, version by version).
    campaign_records: list[dict[str, Any]] = field(default_factory=list)


class _Pipeline:
    def __init__(self, detection: DetectionSettings, linking: CampaignSettings, alerting: AlerterSettings) -> None:
        # Imported here: the campaign service's module builds its Faust app (connecting to nothing).
        from extractguard.campaigns.app import campaign_detection

        self.campaign_detection = campaign_detection
        self.partitions = contract(GATEWAY_EVENTS).topic.partitions
        self.link_partitions = contract(FINGERPRINT_ACTIVITY).topic.partitions
        self.engines = [DetectionEngine(detection) for _ in range(self.partitions)]
        self.linkers = [
            FingerprintLinker(
                window_ms=linking.window_s * 1000, sources=self.partitions, min_share=linking.min_share,
                min_surprise=linking.min_surprise,
            )
            for _ in range(self.link_partitions)
        ]  # fmt: skip
        self.resolver = CampaignResolver(
            min_members=linking.min_members, half_life_s=linking.half_life_s,
            dormant_after_s=linking.dormant_after_s, close_after_s=linking.close_after_s,
            resolve_interval_s=linking.resolve_interval_s,
        )  # fmt: skip
        rules = DEFAULT_RULES + tuple(r for r in OPTIONAL_RULES if r.name in alerting.extra_rules)
        self.book = AlertBook(rules, renotify_s=0)
        self.window_ms = linking.window_s * 1000
        self.detections: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []
        self.campaigns: dict[str, dict[str, Any]] = {}
        # Every record the resolver published, in order: what the enforcer reads on `campaigns`
        # (every fingerprint and its sharers; a campaign detection restates only the heaviest).
        self.campaign_records: list[dict[str, Any]] = []
        self._last_accounts: dict[str, list[str]] = {}

    def feed(self, partition: int, events: list[dict[str, Any]]) -> None:
        engine = self.engines[partition]
        for detection in engine.process(events, partition):
            self._detected(detection)
        for start, end, shares, census in engine.take_link_shares():
            self._link(partition, start, end, shares, census)
        # Grouped rules (one alert per actor) deliver after the batch is folded, as the alerter does.
        for alert in self.book.due_updates(int(events[-1]["event_time_ms"])):
            self._record(alert)

    def _link(self, source: int, start: int, end: int, shares: list[Share], census: Census) -> None:
        grouped: list[list[Share]] = [[] for _ in range(self.link_partitions)]
        for share in shares:
            grouped[partition_of(share[0], self.link_partitions)].append(share)
        for linker, listed in zip(self.linkers, grouped, strict=True):
            before = linker.weighed_until_ms
            evidence = linker.add(source, start, end, listed, census)
            if linker.weighed_until_ms != before:
                self._resolve(linker.weighed_until_ms, evidence)

    def _resolve(self, now_ms: int, evidence: list[Evidence]) -> None:
        self.resolver.add_many(evidence)
        for campaign in self.resolver.resolve(now_ms):
            self.campaigns[campaign.campaign_id] = record = named_in(campaign.to_record())
            self.campaign_records.append(record)
            self._detected(self.campaign_detection(campaign, self.window_ms))

    def _detected(self, detection: dict[str, Any]) -> None:
        self.detections.append(detection)
        for alert in self.book.observe(detection, now_ms=int(detection["window_end_ms"])):
            self._record(alert)

    def _record(self, alert: dict[str, Any]) -> None:
        # A delivery naming the same accounts as its key's previous one changes no score.
        if self._last_accounts.get(alert["dedup_key"]) != alert["accounts"]:
            self._last_accounts[alert["dedup_key"]] = alert["accounts"]
            self.alerts.append(alert)


def replay_in_process(
    replay: Replay,
    detection: DetectionSettings | None = None,
    linking: CampaignSettings | None = None,
    alerting: AlerterSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> InProcessResult:
    """Run `replay` through the detection state in this process and score it (see the module doc)."""
    detection = detection or DetectionSettings()
    if replay.launches:
        announced = [ModelLaunch(model=launch["model"], at_ms=launch["at_ms"]) for launch in replay.launches]
        detection = detection.model_copy(update={"launches": announced})
    pipeline = _Pipeline(detection, linking or CampaignSettings(), alerting or AlerterSettings())
    truth = Truth(kinds=dict(replay.kinds))
    requests = RequestLog()
    envelopes: list[list[dict[str, Any]]] = [[] for _ in range(pipeline.partitions)]
    began = last = time.monotonic()
    count = 0
    for row in replay.events():
        event = row.event
        tokens = event.get("output_tokens")
        truth.observe(
            row.account_id, row.label, row.klass, row.campaign, event["event_time_ms"],
            tokens if isinstance(tokens, int) else 0,
        )  # fmt: skip
        requests.observe(row.account_id, row.label, event["event_time_ms"], event)
        partition = partition_for(row.account_id, pipeline.partitions)
        envelope = envelopes[partition]
        envelope.append(event)
        if len(envelope) >= ENVELOPE_EVENTS:
            pipeline.feed(partition, envelope)
            envelopes[partition] = []
        count += 1
        if progress is not None and time.monotonic() - last >= 10:
            last = time.monotonic()
            progress(f"  {count:,} events, {count / (last - began):,.0f}/s, {len(pipeline.alerts):,} alert changes")
    for partition, envelope in enumerate(envelopes):
        if envelope:
            pipeline.feed(partition, envelope)
    score = score_scenario(replay.name, replay.duration_s, truth, pipeline.alerts)
    score_resolved_campaigns(score, truth, list(pipeline.campaigns.values()))
    score_enforcement(score, requests, pipeline.detections, truth.campaign, pipeline.campaign_records)
    wall = time.monotonic() - began
    score.extra.update(
        {
            "detections": dict(Counter(f"{d['detector']}/{d['severity']}" for d in pipeline.detections)),
            "start_ms": replay.start_ms,
            "seed": replay.seed,
            "in_process": True,
            "wall_seconds": round(wall, 1),
        }
    )
    return InProcessResult(
        score, count, wall, pipeline.detections, pipeline.alerts, pipeline.campaigns, pipeline.campaign_records
    )


def run_in_process(
    replays: list[Replay],
    out_dir: Path,
    scale: str,
    progress: Callable[[str], None],
    ablation: Callable[[], list[Replay]] | None = None,
) -> Scorecard:
    """Every replay in process, one after another; writes the scorecard (JSON and Markdown) to `out_dir`.

    With `ablation` (a maker of the same replays afresh), each is replayed again once per family of
    evidence withheld (`evaluation.ablation`), and the scorecard gains the ablation view.
    """
    began = time.monotonic()
    card = Scorecard(scale=f"{scale}, in process", generated_at=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    card.command = "extractguard eval --in-process"
    card.pipeline = "the detection engines, linker, resolver and alert book in one process (no Kafka)"
    card.detection_settings = DetectionSettings().model_dump(include={"window_s", "burst_threshold", "drift_delta"})
    records = out_dir / "campaigns"
    records.mkdir(parents=True, exist_ok=True)
    for number, replay in enumerate(replays, 1):
        progress(f"scenario {number}/{len(replays)}: {replay.name} - {replay.description}")
        result = replay_in_process(replay, progress=progress)
        # The resolver's latest record of each campaign: what `indicators export --record` reads.
        (records / f"{replay.name}.jsonl").write_bytes(
            b"".join(orjson.dumps(r) + b"\n" for r in result.campaigns.values())
        )
        rate = result.events / max(result.wall_seconds, 1e-9)
        progress(f"  {result.events:,} events in {result.wall_seconds:.0f}s ({rate:,.0f}/s)")
        for c in result.score.campaigns:
            when = "never" if c.seconds_to_detect is None else f"after {c.seconds_to_detect:.0f}s"
            progress(f"  campaign {c.name}: detected {when}, member recall {c.member_recall:.1%}")
        card.scenarios.append(result.score)
        if ablation is not None:
            card.ablation += ablation_rows(result.score, None)
    if ablation is not None:
        for family in FAMILIES:
            for replay in ablation():
                progress(f"ablation: {replay.name} with {family} withheld")
                withheld = replay_in_process(Withheld(replay, family)).score
                card.ablation += ablation_rows(withheld, family)
                for row in card.ablation[-len(withheld.campaigns) :]:
                    found = f"after {row['seconds_to_detect']:.0f}s" if row["detected"] else "never"
                    progress(
                        f"  campaign {row['campaign']}: detected {found}, member recall {row['member_recall']:.1%}"
                    )
    card.wall_seconds = time.monotonic() - began
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "scorecard.json").write_bytes(orjson.dumps(card.as_dict(), option=orjson.OPT_INDENT_2))
    (out_dir / "scorecard.md").write_text(card.markdown())
    progress(f"scorecard written to {out_dir / 'scorecard.json'} and {out_dir / 'scorecard.md'}")
    return card
