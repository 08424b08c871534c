"""One chaos run: the whole pipeline over one scenario's events, with at most one fault injected at a
random moment while the campaign is active, and what the run left behind read back.

Every run gets consumer groups and Faust app ids of its own that start at the topics' ends, and an
embedded ClickHouse of its own, so runs never see each other's rows. The events are generated
once and published alike in every run (same seed, same event-time start), paced over
`publish_s` seconds of wall time so a fault lands mid-stream. After the last event, the run waits
until every stage has committed everything, then reads: the events and detections in ClickHouse
(`count()` and `FINAL`), the detections and campaigns on their topics, the pages the webhook
received, and the dead letters.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from extractguard.chaos.faults import Fault
from extractguard.contracts.provision import delete_topics_with_prefix, provision
from extractguard.contracts.topics import (
    CAMPAIGNS,
    DETECTIONS,
    FINGERPRINT_ACTIVITY,
    GATEWAY_EVENTS,
    LINK_EVIDENCE,
    contracts,
)
from extractguard.demo.processes import Service, wait_group_stable, wait_http
from extractguard.demo.webhook import WebhookReceiver
from extractguard.evaluation.run import _wait_caught_up
from extractguard.gateway.publisher import EventPublisher
from extractguard.kafka_offsets import end_offsets, read_since, start_group_at_end
from extractguard.lander.sinks import landed_topics
from extractguard.local_kafka import LocalKafka, partition_leader, wait_in_sync
from extractguard.settings import KafkaSettings, LanderSettings
from extractguard.storage.query import query_lander

#: Session timeout of the detection workers in a chaos run: short, so a frozen worker is dropped
#: from the group (and its partitions move) within seconds.
SESSION_TIMEOUT_S = 8
#: How long a killed process or the broker stays down before it is started again.
DOWN_S = 2.0
#: How long a node of a cluster stays stopped: long enough for its partitions' leadership to move
#: and for writes to go on without it.
NODE_AWAY_S = 20.0


@dataclass
class Outcome:
    """What one run left behind."""

    fault: str
    events_sent: int
    events_rows: int = 0
    events_final: int = 0
    detections_rows: int = 0
    detections_final: int = 0
    detection_ids: set[str] = field(default_factory=set)  # of the per-entity detectors
    #: Campaign id -> (latest status, members). Ids are compared by membership, not by id: see
    #: `report.compare`.
    campaigns: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    pages: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    dlq_messages: int = 0
    fault_at_s: float | None = None
    #: Dedup keys paged in the 5 s before the fault: the alerter's batch in flight is among them.
    in_flight_keys: int = 0
    died: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def _page_identity(alert: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two deliveries the same page (the delivery time and detection ids aside: a
    replayed detection that changes nothing an on-call engineer sees is the same page again). First
    seen is part of what they see: a campaign fragment merged into another moves the survivor's
    first sighting earlier, a new page of the same members (how often depends on how the resolver's
    reads of the two linker partitions interleave, so two clean runs differed by it)."""
    return (alert["dedup_key"], alert["status"], alert["severity"], alert["first_seen_ms"], alert["last_seen_ms"],
            tuple(alert["accounts"]))  # fmt: skip


def broker_is_local() -> bool:
    return LocalKafka().is_up()


