"""The HTTP ingest under hostile input and load, in process, with a fake Kafka publisher.

Properties over generated bodies: no 5xx but the deliberate ones (503 when overloaded), every
refused line carries a reason code and was produced to the DLQ with its headers, every accepted
line was produced, and valid neighbours in the same body land. Named cases: a 10 MB body, a body
that arrives slowly (408), hundreds of concurrent connections (bounded: 503 with Retry-After, the
server still serving after). Then who may write: named tokens, rotation without a restart, a rate
limit per token (429 with Retry-After, nothing produced). And schemathesis against the OpenAPI
document the ingest serves.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extractguard.contracts.rejection import Reason
from extractguard.ingest.app import build_app
from extractguard.paths import project_root
from extractguard.settings import IngestSettings, KafkaSettings
from tests.unit.test_hostile_input import NOW_SAFE_EVENTS, PROFILE, hostile

settings.register_profile("default", max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
settings.register_profile("fuzz", max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(PROFILE)

TOKEN = "token-of-gateway-eu-1-0123456789"
REASONS = {str(reason) for reason in Reason}
TALLY: Counter[str] = Counter()


class FakePublisher:
    """Records what the ingest produces; Kafka acknowledges everything at once."""

    partitions = 4

    def __init__(self) -> None:
        self.dead: list[tuple[bytes, dict[str, bytes]]] = []
        self.lines: list[bytes] = []
        #: What went to other topics as it came (bouncer reports and their dead letters), by topic.
        self.raw: defaultdict[str, list[tuple[bytes, dict[str, bytes]]]] = defaultdict(list)
        self.lock = threading.Lock()

    def produce_raw(self, topic: str, value: bytes, headers: Any, on_delivery: Any) -> None:
        with self.lock:
            (self.dead if topic == "gateway.events.dlq" else self.raw[topic]).append((value, dict(headers)))
        on_delivery(None, None)

    def produce_envelope(self, partition: int, lines: list[bytes], key: str, on_delivery: Any) -> None:
        with self.lock:
            self.lines += lines
        on_delivery(None, None)

    def poll(self, timeout: float) -> int:
        time.sleep(timeout)
        return 0

    def flush(self) -> None:
        return None

    def take(self) -> tuple[list[tuple[bytes, dict[str, bytes]]], list[bytes]]:
        with self.lock:
            taken = self.dead, self.lines
            self.dead, self.lines = [], []
        return taken


class LiveIngest:
    """The ingest's aiohttp app served on a loopback port from a thread of its own."""

    def __init__(self, ingest: IngestSettings, decisions: tuple[Any, Any] | None = None) -> None:
        self.publisher = FakePublisher()
        self.app = build_app(ingest, KafkaSettings(), publisher=self.publisher, decisions=decisions)
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(self.app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.http = urllib3.PoolManager(maxsize=8, retries=False, timeout=30)

    def post(self, body: bytes, content_type: str = "application/x-ndjson", token: str = TOKEN,
             path: str = "/v1/events") -> urllib3.BaseHTTPResponse:  # fmt: skip
        headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
        return self.http.request("POST", self.url + path, body=body, headers=headers)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _settings(**overrides: Any) -> IngestSettings:
    return IngestSettings(token=TOKEN, max_clock_skew_s=10**9, **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def ingest() -> Iterator[LiveIngest]:
    live = LiveIngest(_settings(rate_limit_events_per_s=10**7))
    yield live
    live.close()


def _check_answer(live: LiveIngest, lines: list[bytes], response: urllib3.BaseHTTPResponse) -> None:
    TALLY["requests"] += 1
    TALLY["lines"] += len(lines)
    dead, produced = live.publisher.take()
    assert response.status < 500, f"{response.status}: {response.data[:300]!r}"
    if response.status != 200:
        document = orjson.loads(response.data)
        assert document["error"]["code"], "a refusal without a code"
        TALLY[f"refused:{document['error']['code']}"] += 1
        return
    answer = orjson.loads(response.data)
    assert answer["accepted"] + answer["rejected"] == len(answer["results"])
    assert answer["accepted"] == len(produced), "an accepted event was not produced"
    assert answer["rejected"] == len(dead), "a refused event is not in the DLQ"
    for result in answer["results"]:
        if result["status"] == "rejected":
            assert result["error"]["code"] in REASONS
            TALLY[f"rejected:{result['error']['code']}"] += 1
        else:
            TALLY["accepted"] += 1
    for original, headers in dead:
        assert headers["eg-reason-code"].decode() in REASONS
        assert headers["eg-service"] == b"ingest" and headers["eg-source"].startswith(b"http:")
        assert "eg-source-line" in headers
        assert original in lines or b"\n" not in original, "the DLQ must keep the refused bytes as sent"


@given(
    neighbours=st.lists(st.sampled_from(NOW_SAFE_EVENTS), max_size=3),
    hostile_lines=st.lists(hostile(NOW_SAFE_EVENTS), min_size=1, max_size=3),
)
def test_ndjson_bodies_never_5xx_and_every_line_is_produced_or_dead_lettered(
    ingest: LiveIngest, neighbours: list[dict[str, Any]], hostile_lines: list[bytes]
) -> None:
    valid = [orjson.dumps(e) for e in neighbours]
    lines = [line.replace(b"\n", b" ") for line in hostile_lines] + valid
    response = ingest.post(b"\n".join(lines))
    _check_answer(ingest, lines, response)
    if response.status == 200:
        results = orjson.loads(response.data)["results"]
        assert all(r["status"] == "accepted" for r in results[-len(valid) :] if valid), "a valid neighbour refused"


@given(
    body=hostile(NOW_SAFE_EVENTS)
    | st.lists(st.sampled_from(NOW_SAFE_EVENTS), max_size=3).map(json.dumps).map(str.encode)
)
def test_json_bodies_never_5xx(ingest: LiveIngest, body: bytes) -> None:
    _check_answer(ingest, [body], ingest.post(body, "application/json"))


@given(body=st.binary(max_size=300), path=st.sampled_from(["/otlp/v1/logs", "/otlp/v1/traces", "/kong/http-log"]))
def test_receiver_payloads_never_5xx(ingest: LiveIngest, body: bytes, path: str) -> None:
    content_type = "application/x-protobuf" if path.startswith("/otlp") and body[:1] != b"{" else "application/json"
    response = ingest.post(body, content_type, path=path)
    TALLY["requests"] += 1
    assert response.status < 500, response.data[:300]
    ingest.publisher.take()


def test_a_10_mb_body_is_refused_413_without_being_produced(ingest: LiveIngest) -> None:
    response = ingest.post(b'{"account_id": "' + b"a" * (10 << 20) + b'"}')
    assert response.status == 413
    assert orjson.loads(response.data)["error"]["code"] == "oversized_body"
    assert ingest.publisher.take() == ([], [])


def _raw_request(port: int, head: bytes, body_parts: list[bytes], pause_s: float) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(head)
        try:
            for part in body_parts:
                conn.sendall(part)
                time.sleep(pause_s)
        except OSError:
            pass  # the server answered and closed before the slow body was done
        return conn.recv(4096)


def _head(length: int, token: str = TOKEN) -> bytes:
    return (
        f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/x-ndjson\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_a_body_that_arrives_slowly_is_timed_out_408() -> None:
    live = LiveIngest(_settings(body_timeout_s=1.0))
    try:
        body = orjson.dumps(NOW_SAFE_EVENTS[0])
        answer = _raw_request(live.port, _head(len(body)), [body[:10]] + [b""] * 0, pause_s=3.0)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"body_timeout" in answer
        assert live.publisher.take() == ([], [])
    finally:
        live.close()


def test_hundreds_of_concurrent_connections_are_bounded_and_answered() -> None:
    live = LiveIngest(_settings(max_concurrent_requests=16, body_timeout_s=3.0))
    body = orjson.dumps(NOW_SAFE_EVENTS[0])
    answers: list[bytes] = []
    lock = threading.Lock()

    def slow_client() -> None:
        answer = _raw_request(live.port, _head(len(body)), [body[:5], body[5:]], pause_s=1.0)
        with lock:
            answers.append(answer)

    try:
        clients = [threading.Thread(target=slow_client) for _ in range(300)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(60)
        statuses = Counter(answer[9:12] for answer in answers)
        assert len(answers) == 300 and set(statuses) <= {b"200", b"503", b"408"}, statuses
        assert statuses[b"503"] >= 300 - 16 * 3, f"the excess must be refused at once: {statuses}"
        assert all(b"Retry-After" in a for a in answers if a[9:12] == b"503")
        assert live.http.request("GET", live.url + "/healthz").status == 200, "the server must still serve"
        assert live.post(body).status == 200
    finally:
        live.close()


def test_named_tokens_one_per_gateway_rotate_without_a_restart(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"gateway-eu-1": TOKEN, "gateway-us-1": "token-of-gateway-us-1-abcdefghij"}))
    live = LiveIngest(_settings(tokens_file=tokens, tokens_reload_s=0.2))
    body = orjson.dumps(NOW_SAFE_EVENTS[0])
    try:
        assert live.post(body).status == 200
        assert live.post(body, token="token-of-gateway-us-1-abcdefghij").status == 200
        refused = live.post(body, token="change-me")
        assert refused.status == 401 and orjson.loads(refused.data)["error"]["code"] == "unauthorized"
        tokens.write_text(json.dumps({"gateway-eu-1": "the-rotated-token-of-eu-1-987654"}))
        os.utime(tokens, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))
        time.sleep(0.5)
        assert live.post(body).status == 401, "the old token must stop working once the file changed"
        assert live.post(body, token="the-rotated-token-of-eu-1-987654").status == 200
        tokens.write_text("{half written")
        os.utime(tokens, ns=(time.time_ns(), time.time_ns() + 2_000_000_000))
        time.sleep(0.5)
        assert live.post(body, token="the-rotated-token-of-eu-1-987654").status == 200, "a bad file keeps the old set"
    finally:
        live.close()


def test_each_token_has_its_own_rate_limit_answered_429_with_retry_after(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"broken": TOKEN, "healthy": "token-of-the-healthy-gateway-xyz"}))
    live = LiveIngest(_settings(tokens_file=tokens, rate_limit_events_per_s=20, rate_limit_burst_s=1))
    body = b"\n".join([orjson.dumps(NOW_SAFE_EVENTS[0])] * 15)
    try:
        assert live.post(body).status == 200
        flooded = live.post(body)
        assert flooded.status == 429 and int(flooded.headers["Retry-After"]) >= 1
        assert orjson.loads(flooded.data)["error"]["code"] == "rate_limited"
        live.publisher.take()
        assert live.post(body).status == 429
        assert live.publisher.take() == ([], []), "nothing of a rate-limited request may be produced"
        assert live.post(body, token="token-of-the-healthy-gateway-xyz").status == 200, "another gateway is not limited"
    finally:
        live.close()


def test_schemathesis_against_the_served_openapi_document(ingest: LiveIngest) -> None:
    import schemathesis
    from schemathesis.checks import not_a_server_error

    schema = schemathesis.openapi.from_url(ingest.url + "/openapi.json")
    schema.config.update(headers={"Authorization": f"Bearer {TOKEN}"})
    examples = 150 if PROFILE == "fuzz" else 15
    tried = 0
    for operation in schema.get_all_operations():
        strategy = operation.ok().as_strategy()

        @given(case=strategy)
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            nonlocal tried
            tried += 1
            response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
            case.validate_response(response, checks=[not_a_server_error])
            ingest.publisher.take()

        check()
    TALLY["schemathesis_cases"] += tried
    assert tried > 0


def test_the_ingest_tally_is_written_under_the_fuzz_profile() -> None:
    if PROFILE != "fuzz":
        pytest.skip("only `make fuzz` writes the tally")
    out = project_root() / "reports" / "fuzz"
    out.mkdir(parents=True, exist_ok=True)
    (out / "ingest.json").write_bytes(orjson.dumps({**dict(sorted(TALLY.items())), "lost": 0},
                                                   option=orjson.OPT_INDENT_2))  # fmt: skip
