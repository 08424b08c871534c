"""On-call destinations: one contract over every registered kind, the PagerDuty and Slack
payloads against schemas written from their published references (golden examples), the
webhook's signature, and the dispatcher's retries, rate limits and isolation of a failing one."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from extractguard.alerting.destination import DestinationConfig
from extractguard.alerting.destinations import REGISTRY, UnknownDestination, build_destination
from extractguard.alerting.destinations.pagerduty import pagerduty_event
from extractguard.alerting.destinations.slack import slack_message
from extractguard.alerting.destinations.webhook import sign
from extractguard.alerting.dispatch import DeliveryRecord, Dispatcher, Sender, TokenBucket
from extractguard.contracts.schemas import validate
from extractguard.paths import schemas_dir

ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
CASES = "https://extractguard.example/cases"
EXTERNAL = schemas_dir() / "external"
GOLDEN = schemas_dir() / "examples" / "external"
MINIMAL: dict[str, dict[str, Any]] = {
    "webhook": {"url": "http://127.0.0.1:9/hook", "secret": "s"},
    "alertmanager": {"url": "http://127.0.0.1:9/api/v2/alerts"},
    "pagerduty": {"routing_key": ROUTING_KEY, "url": "http://127.0.0.1:9/v2/enqueue"},
    "slack": {"url": "http://127.0.0.1:9/services/T/B/X"},
}


def _alerts(golden: dict[str, list[Path]]) -> dict[str, dict[str, Any]]:
    burst = orjson.loads(golden["alert"][0].read_bytes())
    campaign = {
        **burst,
        "alert_id": "0f" * 16,
        "dedup_key": "extraction_campaign:campaign:cmp-3f9a1c2b7d4e",
        "rule": "extraction_campaign",
        "entity_kind": "campaign",
        "entity": "cmp-3f9a1c2b7d4e",
        "summary": "Accounts linked into one actor harvesting the model: <!channel> 4 accounts & 3 fingerprints",
        "detection_ids": ["1" * 32, "2" * 32],
    }
    resolved = {**campaign, "status": "resolved", "summary": "merged into cmp-000000000001: folded"}
    acknowledged = {**campaign, "labels": {**campaign["labels"], "acknowledged": "true"}}
    return {"burst": burst, "campaign": campaign, "resolved": resolved, "acknowledged": acknowledged}


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_destination_keeps_the_contract(kind: str, golden: dict[str, list[Path]]) -> None:
    destination = build_destination({"kind": kind, **MINIMAL[kind]}, CASES)
    assert destination.kind == kind and destination.name == kind
    assert isinstance(destination.config, DestinationConfig)
    alerts = list(_alerts(golden).values())
    for alert in alerts:
        validate("alert", alert)
    requests = destination.requests(alerts)
    assert requests, "a destination sends something for alerts"
    assert sorted(a["alert_id"] + a["status"] for r in requests for a in r.alerts) == sorted(
        a["alert_id"] + a["status"] for a in alerts
    )  # every alert travels, in exactly one request
    for request in requests:
        orjson.loads(request.body)
        assert request.headers["Content-Type"] == "application/json"
        assert ROUTING_KEY not in request.url


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(UnknownDestination, match="pagerduty"):
        build_destination({"kind": "carrier_pigeon"}, None)


def _check_golden(name: str, payload: dict[str, Any], schema: str) -> None:
    jsonschema.validate(payload, orjson.loads((EXTERNAL / schema).read_bytes()))
    path = GOLDEN / name
    assert orjson.loads(path.read_bytes()) == payload, f"{path} no longer matches what is sent"


@pytest.mark.parametrize("case", ["burst", "campaign", "resolved", "acknowledged"])
def test_pagerduty_events_match_golden_and_schema(case: str, golden: dict[str, list[Path]]) -> None:
    alert = _alerts(golden)[case]
    event = pagerduty_event(alert, ROUTING_KEY, "extractguard", CASES)
    _check_golden(f"pagerduty/{case}.json", event, "pagerduty_events_v2.json")
    assert event["dedup_key"] == alert["dedup_key"]  # stable: trigger, acknowledge and resolve meet
    assert event["event_action"] == {"resolved": "resolve", "acknowledged": "acknowledge"}.get(case, "trigger")


def test_pagerduty_severity_links_and_long_keys(golden: dict[str, list[Path]]) -> None:
    alert = _alerts(golden)["campaign"]
    for ours, theirs in (("critical", "critical"), ("warning", "warning"), ("info", "info")):
        assert pagerduty_event({**alert, "severity": ours}, ROUTING_KEY, "eg", None)["payload"]["severity"] == theirs
    event = pagerduty_event(alert, ROUTING_KEY, "eg", CASES)
    assert event["links"][0]["href"] == f"{CASES}/campaigns/cmp-3f9a1c2b7d4e.html"
    long_key = {**alert, "dedup_key": "x" * 256}
    keys = {pagerduty_event(long_key, ROUTING_KEY, "eg", None)["dedup_key"] for _ in range(2)}
    assert len(keys) == 1 and len(keys.pop()) <= 255


@pytest.mark.parametrize("case", ["burst", "campaign", "resolved"])
def test_slack_messages_match_golden_and_schema(case: str, golden: dict[str, list[Path]]) -> None:
    message = slack_message(_alerts(golden)[case], CASES)
    _check_golden(f"slack/{case}.json", message, "slack_incoming_webhook.json")


def test_slack_text_is_escaped_and_clipped(golden: dict[str, list[Path]]) -> None:
    alert = {**_alerts(golden)["campaign"], "entity": "<@U123>", "summary": "<!here> " + "y" * 5000}
    message = slack_message(alert, None)
    body = orjson.dumps(message).decode()
    assert "<!here>" not in body and "<@U123>" not in body and "&lt;!here&gt;" in body
    jsonschema.validate(message, orjson.loads((EXTERNAL / "slack_incoming_webhook.json").read_bytes()))


def test_webhook_body_is_signed(golden: dict[str, list[Path]]) -> None:
    destination = build_destination({"kind": "webhook", **MINIMAL["webhook"]}, None)
    [request] = destination.requests([_alerts(golden)["burst"]])
    expected = sign(b"s", request.headers["X-ExtractGuard-Timestamp"], request.body)
    assert request.headers["X-ExtractGuard-Signature"] == expected
    assert sign(b"other", request.headers["X-ExtractGuard-Timestamp"], request.body) != expected


class _Endpoint(BaseHTTPRequestHandler):
    """Answers by path: /ok 200, /flaky 503 once then 200, /down always 503, /slow after 2 s."""

    bodies: dict[str, list[Any]] = {}
    flaky_seen = 0

    def log_message(self, *_args: Any) -> None:
        return

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = 200
        if self.path == "/flaky":
            _Endpoint.flaky_seen += 1
            status = 503 if _Endpoint.flaky_seen == 1 else 200
        elif self.path == "/down":
            status = 503
        elif self.path == "/slow":
            time.sleep(2)
        if status == 200:
            _Endpoint.bodies.setdefault(self.path, []).append(orjson.loads(body))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def endpoint() -> Any:
    _Endpoint.bodies, _Endpoint.flaky_seen = {}, 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_retries_are_counted_and_recorded(endpoint: str, golden: dict[str, list[Path]]) -> None:
    alert = _alerts(golden)["burst"]
    pager = build_destination({"kind": "pagerduty", "routing_key": ROUTING_KEY, "url": f"{endpoint}/flaky",
                               "backoff_s": 0.01}, None)  # fmt: skip
    [record] = Sender(pager).send([alert])
    assert (record.status, record.attempts, record.http_status) == ("delivered", 2, 200)
    validate("alert_delivery", record.payload())
    down = build_destination({"kind": "webhook", "url": f"{endpoint}/down", "attempts": 3, "backoff_s": 0.01}, None)
    [failed] = Sender(down).send([alert])
    assert (failed.status, failed.attempts, failed.http_status) == ("failed", 3, 503)
    unreachable = build_destination({"kind": "webhook", "url": "http://127.0.0.1:9/x", "attempts": 1}, None)
    [refused] = Sender(unreachable).send([alert])
    assert refused.status == "failed" and refused.error


def test_a_failing_or_slow_destination_does_not_hold_up_the_others(
    endpoint: str, golden: dict[str, list[Path]]
) -> None:
    records: list[DeliveryRecord] = []
    destinations = [
        build_destination({"kind": "webhook", "name": "slow", "url": f"{endpoint}/slow", "timeout_s": 10}, None),
        build_destination(
            {"kind": "webhook", "name": "down", "url": f"{endpoint}/down", "attempts": 2, "backoff_s": 0.01}, None
        ),
        build_destination({"kind": "slack", "name": "chat", "url": f"{endpoint}/ok"}, None),
    ]
    dispatcher = Dispatcher(destinations, records.append)
    started = time.monotonic()
    dispatcher.submit([_alerts(golden)["campaign"]])
    assert time.monotonic() - started < 0.5  # submitting never waits for a destination
    deadline = time.monotonic() + 10
    while not any(r.destination == "chat" for r in records) and time.monotonic() < deadline:
        time.sleep(0.02)
    chat = next(r for r in records if r.destination == "chat")
    assert chat.status == "delivered"
    assert not any(r.destination == "slow" for r in records)  # the slow one is still on its request
    dispatcher.close(timeout_s=10)
    outcomes = {r.destination: r.status for r in records}
    assert outcomes == {"slow": "delivered", "down": "failed", "chat": "delivered"}


def test_token_bucket_spaces_requests_beyond_the_burst() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=2, clock=lambda: now[0])
    assert [bucket.wait_time() for _ in range(2)] == [0.0, 0.0]
    assert bucket.wait_time() == pytest.approx(0.5)
    now[0] = 10.0
    assert bucket.wait_time() == 0.0
