"""The alerter as a service on the real broker: detections in, alerts on the `alerts` topic, the
paged ones delivered to the webhook, each delivery on `alert.deliveries`; a silence keeps its
alert from on-call (it still lands); a campaign record that says `closed` resolves its alert."""

from __future__ import annotations

import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from extractguard.alerting.service import Alerter
from extractguard.alerting.silences import Silence
from extractguard.contracts.schemas import validate
from extractguard.contracts.topics import ALERT_DELIVERIES, ALERTS, CAMPAIGNS, DETECTIONS
from extractguard.kafka_offsets import end_offsets, read_since, start_group_at_end
from extractguard.settings import AlerterSettings, KafkaSettings

pytestmark = pytest.mark.kafka


class _Hook(BaseHTTPRequestHandler):
    alerts: list[dict[str, Any]] = []

    def log_message(self, *_args: Any) -> None:
        return

    def do_POST(self) -> None:
        _Hook.alerts += orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))["alerts"]
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _detection(tag: str, n: int, kind: str, entity: str, detector: str) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return validate("detection", {
        "schema_version": 1, "detection_id": uuid.uuid4().hex, "detector": detector, "detector_version": "1",
        "entity_kind": kind, "entity": entity, "score": 20.0, "threshold": 8.0, "window_start_ms": now - 60_000,
        "window_end_ms": now, "detected_at_ms": now, "severity": "warning",
        "evidence": {"summary": f"{tag} {n}", "features": [], "accounts": [f"{tag}-a{n}-{i}" for i in range(3)]},
    })  # fmt: skip


def test_alerter_pages_records_silences_and_resolves(kafka: KafkaSettings, golden: dict[str, list[Path]]) -> None:
    tag = uuid.uuid4().hex[:8]
    group = f"extractguard-alerter-test-{tag}"
    start_group_at_end(kafka, group, [DETECTIONS, CAMPAIGNS])
    since = {topic: end_offsets(kafka, topic) for topic in (ALERTS, ALERT_DELIVERIES)}
    _Hook.alerts = []
    hook = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    paged, silenced, campaign = f"10.{tag[:2]}.1.0/24-{tag}", f"10.{tag[:2]}.2.0/24-{tag}", f"cmp-{tag}0000"
    settings = AlerterSettings(
        group_id=group, webhook_urls=[f"http://127.0.0.1:{hook.server_address[1]}/hook"], renotify_s=0,
        rebuild_lookback_s=0, sql_rules=False, silences_refresh_s=0.1,
    )  # fmt: skip
    alerter = Alerter(settings, kafka)
    silence = Silence.new(
        entity=silenced, duration_s=600, reason="test", created_by="test", now_ms=int(time.time() * 1000)
    )
    row = [silence.silence_id, None, None, silenced, {}, silence.starts_at_ms, silence.ends_at_ms, "test", "test",
           silence.updated_at_ms]  # fmt: skip
    alerter.ask = lambda _sql: ([], [row])  # the silences in force, as ClickHouse would answer
    worker = threading.Thread(target=alerter.run, daemon=True)
    worker.start()
    producer = Producer(kafka.client_config())
    try:
        time.sleep(1.0)  # let the first refresh read the silence
        for n, (kind, entity, detector) in enumerate(
            [("ip_prefix", paged, "burst"), ("ip_prefix", silenced, "burst"), ("campaign", campaign, "campaign")]
        ):
            producer.produce(
                DETECTIONS, key=entity.encode(), value=orjson.dumps(_detection(tag, n, kind, entity, detector))
            )
        producer.flush(10)
        record = {**orjson.loads(golden["campaign"][0].read_bytes()), "campaign_id": campaign, "status": "closed"}
        time.sleep(2.0)  # the campaign's alert is open before its close arrives
        producer.produce(CAMPAIGNS, key=campaign.encode(), value=orjson.dumps(validate("campaign", record)))
        producer.flush(10)

        def ours() -> list[dict[str, Any]]:
            return [a for a in map(orjson.loads, read_since(kafka, ALERTS, since[ALERTS])) if tag in a["dedup_key"]]

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(ours()) < 4:
            time.sleep(0.5)
        alerts = ours()
        assert sorted((a["entity"], a["status"]) for a in alerts) == sorted(
            [(paged, "firing"), (silenced, "firing"), (campaign, "firing"), (campaign, "resolved")]
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(_Hook.alerts) < 3:
            time.sleep(0.2)
        assert sorted((a["entity"], a["status"]) for a in _Hook.alerts) == sorted(
            [(paged, "firing"), (campaign, "firing"), (campaign, "resolved")]
        )  # the silenced alert landed on the topic but did not page
    finally:
        alerter.stop()
        worker.join(30)
        hook.shutdown()
    deliveries = [
        validate("alert_delivery", orjson.loads(v))
        for v in read_since(kafka, ALERT_DELIVERIES, since[ALERT_DELIVERIES])
    ]
    ours_delivered = [d for d in deliveries if tag in d["dedup_key"]]
    assert sorted((d["dedup_key"].rsplit(":", 1)[1], d["alert_status"], d["status"]) for d in ours_delivered) == sorted(
        [(paged, "firing", "delivered"), (campaign, "firing", "delivered"), (campaign, "resolved", "delivered")]
    )
    assert all(d["destination"] == "webhook" and d["attempts"] == 1 for d in ours_delivered)
