"""`make eval`: the labelled scenarios through the real pipeline, scored against their ground truth.

What is replayed is a scenario generated on the fly or any labelled event file (`sources`:
`extractguard eval --stream events.ndjson --labels labels.jsonl`); both are scored alike.

One lander (owning a fresh embedded ClickHouse under `.extractguard/eval/`) runs for the whole
evaluation. Each scenario gets a detection worker and an alerter of its own, with a fresh Faust app
id and consumer groups that start at the topics' ends, so no scenario sees another's state. The
stream is produced through the gateway SDK as fast as the pipeline takes it: event time, not the
wall clock, drives the windows, so hours of traffic replay in seconds. When the workers have caught
up, every alert delivery and detection of the scenario is read back from Kafka and scored; the
labels go to `account.labels`, and so into ClickHouse beside the alerts they judge.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from extractguard.contracts.provision import delete_topics_with_prefix, provision
from extractguard.contracts.topics import (
    ALERTS,
    CAMPAIGNS,
    DETECTIONS,
    FINGERPRINT_ACTIVITY,
    GATEWAY_EVENTS,
    LINK_EVIDENCE,
)
from extractguard.demo.processes import (
    Service,
    ServiceDied,
    ensure_local_kafka,
    stop_local_kafka,
    wait_group_stable,
    wait_http,
)
from extractguard.evaluation.enforcement_replay import RequestLog, score_enforcement
from extractguard.evaluation.scorecard import Scorecard
from extractguard.evaluation.scoring import ScenarioScore, Truth, points_at, score_resolved_campaigns, score_scenario
from extractguard.evaluation.sources import Replay, SimulatedReplay, StreamReplay
from extractguard.evaluation.timeline import render_timeline
from extractguard.gateway.publisher import EventPublisher
from extractguard.kafka_offsets import end_offsets, group_lag, read_since, start_group_at_end
from extractguard.lander.sinks import landed_topics
from extractguard.paths import data_home, project_root
from extractguard.settings import DetectionSettings, KafkaSettings, LanderSettings
from extractguard.simulator.ground_truth import publish_label_records
from extractguard.simulator.scenario import Scenario
from extractguard.simulator.traffic import scenario_start_ms
from extractguard.storage.query import query_lander

MINUTE_MS = 60_000
#: default: the public case's rates at a tenth of its size (~4.5M events, ~30-45 min on 2 cores);
#: fast: the earlier hour-scale scenarios (~0.4M events, ~5 min), kept so older figures reproduce;
#: full: the public case's size (25,000 campaign accounts), for long runs.
#: synthetic: the earlier three-day scenarios on the simulator's own text and tells, kept as a second set.
SCALES = {"default": "eval", "synthetic": "eval-synthetic", "fast": "eval-fast", "full": "eval-full"}


def say(message: str) -> None:
    print(f"[eval] {message}", flush=True)


def scenario_files(scale: str, names: list[str] | None = None) -> list[Path]:
    folder = project_root() / "scenarios" / SCALES[scale]
    files = sorted(folder.glob("*.yaml"))
    if names:
        by_stem = {f.stem: f for f in files}
        unknown = sorted(set(names) - set(by_stem))
        if unknown:
            raise ValueError(f"no scenario {unknown} in {folder}; there are {sorted(by_stem)}")
        files = [by_stem[n] for n in names]
    return files


def replays_of(files: list[Path], start_ms: int | None = None, hours: float | None = None) -> list[Replay]:
    """Scenario files as replays; `hours` keeps only the first hours of each (to iterate quickly)."""
    now = int(time.time() * 1000)
    replays: list[Replay] = []
    for scenario in (Scenario.from_yaml(f) for f in files):
        if hours is not None:
            scenario = scenario.model_copy(update={"duration_s": min(scenario.duration_s, hours * 3600)})
        begin = start_ms if start_ms is not None else scenario_start_ms(scenario, now)
        replays.append(SimulatedReplay(scenario, begin))
    return replays


def scenario_replays(scale: str, names: list[str] | None = None, hours: float | None = None) -> list[Replay]:
    return replays_of(scenario_files(scale, names), hours=hours)


def _wait_caught_up(kafka: KafkaSettings, group: str, topic: str, timeout_s: float, service: Service) -> None:
    """Wait until `group` has consumed `topic` to its end. A consumer still making progress is
    waited for (a slow stage is a figure to report, not a failed run); one whose lag has not
    shrunk for `timeout_s` is stuck, and that is an error."""
    deadline = time.monotonic() + timeout_s
    best = None
    while (lag := group_lag(kafka, group, topic)) > 0:
        if not service.alive():
            raise ServiceDied(service, "died while catching up")
        if best is None or lag < best:
            best, deadline = lag, time.monotonic() + timeout_s
        if time.monotonic() > deadline:
            raise TimeoutError(f"{group} still {lag:,} messages behind on {topic}, no progress for {timeout_s:.0f}s")
        time.sleep(1)


def _shown(value: float | None) -> str:
    return "—" if value is None else str(value)


class Evaluation:
    def __init__(
        self,
        scale: str,
        out_dir: Path,
        progress: Callable[[str], None] = say,
        home: Path | None = None,
        learn_from: list[str] | None = None,
    ) -> None:
        self.scale = scale
        # Which verdicts on account.labels the detection workers learn from. Simulation labels
        # only when the experiment asks: a second run would otherwise learn from the first's truth.
        self.learn_from = learn_from or ["analyst"]
        self.out_dir = out_dir
        self.say = progress
        self.kafka = KafkaSettings()
        self.run_id = time.strftime("%Y%m%d%H%M%S")
        self.home = home or data_home() / "eval"
        self.log_dir = self.home / "logs" / self.run_id
        self.lander_settings = LanderSettings()
        self.command = "make eval" if scale == "default" else f"extractguard eval --scale {scale}"

    def _service(self, name: str, env: dict[str, str], scenario: str | None = None) -> Service:
        dsn = {"EXTRACTGUARD_CLICKHOUSE_DSN": f"chdb://{self.home / 'clickhouse'}"}
        log_name = f"{name}-{scenario}" if scenario else name
        return Service(name, {**dsn, **env}, self.log_dir, log_name=log_name)

    def run(self, files: list[Path], start_ms: int | None = None, hours: float | None = None) -> Scorecard:
        """Evaluate scenario files; `start_ms` pins their event-time start (default: each ends before now)."""
        return self.run_replays(replays_of(files, start_ms, hours))

    def run_replays(self, replays: list[Replay]) -> Scorecard:
        started = time.monotonic()
        started_kafka = ensure_local_kafka()
        provision(self.kafka)
        shutil.rmtree(self.home / "clickhouse", ignore_errors=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        lander_group = f"extractguard-lander-eval-{self.run_id}"
        lander_topics = landed_topics()
        start_group_at_end(self.kafka, lander_group, lander_topics)
        lander = self._service("lander", {"EXTRACTGUARD_LANDER_GROUP_ID": lander_group})
        card = Scorecard(scale=self.scale, generated_at=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        card.command = self.command
        card.detection_settings = {
            **DetectionSettings().model_dump(include={"window_s", "burst_threshold", "drift_delta"}),
            "learn_from_sources": self.learn_from,
        }
        try:
            lander.start()
            sql = self.lander_settings
            wait_http(f"http://{sql.sql_host}:{sql.sql_port}/healthz", 120, lander)
            wait_group_stable(self.kafka, lander_group, 120, lander)
            self.say(f"lander up (ClickHouse at {self.home / 'clickhouse'}); logs in {self.log_dir}")
            card.scenarios_pending = [r.name for r in replays]
            for number, replay in enumerate(replays, 1):
                self.say(f"scenario {number}/{len(replays)}: {replay.name} - {replay.description}")
                began = time.monotonic()
                score = self._scenario(replay)
                score.extra["wall_seconds"] = round(time.monotonic() - began, 1)
                card.scenarios.append(score)
                card.scenarios_pending.remove(replay.name)
                if card.scenarios_pending:  # a run of hours keeps what it measured if it is stopped
                    card.wall_seconds = time.monotonic() - started
                    self._write(card)
            self.say("waiting for ClickHouse to land everything")
            for topic in lander_topics:
                _wait_caught_up(self.kafka, lander_group, topic, 300, lander)
            for score in card.scenarios:
                score.extra["events_landed"] = self._landed(score.name)
        finally:
            lander.stop()
            if started_kafka:
                stop_local_kafka()
        card.wall_seconds = time.monotonic() - started
        self._write(card)
        return card

    def _landed(self, scenario: str) -> int:
        _columns, rows = query_lander(
            "SELECT count() FROM events WHERE account_id IN "
            f"(SELECT account_id FROM account_labels FINAL WHERE scenario = '{scenario}')",
            self.lander_settings,
        )
        return int(rows[0][0])

    def _scenario(self, scenario: Replay) -> ScenarioScore:
        kafka = self.kafka
        tag = f"{scenario.name}-{self.run_id}"
        app_id = f"extractguard-detect-eval-{tag}"
        alerter_group = f"extractguard-alerter-eval-{tag}"
        campaigns_id = f"extractguard-campaigns-eval-{tag}"
        start_group_at_end(kafka, app_id, [GATEWAY_EVENTS])
        start_group_at_end(kafka, alerter_group, [DETECTIONS])
        start_group_at_end(kafka, campaigns_id, [FINGERPRINT_ACTIVITY, LINK_EVIDENCE])
        since = {topic: end_offsets(kafka, topic) for topic in (DETECTIONS, ALERTS, CAMPAIGNS)}
        start_ms = scenario.start_ms
        # A launch in the scenario is announced to the engine, as an operator would.
        launches = scenario.launches
        detect = self._service("detect", {
            "EXTRACTGUARD_DETECT_APP_ID": app_id,
            "EXTRACTGUARD_DETECT_LEARN_FROM_SOURCES": orjson.dumps(self.learn_from).decode(),
            "EXTRACTGUARD_DETECT_LAUNCHES": orjson.dumps(launches).decode(),
        }, scenario.name)  # fmt: skip
        campaigns = self._service("campaigns", {"EXTRACTGUARD_CAMPAIGNS_APP_ID": campaigns_id}, scenario.name)
        alerter = self._service("alerter", {
            "EXTRACTGUARD_ALERTER_GROUP_ID": alerter_group,
            # Every change of an alert is a delivery, so the score sees when each account was named.
            "EXTRACTGUARD_ALERTER_RENOTIFY_S": "0",
            "EXTRACTGUARD_ALERTER_REBUILD_LOOKBACK_S": "0",
            # The scenarios share one ClickHouse: a SQL rule would see the earlier scenarios' rows.
            "EXTRACTGUARD_ALERTER_SQL_RULES": "false",
        }, scenario.name)  # fmt: skip
        try:
            detect.start()
            campaigns.start()
            alerter.start()
            wait_group_stable(kafka, app_id, 180, detect)
            wait_group_stable(kafka, campaigns_id, 180, campaigns)
            wait_group_stable(kafka, alerter_group, 120, alerter)
            truth, traffic, seconds = self._publish(scenario, start_ms)
            events = sum(truth.requests_by_class.values())
            labelled = publish_label_records(kafka, scenario.label_records())
            self.say(f"  {events:,} events produced in {seconds:.0f}s; labels of {labelled:,} accounts sent")
            waited = time.monotonic()
            _wait_caught_up(kafka, app_id, GATEWAY_EVENTS, 120 + events / 1000, detect)
            _wait_caught_up(kafka, campaigns_id, FINGERPRINT_ACTIVITY, 120, campaigns)
            _wait_caught_up(kafka, campaigns_id, LINK_EVIDENCE, 120, campaigns)
            _wait_caught_up(kafka, alerter_group, DETECTIONS, 120, alerter)
            time.sleep(2)  # the alerter produces after it commits its input: let the last deliveries land
            self.say(f"  detection caught up {time.monotonic() - waited:.0f}s after the last event")
            alerts = [orjson.loads(v) for v in read_since(kafka, ALERTS, since[ALERTS])]
            detections = [orjson.loads(v) for v in read_since(kafka, DETECTIONS, since[DETECTIONS])]
            resolved = [orjson.loads(v) for v in read_since(kafka, CAMPAIGNS, since[CAMPAIGNS])]
        finally:
            detect.stop()
            campaigns.stop()
            alerter.stop()
        delete_topics_with_prefix(kafka, app_id)  # its Faust changelogs and checkpoints
        delete_topics_with_prefix(kafka, campaigns_id)
        score = score_scenario(scenario.name, scenario.duration_s, truth, alerts)
        score_resolved_campaigns(score, truth, resolved)
        score_enforcement(score, self.requests, detections, truth.campaign, resolved)
        score.extra.update(
            {
                "detections": dict(Counter(f"{d['detector']}/{d['severity']}" for d in detections)),
                "start_ms": start_ms,
                "seed": scenario.seed,
                "accounts": {
                    "campaign": sum(1 for label in truth.label.values() if label == "campaign"),
                    "organic": sum(1 for label in truth.label.values() if label == "organic"),
                },
            }
        )
        firsts: dict[str, dict[str, Any]] = {}
        for alert in alerts:
            firsts.setdefault(alert["dedup_key"], alert)
        marks = [(a["last_seen_ms"], points_at(a["accounts"], truth), a["rule"]) for a in firsts.values()]
        png = render_timeline(
            self.out_dir / "timelines" / f"{scenario.name}.png", score, start_ms, traffic, detections, marks
        )
        score.extra["timeline"] = str(png.relative_to(self.out_dir))
        for campaign in score.campaigns:
            when = "never" if campaign.seconds_to_detect is None else f"after {campaign.seconds_to_detect:.0f}s"
            self.say(
                f"  campaign {campaign.name}: detected {when}, member recall {campaign.member_recall:.1%}, "
                f"cluster precision {campaign.cluster_precision if campaign.cluster_precision is not None else '—'}; "
                f"resolved as {campaign.resolved_as} campaign(s), recall {campaign.resolved_member_recall:.1%}, "
                f"precision {_shown(campaign.resolved_cluster_precision)}"
            )
        self.say(
            f"  organic: {score.organic_accounts_flagged}/{score.organic_accounts} accounts flagged, "
            f"{score.organic_alerts} organic alerts, organic accounts in campaigns: {score.organic_in_campaigns or 0}"
        )
        return score

    def _publish(self, scenario: Replay, start_ms: int) -> tuple[Truth, dict[str, Counter[int]], float]:
        truth = Truth(kinds=dict(scenario.kinds))
        self.requests = RequestLog()
        traffic: dict[str, Counter[int]] = {}
        began = last = time.monotonic()
        span_ms = scenario.duration_s * 1000
        with EventPublisher(self.kafka) as publisher:
            for row in scenario.events():
                event = row.event
                ts = event["event_time_ms"]
                tokens = event.get("output_tokens")
                truth.observe(
                    row.account_id, row.label, row.klass, row.campaign, ts, tokens if isinstance(tokens, int) else 0
                )
                series = row.campaign or "organic"
                counts = traffic.get(series)
                if counts is None:
                    counts = traffic[series] = Counter()
                counts[(ts - start_ms) // MINUTE_MS] += 1
                self.requests.observe(row.account_id, row.label, ts, event)
                publisher.publish(event)
                now = time.monotonic()
                if now - last >= 10:
                    last = now
                    done = sum(truth.requests_by_class.values())
                    self.say(f"  {done:,} events sent, {(ts - start_ms) / span_ms:.0%} of the scenario's event time")
            publisher.flush()
        return truth, traffic, time.monotonic() - began

    def _write(self, card: Scorecard) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "scorecard.json").write_bytes(orjson.dumps(card.as_dict(), option=orjson.OPT_INDENT_2))
        (self.out_dir / "scorecard.md").write_text(card.markdown())


def run_eval(
    scale: str = "default",
    names: list[str] | None = None,
    out_dir: Path | None = None,
    learn_from: list[str] | None = None,
    hours: float | None = None,
) -> Scorecard:
    out = out_dir or project_root() / "reports" / "eval"
    card = Evaluation(scale, out, learn_from=learn_from).run(scenario_files(scale, names), hours=hours)
    say(f"scorecard written to {out / 'scorecard.json'} and {out / 'scorecard.md'}")
    return card


def run_stream_eval(
    events: Path,
    labels: Path,
    name: str,
    out_dir: Path | None = None,
    launches: list[dict[str, Any]] | None = None,
    duration_s: float | None = None,
    learn_from: list[str] | None = None,
) -> Scorecard:
    """`extractguard eval --stream`: a labelled event file through the pipeline, scored like a scenario."""
    out = out_dir or project_root() / "reports" / "eval-stream"
    replay = StreamReplay(events, labels, name, launches=launches or [], duration_s=duration_s or 0.0)
    evaluation = Evaluation("stream", out, learn_from=learn_from)
    evaluation.command = f"extractguard eval --stream {events} --labels {labels}"
    card = evaluation.run_replays([replay])
    say(f"scorecard written to {out / 'scorecard.json'} and {out / 'scorecard.md'}")
    return card