class ChaosRun:
    def __init__(
        self,
        events: list[dict[str, Any]],
        fault: Fault,
        *,
        seed: int,
        tag: str,
        home: Path,
        publish_s: float,
        active_from: float,
        say: Callable[[str], None],
    ) -> None:
        self.events = events
        self.fault = fault
        self.rng = random.Random(f"{seed}:{fault.name}")
        self.tag = tag
        self.home = home / tag
        self.publish_s = publish_s
        self.active_from = active_from
        self.say = say
        self.kafka = KafkaSettings()
        self.local = LocalKafka()
        self.lander_settings = LanderSettings()
        self.started = time.monotonic()
        self.fault_wall: float | None = None

    def _services(self, webhook_url: str) -> dict[str, list[Service]]:
        log_dir = self.home / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        common = {"EXTRACTGUARD_CLICKHOUSE_DSN": f"chdb://{self.home / 'clickhouse'}"}
        self.groups = {
            "lander": (f"extractguard-lander-chaos-{self.tag}", landed_topics()),
            "detect": (f"extractguard-detect-chaos-{self.tag}", [GATEWAY_EVENTS]),
            "campaigns": (f"extractguard-campaigns-chaos-{self.tag}", [FINGERPRINT_ACTIVITY, LINK_EVIDENCE]),
            "alerter": (f"extractguard-alerter-chaos-{self.tag}", [DETECTIONS, CAMPAIGNS]),
        }
        for group, topics in self.groups.values():
            start_group_at_end(self.kafka, group, topics)
        detect_env = {**common, "EXTRACTGUARD_DETECT_APP_ID": self.groups["detect"][0],
                      "EXTRACTGUARD_DETECT_SESSION_TIMEOUT_S": str(SESSION_TIMEOUT_S)}  # fmt: skip
        detect = [Service("detect", detect_env, log_dir)]
        if self.fault.action == "sigstop":  # a second worker to take the frozen one's partitions
            second_port = os.environ.get("EXTRACTGUARD_CHAOS_SECOND_WEB_PORT", "6270")
            detect.append(Service("detect", {**detect_env, "EXTRACTGUARD_DETECT_WEB_PORT": second_port}, log_dir,
                                  log_name="detect-2"))  # fmt: skip
        return {
            "lander": [Service("lander", {**common, "EXTRACTGUARD_LANDER_GROUP_ID": self.groups["lander"][0]},
                               log_dir)],
            "detect": detect,
            "campaigns": [Service("campaigns", {**common, "EXTRACTGUARD_CAMPAIGNS_APP_ID": self.groups["campaigns"][0]},
                                  log_dir)],
            "alerter": [Service("alerter", {
                **common, "EXTRACTGUARD_ALERTER_GROUP_ID": self.groups["alerter"][0],
                "EXTRACTGUARD_ALERTER_WEBHOOK_URLS": orjson.dumps([webhook_url]).decode(),
                # Every change of an alert is a delivery, so a page sent twice is seen as one.
                "EXTRACTGUARD_ALERTER_RENOTIFY_S": "0",
                # Alerts of earlier runs on the shared `alerts` topic must not be remembered; a
                # restart in this run is given a lookback that covers this run (see `_restart`).
                "EXTRACTGUARD_ALERTER_REBUILD_LOOKBACK_S": "0",
                "EXTRACTGUARD_ALERTER_SQL_RULES": "false"}, log_dir)],
        }  # fmt: skip

    def _restart(self, service: Service) -> None:
        if service.name == "alerter":
            lookback = int(time.monotonic() - self.started) + 60
            service.env["EXTRACTGUARD_ALERTER_REBUILD_LOOKBACK_S"] = str(lookback)
        service.start()

    def _inject(self, services: dict[str, list[Service]]) -> None:
        fault = self.fault
        self.fault_wall = time.time()
        if fault.action == "sigkill" and fault.target:
            victim = services[fault.target][0]
            victim.kill()
            time.sleep(DOWN_S)
            self._restart(victim)
        elif fault.action == "sigstop" and fault.target:
            process = services[fault.target][0].process
            assert process is not None, "the frozen worker was started"
            process.send_signal(signal.SIGSTOP)
            time.sleep(SESSION_TIMEOUT_S + 6)  # past the session timeout: the group rebalances
            process.send_signal(signal.SIGCONT)
        elif fault.action == "broker_stop":
            self.local.down()
            time.sleep(DOWN_S)
            self.local.up()
        elif fault.action == "broker_kill":
            self.local.kill(1)
            time.sleep(DOWN_S)
            self.local.up()
        else:
            self._inject_cluster()

    def _inject_cluster(self) -> None:
        """A fault of one node (or each in turn) of a replicated cluster."""
        local, action = self.local, self.fault.action
        if action == "leader_kill":
            node = partition_leader(self.kafka, GATEWAY_EVENTS, 0)
            self.say(f"  SIGKILL node {node}, the leader of {GATEWAY_EVENTS}[0]")
            local.kill(node)
            time.sleep(DOWN_S)
            local.up(node)
        elif action == "controller_kill":
            node = local.controller()
            self.say(f"  SIGKILL node {node}, the active controller")
            local.kill(node)
            time.sleep(DOWN_S)
            local.up(node)
        elif action == "node_stop":
            node = self.rng.randint(1, local.nodes)
            self.say(f"  node {node} stopped for {NODE_AWAY_S:.0f} s")
            local.down(node)
            time.sleep(NODE_AWAY_S)
            local.up(node)
        elif action == "rolling_restart":
            for node in range(1, local.nodes + 1):
                wait_in_sync(self.kafka)
                self.say(f"  rolling restart: node {node}")
                local.down(node)
                local.up(node)
        else:
            raise ValueError(f"no such fault action {action!r}")

    def execute(self) -> Outcome:
        kafka = self.kafka
        shutil.rmtree(self.home, ignore_errors=True)
        provision(kafka)
        outcome = Outcome(self.fault.name, len(self.events))
        dlqs = [c.dlq.name for c in contracts().values()]
        since = {topic: end_offsets(kafka, topic) for topic in (DETECTIONS, CAMPAIGNS, *dlqs)}
        with WebhookReceiver() as webhook:
            services = self._services(webhook.url)
            everyone = [s for group in services.values() for s in group]
            try:
                for service in everyone:
                    service.start()
                sql = self.lander_settings
                wait_http(f"http://{sql.sql_host}:{sql.sql_port}/healthz", 120, services["lander"][0])
                for name, (group, _topics) in self.groups.items():
                    wait_group_stable(kafka, group, 180, services[name][0])
                fault_thread = self._publish(services, outcome)
                if fault_thread is not None:
                    fault_thread.join()
                for service in everyone:
                    if not service.alive():
                        outcome.died.append(service.name)
                        self.say(f"  {service.name} died after the fault; restarted:\n{service.tail(5)}")
                        self._restart(service)
                self._drain(services, outcome)
                outcome.events_rows, outcome.events_final = self._counts("events")
                outcome.detections_rows, outcome.detections_final = self._counts("detections")
            finally:
                for service in everyone:
                    service.stop()
            outcome.pages = Counter(_page_identity(alert) for alert in webhook.alerts)
            if self.fault_wall is not None:
                outcome.in_flight_keys = len({
                    alert["dedup_key"] for alert, at in zip(webhook.alerts, webhook.received_at, strict=True)
                    if self.fault_wall - 5 <= at <= self.fault_wall
                })  # fmt: skip
        for value in read_since(kafka, DETECTIONS, since[DETECTIONS]):
            detection = orjson.loads(value)
            if detection["detector"] != "campaign":  # campaigns are compared as campaigns
                outcome.detection_ids.add(detection["detection_id"])
        for value in read_since(kafka, CAMPAIGNS, since[CAMPAIGNS]):
            record = orjson.loads(value)
            outcome.campaigns[record["campaign_id"]] = (record["status"], sorted(record["members"]))
        outcome.dlq_messages = sum(
            sum(end_offsets(kafka, topic).values()) - sum(since[topic].values()) for topic in dlqs
        )
        for group, _topics in (self.groups["detect"], self.groups["campaigns"]):
            delete_topics_with_prefix(kafka, group)  # this run's checkpoint topics
        outcome.wall_s = round(time.monotonic() - self.started, 1)
        (self.home / "outcome.json").write_bytes(orjson.dumps({
            "fault": outcome.fault, "detection_ids": sorted(outcome.detection_ids), "campaigns": outcome.campaigns,
            "pages": [[*key, n] for key, n in outcome.pages.items()],
        }, option=orjson.OPT_INDENT_2))  # fmt: skip
        return outcome

    def _publish(self, services: dict[str, list[Service]], outcome: Outcome) -> threading.Thread | None:
        """Publish the events paced over `publish_s`; start the fault at a random moment of the
        campaign's active part. Returns the fault's thread (still running, perhaps)."""
        events = self.events
        fault_index = (
            None if self.fault.action == "none"
            else int(len(events) * self.rng.uniform(self.active_from + 0.1 * (1 - self.active_from), 0.85))
        )  # fmt: skip
        fault_thread: threading.Thread | None = None
        chunk = max(1, len(events) // 200)
        began = time.monotonic()
        with EventPublisher(self.kafka) as publisher:
            for start in range(0, len(events), chunk):
                if fault_index is not None and fault_thread is None and start >= fault_index:
                    outcome.fault_at_s = round(time.monotonic() - began, 1)
                    self.say(f"  {self.fault.name} at {outcome.fault_at_s}s, {start:,} of {len(events):,} events in")
                    fault_thread = threading.Thread(target=self._inject, args=(services,), daemon=True)
                    fault_thread.start()
                publisher.publish_many([dict(e) for e in events[start : start + chunk]])
                due = began + self.publish_s * (start + chunk) / len(events)
                time.sleep(max(0.0, due - time.monotonic()))
            publisher.flush()
        return fault_thread

    def _drain(self, services: dict[str, list[Service]], outcome: Outcome) -> None:
        """Wait until every stage has committed everything upstream of it gave it, twice over (the
        alerter's and campaigns' inputs grow while detect catches up). A service that dies on the
        way is a finding of the run: it is recorded, restarted, and the wait goes on."""
        for attempt in range(4):
            try:
                self._drain_once(services)
                return
            except RuntimeError as error:
                if attempt == 3:
                    raise
                for group in services.values():
                    for service in group:
                        if not service.alive():
                            outcome.died.append(service.name)
                            self.say(f"  {service.name} died while draining ({str(error).splitlines()[0]}); restarted")
                            self._restart(service)

    def _drain_once(self, services: dict[str, list[Service]]) -> None:
        for _ in range(2):
            _wait_caught_up(self.kafka, self.groups["detect"][0], GATEWAY_EVENTS, 180, services["detect"][0])
            for topic in (FINGERPRINT_ACTIVITY, LINK_EVIDENCE):
                _wait_caught_up(self.kafka, self.groups["campaigns"][0], topic, 180, services["campaigns"][0])
            for topic in (DETECTIONS, CAMPAIGNS):
                _wait_caught_up(self.kafka, self.groups["alerter"][0], topic, 180, services["alerter"][0])
            for topic in landed_topics():
                _wait_caught_up(self.kafka, self.groups["lander"][0], topic, 180, services["lander"][0])
        time.sleep(3)  # the alerter delivers after it commits: let the last pages arrive

    def _counts(self, table: str) -> tuple[int, int]:
        _columns, rows = query_lander(
            f"SELECT (SELECT count() FROM {table}), (SELECT count() FROM {table} FINAL)", self.lander_settings
        )
        return int(rows[0][0]), int(rows[0][1])
