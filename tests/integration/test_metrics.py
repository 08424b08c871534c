"""Operating the pipeline: every service's /metrics is scraped while traffic flows, and the numbers
move; the consumers' health endpoints answer as the probes expect."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
import urllib3
from prometheus_client.parser import text_string_to_metric_families

from extractguard.contracts.topics import DETECTIONS, FINGERPRINT_ACTIVITY, GATEWAY_EVENTS, LINK_EVIDENCE
from extractguard.demo.processes import Service, wait_group_stable, wait_http
from extractguard.kafka_offsets import start_group_at_end
from extractguard.lander.sinks import landed_topics
from extractguard.settings import KafkaSettings
from tests.integration.conftest import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

http = urllib3.PoolManager(retries=False, timeout=5)


def scrape(port: int) -> dict[str, float]:
    """Every sample of a /metrics page, as "name{label=value,...}" -> value."""
    body = http.request("GET", f"http://127.0.0.1:{port}/metrics").data.decode()
    samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def total(samples: dict[str, float], name: str) -> float:
    return sum(v for k, v in samples.items() if k.startswith(name + "{"))


def test_metrics_move_while_traffic_flows(
    services: list[Service], tmp_path: Path, kafka: KafkaSettings, golden: dict[str, list[Path]], run_id: str
) -> None:
    ports = {name: free_port() for name in ("ingest", "detect", "campaigns", "lander", "alerter")}
    groups = {
        "detect": (f"extractguard-detect-metrics-{run_id}", [GATEWAY_EVENTS]),
        "campaigns": (f"extractguard-campaigns-metrics-{run_id}", [FINGERPRINT_ACTIVITY, LINK_EVIDENCE]),
        "lander": (f"extractguard-lander-metrics-{run_id}", landed_topics()),
        "alerter": (f"extractguard-alerter-metrics-{run_id}", [DETECTIONS]),
    }
    for group, topics in groups.values():
        start_group_at_end(kafka, group, topics)
    envs = {
        "ingest": {"EXTRACTGUARD_INGEST_PORT": str(ports["ingest"]), "EXTRACTGUARD_INGEST_TOKEN": "t0ken"},
        "detect": {"EXTRACTGUARD_DETECT_APP_ID": groups["detect"][0],
                   "EXTRACTGUARD_DETECT_WEB_PORT": str(ports["detect"])},
        "campaigns": {"EXTRACTGUARD_CAMPAIGNS_APP_ID": groups["campaigns"][0],
                      "EXTRACTGUARD_CAMPAIGNS_WEB_PORT": str(ports["campaigns"])},
        "lander": {"EXTRACTGUARD_LANDER_GROUP_ID": groups["lander"][0],
                   "EXTRACTGUARD_LANDER_SQL_PORT": str(ports["lander"]),
                   "EXTRACTGUARD_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'clickhouse'}"},
        "alerter": {"EXTRACTGUARD_ALERTER_GROUP_ID": groups["alerter"][0],
                    "EXTRACTGUARD_ALERTER_WEB_PORT": str(ports["alerter"])},
    }  # fmt: skip
    started = {name: Service(name, env, tmp_path) for name, env in envs.items()}
    for service in started.values():
        service.start()
        services.append(service)
    wait_http(f"http://127.0.0.1:{ports['ingest']}/healthz", 60, started["ingest"])
    wait_http(f"http://127.0.0.1:{ports['lander']}/healthz", 120, started["lander"])
    wait_http(f"http://127.0.0.1:{ports['alerter']}/healthz", 60, started["alerter"])
    for name, (group, _topics) in groups.items():
        wait_group_stable(kafka, group, 120, started[name])
    before = {name: scrape(port) for name, port in ports.items()}

    # Ten valid events and one bad line, over HTTP.
    event = orjson.loads(golden["gateway_event"][0].read_bytes())
    now = int(time.time() * 1000)
    lines = [orjson.dumps({**event, "event_id": f"{run_id}-{i:04d}", "event_time_ms": now - 1000}) for i in range(10)]
    body = b"\n".join([*lines, b"{not json"])
    answer = http.request(
        "POST", f"http://127.0.0.1:{ports['ingest']}/v1/events", body=body,
        headers={"Authorization": "Bearer t0ken", "Content-Type": "application/x-ndjson"},
    )  # fmt: skip
    assert answer.status == 200

    def moved() -> dict[str, dict[str, float]]:
        return {name: scrape(port) for name, port in ports.items()}

    deadline = time.monotonic() + 90
    after = moved()
    while time.monotonic() < deadline and (
        total(after["detect"], "extractguard_detect_events_total") < 10
        or total(after["lander"], "extractguard_lander_rows_total") < 10
    ):
        time.sleep(1)
        after = moved()

    assert after["ingest"]["extractguard_ingest_events_total{outcome=accepted}"] == 10
    assert after["ingest"]["extractguard_ingest_events_total{outcome=rejected}"] == 1
    assert total(after["ingest"], "extractguard_dlq_messages_total") == 1
    assert total(after["detect"], "extractguard_detect_events_total") == 10
    assert after["lander"]["extractguard_lander_rows_total{table=events}"] == 10
    assert total(after["lander"], "extractguard_lander_insert_duration_seconds_count") >= 1
    # The consumers' last poll keeps advancing, and their health says so.
    for name in ("lander", "alerter"):
        key = f"extractguard_consumer_last_poll_timestamp_seconds{{service={name}}}"
        assert after[name][key] > before[name][key] > 0
        health = http.request("GET", f"http://127.0.0.1:{ports[name]}/healthz")
        assert health.status == 200 and orjson.loads(health.data) == {"status": "ok"}
    # The Faust workers serve the same registry's page.
    assert "extractguard_link_evidence_total" in " ".join(after["campaigns"])
