"""Alerting: one alert per key that updates, escalation, restart memory, and both webhook formats."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import orjson

from extractguard.alerting.book import AlertBook
from extractguard.alerting.destinations import build_destination
from extractguard.alerting.dispatch import Sender
from extractguard.alerting.rules import DEFAULT_RULES
from extractguard.contracts.schemas import validate


def detection(
    n: int,
    entity: str = "tpl-5f3a9c",
    severity: str = "warning",
    accounts: int = 3,
    detector: str = "burst",
    kind: str = "template",  # a per-key rule: grouped rules are in test_alert_rules
) -> dict[str, Any]:
    return {
        "schema_version": 1, "detection_id": f"{n:032x}", "detector": detector, "detector_version": "1",
        "entity_kind": kind, "entity": entity, "score": 20.0, "threshold": 8.0,
        "window_start_ms": n * 60_000, "window_end_ms": (n + 1) * 60_000, "detected_at_ms": (n + 1) * 60_000,
        "severity": severity,
        "evidence": {"summary": f"window {n}", "features": [], "accounts": [f"a{n}-{i}" for i in range(accounts)]},
    }  # fmt: skip


def test_one_alert_per_key_updated_not_repeated() -> None:
    book = AlertBook(DEFAULT_RULES, renotify_s=300)
    first = book.observe(detection(1), now_ms=0)
    assert len(first) == 1
    assert book.observe(detection(2), now_ms=10_000) == []  # same prefix: folded into the open alert
    assert book.observe(detection(2), now_ms=400_000) == []  # a redelivered detection changes nothing
    updates = book.due_updates(now_ms=400_000)
    assert len(updates) == 1
    assert updates[0]["alert_id"] == first[0]["alert_id"]
    assert set(updates[0]["accounts"]) == {f"a{n}-{i}" for n in (1, 2) for i in range(3)}
    assert updates[0]["detection_ids"] == [f"{1:032x}", f"{2:032x}"]
    validate("alert", updates[0])


def test_escalation_is_delivered_at_once() -> None:
    book = AlertBook(DEFAULT_RULES, renotify_s=300)
    book.observe(detection(1), now_ms=0)
    escalated = book.observe(detection(2, severity="critical"), now_ms=1_000)
    assert [a["severity"] for a in escalated] == ["critical"]


def test_different_entities_and_rules_are_different_alerts() -> None:
    book = AlertBook(DEFAULT_RULES, renotify_s=300)
    a = book.observe(detection(1, entity="tpl-a"), now_ms=0)
    b = book.observe(detection(2, entity="tpl-b"), now_ms=0)
    c = book.observe(detection(3, entity="logprobs_share", detector="mix_drift", kind="global"), now_ms=0)
    assert len({x["dedup_key"] for x in a + b + c}) == 3
    assert c[0]["rule"] == "traffic_mix_drift"


def test_info_detections_do_not_page() -> None:
    book = AlertBook(DEFAULT_RULES, renotify_s=300)
    assert book.observe(detection(1, severity="info"), now_ms=0) == []


def test_a_restarted_alerter_remembers_what_it_delivered() -> None:
    book = AlertBook(DEFAULT_RULES, renotify_s=300)
    delivered = book.observe(detection(1), now_ms=0)[0]
    fresh = AlertBook(DEFAULT_RULES, renotify_s=300)
    fresh.remember(delivered)
    assert fresh.observe(detection(1), now_ms=5_000) == []


def test_a_campaign_merged_into_another_resolves_its_alert_into_the_survivors() -> None:
    book = AlertBook(DEFAULT_RULES, renotify_s=300)
    survivor = book.observe(detection(1, entity="cmp-a", detector="campaign", kind="campaign"), now_ms=0)
    fragment = book.observe(detection(2, entity="cmp-b", detector="campaign", kind="campaign"), now_ms=0)
    assert len(survivor) == len(fragment) == 1  # found one by one, each paged
    merged = detection(3, entity="cmp-b", severity="info", detector="campaign", kind="campaign")
    merged["evidence"]["merged_into"] = "cmp-a"
    validate("detection", merged)
    (resolved,) = book.observe(merged, now_ms=10_000)
    assert (resolved["status"], resolved["dedup_key"]) == ("resolved", fragment[0]["dedup_key"])
    assert "merged into cmp-a" in resolved["summary"]
    validate("alert", resolved)
    assert book.observe(merged, now_ms=20_000) == []  # its alert is gone: a re-sent merge changes nothing
    (update,) = book.due_updates(now_ms=400_000)  # the survivor now holds the fragment's accounts
    assert update["dedup_key"] == survivor[0]["dedup_key"] and update["status"] == "firing"
    assert {f"a2-{i}" for i in range(3)} <= set(update["accounts"])
    fresh = AlertBook(DEFAULT_RULES, renotify_s=300)  # a restart reading the alerts topic in order
    for delivered in (*survivor, *fragment, resolved):
        fresh.remember(delivered)
    assert set(fresh.open) == {survivor[0]["dedup_key"]}


class _Recorder(BaseHTTPRequestHandler):
    bodies: list[Any] = []
    statuses: list[int] = []

    def log_message(self, *_args: Any) -> None:
        return

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = _Recorder.statuses.pop(0) if _Recorder.statuses else 200
        if status == 200:
            _Recorder.bodies.append(orjson.loads(body))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _serve() -> tuple[HTTPServer, str]:
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/hook"


def test_alertmanager_format_and_retry_on_5xx(golden: dict[str, list[Path]]) -> None:
    alert = orjson.loads(golden["alert"][0].read_bytes())
    _Recorder.bodies, _Recorder.statuses = [], [503]
    server, url = _serve()
    try:
        sender = Sender(build_destination({"kind": "alertmanager", "url": url, "attempts": 3}, None))
        assert [r.status for r in sender.send([alert])] == ["delivered"]
    finally:
        server.shutdown()
    [body] = _Recorder.bodies
    [am] = body
    assert am["labels"]["alertname"] == f"ExtractGuard_{alert['rule']}"
    assert am["labels"]["severity"] == alert["severity"]
    assert "acct-" not in orjson.dumps(am["labels"]).decode()  # accounts are annotations, not labels
    assert am["annotations"]["accounts_total"] == str(len(alert["accounts"]))
    assert am["startsAt"].endswith("Z")


def test_generic_format_carries_the_whole_alert(golden: dict[str, list[Path]]) -> None:
    alert = orjson.loads(golden["alert"][0].read_bytes())
    _Recorder.bodies, _Recorder.statuses = [], []
    server, url = _serve()
    try:
        sender = Sender(build_destination({"kind": "webhook", "url": url, "attempts": 1}, None))
        assert [r.status for r in sender.send([alert])] == ["delivered"]
    finally:
        server.shutdown()
    assert _Recorder.bodies == [{"source": "extractguard", "alerts": [alert]}]


def test_unreachable_webhook_reports_failure() -> None:
    sender = Sender(build_destination({"kind": "webhook", "url": "http://127.0.0.1:9/nowhere", "attempts": 1}, None))
    [record] = sender.send([{"alert_id": "a", "dedup_key": "k", "status": "firing", "accounts": []}])
    assert (record.status, record.http_status) == ("failed", None)


def test_a_closed_campaign_resolves_its_alert() -> None:
    book = AlertBook(DEFAULT_RULES, renotify_s=300)
    (opened,) = book.observe(detection(1, entity="cmp-a", detector="campaign", kind="campaign"), now_ms=0)
    assert book.campaign_closed("cmp-other", now_ms=5_000) == []
    (resolved,) = book.campaign_closed("cmp-a", now_ms=10_000)
    assert (resolved["status"], resolved["dedup_key"]) == ("resolved", opened["dedup_key"])
    assert "closed" in resolved["summary"]
    validate("alert", resolved)
    assert book.campaign_closed("cmp-a", now_ms=20_000) == []
