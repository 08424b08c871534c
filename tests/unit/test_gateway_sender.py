"""The gateway's sender: the request path never waits, memory stays bounded, a backend outage is
spooled or counted, a bad optional field costs only that field, and every observation is
accounted for in exactly one counter."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from extractguard_gateway.events import ObservedRequest
from extractguard_gateway.sender import Delivery, EventSender, SenderSettings, SenderStats, TransportUnavailable
from extractguard_gateway.transports import HttpTransport


class FakeTransport:
    def __init__(self) -> None:
        self.batches: list[list[dict[str, object]]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.down = False

    def send(self, lines: list[bytes]) -> Delivery:
        self.entered.set()
        self.gate.wait()
        if self.down:
            raise TransportUnavailable("down")
        self.batches.append([json.loads(line) for line in lines])
        return Delivery(accepted=len(lines))

    def close(self) -> None:
        pass

    def events(self) -> list[dict[str, object]]:
        return [event for batch in self.batches for event in batch]


def request(i: int, **fields: object) -> ObservedRequest:
    shape: dict[str, object] = {
        "account_id": f"acct-{i % 7}", "request_model": "m", "event_time_ms": 1_795_000_000_000 + i,
        "input_tokens": 10, "output_tokens": 20, "latency_ms": 5, "prompt": f"Tell me about topic number {i}",
        "event_id": f"event-{i:08d}",
    }  # fmt: skip
    return ObservedRequest(**{**shape, **fields})  # type: ignore[arg-type]


def accounted(stats: SenderStats) -> int:
    return (stats.delivered + sum(stats.rejected.values()) + sum(stats.refused.values())
            + sum(stats.dropped.values()) + stats.spooled)  # fmt: skip


def test_submit_never_waits_on_a_stuck_backend_and_memory_stays_bounded() -> None:
    transport = FakeTransport()
    transport.gate.clear()  # the backend hangs
    sender = EventSender(transport, b"k", SenderSettings(max_buffered_bytes=50 * 1024, batch_max_events=10))
    accepted = [sender.submit(request(i)) for i in range(200)]  # would hang here if submit waited
    assert transport.entered.wait(5)
    assert 0 < sum(accepted) < 200  # the buffer took what fits, no more
    assert sender.stats.dropped["buffer_full"] == accepted.count(False)
    transport.gate.set()
    sender.close()
    assert accounted(sender.stats) == sender.stats.submitted == 200
    assert len(transport.events()) == sender.stats.delivered == sum(accepted)


def test_a_bad_optional_field_costs_that_field_and_a_bad_required_one_the_event() -> None:
    transport = FakeTransport()
    sender = EventSender(transport, b"k")
    sender.submit(request(1, user_agent="x" * 600, client_ip="unknown", client_country="FRA"))
    sender.submit(request(2, input_tokens=-1))
    sender.submit(request(3, org_id=None, client_asn=None))
    sender.close()
    kept, absent = transport.events()
    assert kept["event_id"] == "event-00000001"
    assert not {"user_agent", "client_ip_prefix", "client_country"} & set(kept)
    assert dict(sender.stats.fields_dropped) == {
        "client_ip_prefix:unparseable_address": 1, "user_agent:oversized_field": 1, "client_country:oversized_field": 1,
    }  # fmt: skip
    assert dict(sender.stats.refused) == {"input_tokens:out_of_range": 1}
    assert "org_id" not in absent and "client_asn" not in absent  # absent, not null, never 0
    assert accounted(sender.stats) == 3


def test_backend_down_without_a_spool_drops_and_counts() -> None:
    transport = FakeTransport()
    transport.down = True
    sender = EventSender(transport, b"k", SenderSettings(batch_max_events=5, linger_ms=10))
    for i in range(12):
        sender.submit(request(i))
    sender.close()
    assert sender.stats.dropped["backend_unavailable"] == 12 and sender.stats.delivered == 0


def test_backend_down_with_a_spool_keeps_batches_and_resends_them(tmp_path: Path) -> None:
    transport = FakeTransport()
    transport.down = True
    spool = tmp_path / "spool"
    sender = EventSender(transport, b"k", SenderSettings(batch_max_events=5, linger_ms=10, spool_dir=spool))
    for i in range(12):
        sender.submit(request(i))
    sender.flush()
    assert sender.stats.spooled == 12 and list(spool.glob("*.ndjson"))
    transport.down = False
    sender._retry_at = 0.0  # (the backoff would wait up to a second before trying again)
    sender.submit(request(99))
    sender.close()
    assert sender.stats.spooled == 0 and not list(spool.glob("*.ndjson"))
    assert sorted(e["event_id"] for e in transport.events()) == sorted(
        [f"event-{i:08d}" for i in range(12)] + ["event-00000099"]
    )


class _Ingest(BaseHTTPRequestHandler):
    status = 200

    def do_POST(self) -> None:
        lines = self.rfile.read(int(self.headers["Content-Length"])).split(b"\n")
        results = [
            {"index": 0, "status": "accepted"},
            {"index": 1, "status": "rejected", "error": {"code": "future_timestamp"}},
        ]
        body = json.dumps({"accepted": len(lines) - 1, "rejected": 1, "results": results})
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def ingest() -> Iterator[tuple[str, type[_Ingest]]]:
    handler = type("Handler", (_Ingest,), {"status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", handler
    server.shutdown()


def test_http_transport_reads_the_ingests_answer(ingest: tuple[str, type[_Ingest]]) -> None:
    url, handler = ingest
    delivery = HttpTransport(url, "t").send([b"{}", b"{}"])
    assert (delivery.accepted, delivery.rejected) == (1, ["future_timestamp"])
    handler.status = 503
    with pytest.raises(TransportUnavailable):
        HttpTransport(url, "t").send([b"{}"])
    handler.status = 401
    with pytest.raises(RuntimeError, match="401"):
        HttpTransport(url, "t").send([b"{}"])
    with pytest.raises(TransportUnavailable):
        HttpTransport("http://127.0.0.1:9", "t", timeout_s=2).send([b"{}"])
