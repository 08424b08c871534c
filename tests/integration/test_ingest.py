"""The HTTP ingest against the real broker: per-event answers, and every rejection kept in the DLQ."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
import urllib3

from extractguard.contracts.topics import GATEWAY_EVENTS, dlq_name
from extractguard.demo.processes import Service, wait_http
from extractguard.kafka_offsets import end_offsets
from extractguard.settings import KafkaSettings
from tests.integration.conftest import free_port, read_from

pytestmark = pytest.mark.kafka

TOKEN = "test-token-1"


def _valid_event(golden: dict[str, list[Path]], run_id: str, n: int) -> dict[str, object]:
    event = orjson.loads(golden["gateway_event"][0].read_bytes())
    event["event_id"] = f"{run_id}-{n:08d}"
    event["event_time_ms"] = int(time.time() * 1000) - 1000
    return event  # type: ignore[no-any-return]


@pytest.fixture
def ingest(services: list[Service], tmp_path: Path, kafka: KafkaSettings) -> str:
    port = free_port()
    service = Service(
        "ingest",
        {
            "EXTRACTGUARD_INGEST_PORT": str(port),
            "EXTRACTGUARD_INGEST_TOKEN": TOKEN,
            "EXTRACTGUARD_INGEST_MAX_BODY_BYTES": str(256 * 1024),
        },
        tmp_path,
    )
    service.start()
    services.append(service)
    wait_http(f"http://127.0.0.1:{port}/healthz", 60, service)
    return f"http://127.0.0.1:{port}"


def test_every_kind_of_bad_input_gets_a_specific_error_and_lands_in_the_dlq(
    ingest: str, kafka: KafkaSettings, golden: dict[str, list[Path]], run_id: str
) -> None:
    event = _valid_event(golden, run_id, 0)
    missing = {k: v for k, v in event.items() if k != "api_key_hash"}
    lines = [
        (None, orjson.dumps(event)),
        ("not_json", b"{definitely not json"),
        ("wrong_type", orjson.dumps({**event, "latency_ms": "slow"})),
        ("missing_field", orjson.dumps(missing)),
        ("unknown_schema_version", orjson.dumps({**event, "schema_version": 99})),
        ("out_of_range", orjson.dumps({**event, "input_tokens": -3})),
        ("future_timestamp", orjson.dumps({**event, "event_time_ms": int(time.time() * 1000) + 86_400_000})),
        ("oversized_field", orjson.dumps({**event, "request_model": "m" * 1000})),
        ("invalid_utf8", b'{"schema_version": 1, "org_id": "\xc3\x28"}'),
        (
            "oversized_event",
            orjson.dumps(
                {
                    **event,
                    "prompt_sketch": {
                        **event["prompt_sketch"],  # type: ignore[dict-item]
                        "minhash": [7] * 256,
                    },
                }
            )
            + b" " * 16_000,
        ),
        ("not_an_object", b'"just a string"'),
        ("unknown_field", orjson.dumps({**event, "completion_text": "must never be sent"})),
    ]
    dlq_start = end_offsets(kafka, dlq_name(GATEWAY_EVENTS))
    events_start = end_offsets(kafka, GATEWAY_EVENTS)
    http = urllib3.PoolManager()
    response = http.request(
        "POST",
        f"{ingest}/v1/events",
        body=b"\n".join(raw for _, raw in lines),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"},
    )
    assert response.status == 200, response.data
    answer = orjson.loads(response.data)
    assert answer["accepted"] == 1 and answer["rejected"] == len(lines) - 1
    for (expected, _raw), result in zip(lines, answer["results"], strict=True):
        if expected is None:
            assert result["status"] == "accepted"
        else:
            assert result["status"] == "rejected"
            assert result["error"]["code"] == expected, result
            assert result["error"]["detail"]

    dead = read_from(kafka, dlq_name(GATEWAY_EVENTS), dlq_start, expect=len(lines) - 1)
    by_line = {int(dict(m.headers())["eg-source-line"]): m for m in dead}
    assert len(by_line) == len(lines) - 1
    for index, (expected, raw) in enumerate(lines):
        if expected is None:
            continue
        headers = dict(by_line[index].headers())
        assert headers["eg-reason-code"].decode() == expected
        assert headers["eg-service"] == b"ingest" and headers["eg-reason"]
        assert by_line[index].value() == raw  # the original bytes, untouched
    accepted = read_from(kafka, GATEWAY_EVENTS, events_start, expect=1)
    assert any(event["event_id"].encode() in m.value() for m in accepted)


def test_wrong_token_and_oversized_body_are_refused_whole(
    ingest: str, golden: dict[str, list[Path]], run_id: str
) -> None:
    http = urllib3.PoolManager()
    body = orjson.dumps(_valid_event(golden, run_id, 1))
    for header in ({"Authorization": "Bearer wrong"}, {}):
        response = http.request("POST", f"{ingest}/v1/events", body=body, headers=header)
        assert response.status == 401
        assert orjson.loads(response.data)["error"]["code"] == "unauthorized"
    big = b"\n".join([body] * 400)  # ~500 KB against a 256 KiB limit
    response = http.request("POST", f"{ingest}/v1/events", body=big, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 413
    error = orjson.loads(response.data)["error"]
    assert error["code"] == "oversized_body" and "262144" in error["detail"]
