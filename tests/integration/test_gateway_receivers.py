"""The ingest's receivers for gateways that push their own format, configured exactly as the
shipped examples say (gateway/examples/otel-collector.yaml, kong-http-log.yaml, quoted in the
README): every golden payload of the product lands in gateway.events as v2 events, and a payload
the adapter cannot read is answered 400 and kept in the DLQ with its reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
import urllib3
import yaml

from extractguard.contracts.envelope import split
from extractguard.contracts.schemas import validate
from extractguard.contracts.topics import GATEWAY_EVENTS, dlq_name
from extractguard.demo.processes import Service, wait_http
from extractguard.kafka_offsets import end_offsets
from extractguard.paths import project_root, schemas_dir
from extractguard.settings import KafkaSettings
from tests.integration.conftest import free_port, read_from

pytestmark = pytest.mark.kafka

EXAMPLES = project_root() / "gateway" / "examples"
GOLDEN = schemas_dir() / "examples" / "adapters"


def _otel() -> tuple[str, dict[str, str]]:
    exporter = yaml.safe_load((EXAMPLES / "otel-collector.yaml").read_text())["exporters"]["otlphttp/extractguard"]
    return urlsplit(exporter["endpoint"]).path, exporter["headers"]


def _kong() -> tuple[str, dict[str, str]]:
    (plugin,) = yaml.safe_load((EXAMPLES / "kong-http-log.yaml").read_text())["plugins"]
    return urlsplit(plugin["config"]["http_endpoint"]).path, plugin["config"]["headers"]


@pytest.fixture
def ingest(services: list[Service], tmp_path: Path, kafka: KafkaSettings) -> str:
    token = _otel()[1]["Authorization"].removeprefix("Bearer ")
    assert _kong()[1]["Authorization"] == f"Bearer {token}"
    port = free_port()
    service = Service("ingest", {"EXTRACTGUARD_INGEST_PORT": str(port), "EXTRACTGUARD_INGEST_TOKEN": token}, tmp_path)
    service.start()
    services.append(service)
    wait_http(f"http://127.0.0.1:{port}/healthz", 60, service)
    return f"http://127.0.0.1:{port}"


def _post(url: str, body: bytes, content_type: str, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
    return urllib3.request("POST", url, body=body, headers={**headers, "Content-Type": content_type}, retries=False)


def test_otlp_and_kong_payloads_land_as_events(ingest: str, kafka: KafkaSettings) -> None:
    start = end_offsets(kafka, GATEWAY_EVENTS)
    dlq_start = end_offsets(kafka, dlq_name(GATEWAY_EVENTS))
    expected: list[str] = []
    otel_path, otel_headers = _otel()
    for golden in sorted((GOLDEN / "otel_genai").iterdir()):
        signal = "logs" if "logs" in golden.name else "traces"
        content_type = "application/x-protobuf" if golden.suffix == ".pb" else "application/json"
        response = _post(f"{ingest}{otel_path}/v1/{signal}", golden.read_bytes(), content_type, otel_headers)
        assert response.status == 200, response.data
        expected.append(signal)
    kong_path, kong_headers = _kong()
    for golden in sorted((GOLDEN / "kong_http_log").iterdir()):
        response = _post(f"{ingest}{kong_path}", golden.read_bytes(), "application/json", kong_headers)
        assert response.status == 200 and response.json()["accepted"] == 1, response.data
        expected.append("kong")
    refused = _post(f"{ingest}{kong_path}", b'{"not": "kong"}', "application/json", kong_headers)
    assert refused.status == 400 and refused.json()["error"]["code"] == "unreadable_payload"
    assert _post(f"{ingest}{kong_path}", b"{}", "application/json", {}).status == 401

    events: list[dict[str, Any]] = []
    for message in read_from(kafka, GATEWAY_EVENTS, start, expect=len(expected), timeout_s=30):
        events += [validate("gateway_event", orjson.loads(line)) for line in split(message.value())]
    assert len(events) == len(expected) == 7
    assert {e["schema_version"] for e in events} == {2}
    assert all("client_asn" not in e and "org_id" not in e for e in events)  # absent, not stand-ins
    assert sorted(e["account_id"] for e in events) == sorted(
        ["tenant-7f3a"] * 2 + ["acct-5521"] * 2 + ["8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b"] * 2 + ["unauthenticated"]
    )
    (dead,) = read_from(kafka, dlq_name(GATEWAY_EVENTS), dlq_start, expect=1, timeout_s=10)
    assert dead.value() == b'{"not": "kong"}'
    assert dict(dead.headers())["eg-reason-code"] == b"unreadable_payload"
