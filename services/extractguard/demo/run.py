"""Run the demo: Kafka, topics, every service, two minutes of simulated traffic, then a report.

Each run is isolated: a fresh embedded ClickHouse under `.extractguard/demo/`, consumer groups and
a Faust app id of its own that start at the topics' current ends, so earlier runs never leak
into this run's figures.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from typing import Any

import orjson

from extractguard.contracts.enforcement import ENFORCEMENT_APPROVALS
from extractguard.contracts.provision import delete_topics_with_prefix, provision
from extractguard.contracts.topics import (
    CAMPAIGNS,
    DETECTIONS,
    FINGERPRINT_ACTIVITY,
    GATEWAY_EVENTS,
    LINK_EVIDENCE,
    dlq_name,
)
from extractguard.demo.processes import Service, ensure_local_kafka, stop_local_kafka, wait_group_stable, wait_http
from extractguard.demo.report import EXPLORE_SQL, DemoReport
from extractguard.demo.webhook import WebhookReceiver
from extractguard.gateway.publisher import EventPublisher
from extractguard.kafka_offsets import end_offsets, start_group_at_end
from extractguard.lander.sinks import landed_topics
from extractguard.paths import data_home, project_root
from extractguard.settings import IngestSettings, KafkaSettings, LanderSettings
from extractguard.simulator.replay import Replayer
from extractguard.simulator.traffic import Scenario
from extractguard.storage.query import query_lander


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def _messages_since(kafka: KafkaSettings, topic: str, since: dict[int, int]) -> int:
    now = end_offsets(kafka, topic)
    return sum(now[p] - start for p, start in since.items())


def _sql(query: str, lander: LanderSettings) -> list[list[Any]]:
    return query_lander(query, lander)[1]


def _sql_int(query: str, lander: LanderSettings) -> int:
    return int(_sql(query, lander)[0][0])


def run_demo(duration_s: float = 120.0, scenario: Scenario | None = None) -> DemoReport:
    scenario = scenario or Scenario()
    started_kafka = ensure_local_kafka()
    kafka = KafkaSettings()
    provision(kafka)
    run_id = time.strftime("%Y%m%d%H%M%S")
    demo_dir = data_home() / "demo"
    shutil.rmtree(demo_dir / "clickhouse", ignore_errors=True)
    log_dir = demo_dir / "logs" / run_id
    log_dir.mkdir(parents=True, exist_ok=True)
    reports_dir = project_root() / "reports" / "demo"
    reports_dir.mkdir(parents=True, exist_ok=True)

    lander_settings = LanderSettings()
    ingest_settings = IngestSettings(token="demo-token")  # type: ignore[arg-type]
    detect_app_id = f"extractguard-detect-demo-{run_id}"
    campaigns_app_id = f"extractguard-campaigns-demo-{run_id}"
    groups = {
        "lander": (f"extractguard-lander-demo-{run_id}", landed_topics()),
        "alerter": (f"extractguard-alerter-demo-{run_id}", [DETECTIONS]),
        "detect": (detect_app_id, [GATEWAY_EVENTS]),
        "campaigns": (campaigns_app_id, [FINGERPRINT_ACTIVITY, LINK_EVIDENCE]),
        "enforcer": (f"extractguard-enforcer-demo-{run_id}", [CAMPAIGNS, DETECTIONS, ENFORCEMENT_APPROVALS]),
    }
    for group, topics in groups.values():
        start_group_at_end(kafka, group, topics)
    dlq_start = end_offsets(kafka, dlq_name(GATEWAY_EVENTS))

    with WebhookReceiver() as webhook:
        common = {
            "EXTRACTGUARD_CLICKHOUSE_DSN": f"chdb://{demo_dir / 'clickhouse'}",
            "EXTRACTGUARD_INGEST_TOKEN": ingest_settings.token.get_secret_value(),
        }
        services = {
            "lander": Service("lander", {**common, "EXTRACTGUARD_LANDER_GROUP_ID": groups["lander"][0]}, log_dir),
            "detect": Service("detect", {**common, "EXTRACTGUARD_DETECT_APP_ID": detect_app_id}, log_dir),
            "campaigns": Service("campaigns", {**common, "EXTRACTGUARD_CAMPAIGNS_APP_ID": campaigns_app_id}, log_dir),
            "alerter": Service("alerter", {
                **common, "EXTRACTGUARD_ALERTER_GROUP_ID": groups["alerter"][0],
                "EXTRACTGUARD_ALERTER_WEBHOOK_URLS": orjson.dumps([webhook.url]).decode(),
                "EXTRACTGUARD_ALERTER_RENOTIFY_S": "15",
                # A fresh run: alerts of earlier runs on the same topic must not be carried over.
                "EXTRACTGUARD_ALERTER_REBUILD_LOOKBACK_S": "0"}, log_dir),
            "ingest": Service("ingest", common, log_dir),
            # An empty decision book: an earlier run's decisions on the same seeded accounts would
            # have this run's evidence escalate them instead of observing first.
            "enforcer": Service("enforcer", {
                **common, "EXTRACTGUARD_ENFORCER_GROUP_ID": groups["enforcer"][0],
                "EXTRACTGUARD_ENFORCER_RESTORE_BOOK": "false"}, log_dir),
        }  # fmt: skip
        try:
            for service in services.values():
                service.start()
            say(f"services starting (logs in {log_dir})")
            wait_http(
                f"http://{lander_settings.sql_host}:{lander_settings.sql_port}/healthz",
                120,
                services["lander"],
            )
            wait_http(f"http://{ingest_settings.host}:{ingest_settings.port}/healthz", 60, services["ingest"])
            for name, (group, _topics) in groups.items():
                wait_group_stable(kafka, group, 120, services[name])
            say("all services up: lander (ClickHouse owner), detect and campaigns (Faust), alerter, enforcer, ingest")

            say(
                f"replaying {scenario.organic_accounts} organic accounts and a campaign of "
                f"{scenario.campaign_accounts} accounts for {duration_s:.0f}s"
            )
            with EventPublisher(kafka) as publisher:
                replayer = Replayer(
                    scenario,
                    publisher,
                    f"http://{ingest_settings.host}:{ingest_settings.port}/v1/events",
                    ingest_settings.token.get_secret_value(),
                    duration_s,
                    progress=say,
                )
                stats = replayer.run()
            say(f"sent {stats.events_sent:,} events; waiting for the pipeline to drain")
            expected = stats.events_sent - stats.events_rejected
            landed = 0
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                landed = _sql_int("SELECT count() FROM events", lander_settings)
                if landed >= expected:
                    break
                time.sleep(1)
            time.sleep(3)  # let the last detections reach the alerter and the webhook
            for service in services.values():
                if not service.alive():
                    say(f"{service.name} died; last log lines:\n{service.tail()}")

            detections = {
                str(d): int(n)
                for d, n in _sql("SELECT detector, count() FROM detections GROUP BY detector", lander_settings)
            }
            landed = _sql_int("SELECT count() FROM events", lander_settings)
            # The newest version of each decision the enforcer made this run: its book starts empty
            # and the lander lands only what is produced from now on.
            decided = _sql("SELECT scope, entity, action, status FROM decisions FINAL", lander_settings)
        finally:
            exit_codes = {name: service.stop() for name, service in services.items()}
        say(f"services stopped: {exit_codes}")

        flagged = {account for alert in webhook.alerts for account in alert["accounts"]}
        labels = stats.labels
        campaign = {a for a, label in labels.items() if label == "campaign"}
        organic = {a for a, label in labels.items() if label == "organic"}
        decisions = Counter(f"{action}/{status}" for _scope, _entity, action, status in decided)
        decided_accounts = {str(entity) for scope, entity, _action, _status in decided if scope == "account"}
        first_alert_wall = min(webhook.received_at) if webhook.received_at else None
        first_campaign_wall = stats.campaign_first_sent_wall
        seconds_to_first = (
            first_alert_wall - first_campaign_wall
            if first_alert_wall is not None and first_campaign_wall is not None
            else None
        )
        report = DemoReport(
            events_sent=stats.events_sent,
            events_landed=landed,
            events_rejected=stats.events_rejected,
            events_dlq=_messages_since(kafka, dlq_name(GATEWAY_EVENTS), dlq_start),
            detections_by_detector=detections,
            alerts_sent=len(webhook.alerts),
            campaign_accounts_total=len(campaign),
            campaign_accounts_flagged=len(flagged & campaign),
            organic_accounts_total=len(organic),
            organic_accounts_flagged=len(flagged & organic),
            decisions_by_action=dict(sorted(decisions.items())),
            campaign_accounts_decided=len(decided_accounts & campaign),
            organic_accounts_decided=len(decided_accounts & organic),
            seconds_to_first_alert=None if seconds_to_first is None else round(seconds_to_first, 2),
            event_seconds_to_first_alert=(
                None if seconds_to_first is None else round(seconds_to_first * replayer.speed, 1)
            ),
            wall_seconds=duration_s,
            speedup=replayer.speed,
            explore_sql=[{"title": t, "sql": s} for t, s in EXPLORE_SQL],
            clickhouse_dsn=common["EXTRACTGUARD_CLICKHOUSE_DSN"],
        )
    for app_id in (detect_app_id, campaigns_app_id):
        delete_topics_with_prefix(kafka, app_id)  # this run's Faust changelogs and checkpoints
    (reports_dir / "report.json").write_bytes(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2))
    print(report.render())
    print(f"\n[demo] report written to {reports_dir / 'report.json'}")
    if started_kafka:
        stop_local_kafka()
    return report
