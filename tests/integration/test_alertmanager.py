"""The real Alertmanager (Debian's `prometheus-alertmanager`) receiving ExtractGuard's alerts:
it takes them on `/api/v2/alerts`, groups them by rule as its route says, and resolves the alert
of a campaign that merged into another and of one that closed, notifying its receiver of both.

No Kafka or ClickHouse: the alerts come from the alert book, as the alerter makes them, and go
out through the Alertmanager destination and the dispatcher's sender.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from extractguard.alerting.book import AlertBook
from extractguard.alerting.destinations import build_destination
from extractguard.alerting.dispatch import Sender
from extractguard.alerting.rules import DEFAULT_RULES

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = pytest.mark.skipif(
    BINARY is None,
    reason="Alertmanager is not installed: apt-get install -y prometheus-alertmanager (.ci/run installs it)",
)


class _Receiver(BaseHTTPRequestHandler):
    notifications: list[dict[str, Any]] = []

    def log_message(self, *_args: Any) -> None:
        return

    def do_POST(self) -> None:
        _Receiver.notifications.append(orjson.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    _Receiver.notifications = []
    receiver = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: oncall\n  group_by: [rule]\n  group_wait: 1s\n  group_interval: 1s\n"
        "  repeat_interval: 1h\nreceivers:\n  - name: oncall\n    webhook_configs:\n"
        f"      - url: http://127.0.0.1:{receiver.server_address[1]}/notify\n        send_resolved: true\n"
    )
    port = _free_port()
    process = subprocess.Popen(
        [str(BINARY), f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _get(f"{url}/-/ready") is not None, "Alertmanager to be ready")
        yield url
    finally:
        process.terminate()
        process.wait(10)
        receiver.shutdown()


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body = response.read()
            return orjson.loads(body) if body.strip().startswith((b"[", b"{")) else body
    except OSError:
        return None


def _wait(condition: Any, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _campaign(n: int, entity: str, severity: str = "warning", **evidence: Any) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {
        "schema_version": 1, "detection_id": f"{n:032x}", "detector": "campaign", "detector_version": "1",
        "entity_kind": "campaign", "entity": entity, "score": 20.0, "threshold": 6.0,
        "window_start_ms": now - 60_000, "window_end_ms": now, "detected_at_ms": now, "severity": severity,
        "evidence": {"summary": f"campaign {entity}", "features": [], "accounts": [f"{entity}-a{i}" for i in range(3)],
                     **evidence},
    }  # fmt: skip


def _notified(entity: str, status: str) -> bool:
    return any(
        a["labels"].get("entity") == entity and a["status"] == status
        for n in _Receiver.notifications
        for a in n["alerts"]
    )


def test_alertmanager_receives_groups_and_resolves(alertmanager: str) -> None:
    book = AlertBook(DEFAULT_RULES, renotify_s=300)
    sender = Sender(build_destination({"kind": "alertmanager", "url": f"{alertmanager}/api/v2/alerts"},
                                      "https://cases.example"))  # fmt: skip
    now = int(time.time() * 1000)
    firing = [a for n, e in enumerate(("cmp-a", "cmp-b", "cmp-c")) for a in book.observe(_campaign(n, e), now)]
    burst = {**_campaign(9, "185.220.101.0/24"), "detector": "burst", "entity_kind": "ip_prefix"}
    firing += book.observe(burst, now) + book.due_updates(now)  # a grouped rule delivers after the batch
    assert [r.status for r in sender.send(firing)] == ["delivered"] * 4

    _wait(lambda: len(_get(f"{alertmanager}/api/v2/alerts/groups") or []) == 2, "two groups")
    groups = {g["labels"]["rule"]: g for g in _get(f"{alertmanager}/api/v2/alerts/groups")}
    assert {a["labels"]["entity"] for a in groups["extraction_campaign"]["alerts"]} == {"cmp-a", "cmp-b", "cmp-c"}
    assert [a["labels"]["entity"] for a in groups["actor_burst"]["alerts"]] == ["185.220.101.0/24"]
    sample = groups["extraction_campaign"]["alerts"][0]
    assert "accounts_total" in sample["annotations"] and "cmp-a-a0" not in orjson.dumps(sample["labels"]).decode()
    assert sample["generatorURL"].startswith("https://cases.example/campaigns/")
    _wait(lambda: _notified("cmp-b", "firing"), "the receiver to be notified of the campaigns")

    # cmp-b merges into cmp-a; cmp-c closes. Both alerts resolve in Alertmanager and on-call hears.
    merged = book.observe(_campaign(10, "cmp-b", severity="info", merged_into="cmp-a"), int(time.time() * 1000))
    closed = book.campaign_closed("cmp-c", int(time.time() * 1000))
    assert [a["status"] for a in merged + closed] == ["resolved", "resolved"]
    assert [r.status for r in sender.send(merged + closed)] == ["delivered"] * 2
    _wait(lambda: _notified("cmp-b", "resolved") and _notified("cmp-c", "resolved"), "resolved notifications")
    active = {a["labels"]["entity"] for a in _get(f"{alertmanager}/api/v2/alerts?active=true") or []
              if a["status"]["state"] == "active"}  # fmt: skip
    assert active == {"cmp-a", "185.220.101.0/24"}
