"""IP-prefix decisions pushed to the real CrowdSec Local API (Debian's `crowdsec`, run LAPI-only
from a configuration of the test's own): a stock bouncer asking `GET /v1/decisions?ip=…` with its
API key then gets a `ban` for an address inside the suspended /24, a `captcha` for the challenged
one, nothing for a neighbouring prefix, nothing after the decision's TTL, and nothing once it was
withdrawn. Account-scoped decisions are not pushed (stock bouncers know only IPs and ranges)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3

from extractguard.enforcement.crowdsec import CrowdSecPusher
from extractguard.settings import CrowdSecSettings
from tests.integration.conftest import free_port

CROWDSEC = shutil.which("crowdsec")
CSCLI = shutil.which("cscli")
pytestmark = pytest.mark.skipif(
    CROWDSEC is None or CSCLI is None or not Path("/var/lib/crowdsec/hub/.index.json").exists(),
    reason="CrowdSec is not installed: apt-get install crowdsec (Debian package)",
)
BOUNCER_KEY = "extractguardtestbouncerkey0123"


def _config(home: Path, port: int) -> Path:
    (home / "data").mkdir(parents=True)
    (home / "local_api_credentials.yaml").touch()
    config = {
        "common": {"daemonize": False, "log_media": "stdout", "log_level": "info", "working_dir": "."},
        "config_paths": {
            "config_dir": f"{home}/", "data_dir": f"{home}/data/", "simulation_path": "/etc/crowdsec/simulation.yaml",
            "hub_dir": "/var/lib/crowdsec/hub/", "index_path": "/var/lib/crowdsec/hub/.index.json",
            "notification_dir": f"{home}/notifications/", "plugin_dir": "/usr/lib/crowdsec/plugins/",
        },
        "cscli": {"output": "json"},
        "db_config": {"type": "sqlite", "db_path": f"{home}/data/crowdsec.db", "use_wal": False},
        "api": {
            "client": {"credentials_path": f"{home}/local_api_credentials.yaml"},
            "server": {"listen_uri": f"127.0.0.1:{port}", "profiles_path": "/etc/crowdsec/profiles.yaml",
                       "trusted_ips": ["127.0.0.1", "::1"]},
        },
        "prometheus": {"enabled": False},
    }  # fmt: skip
    path = home / "config.yaml"
    path.write_bytes(orjson.dumps(config))  # JSON is YAML
    return path


@pytest.fixture
def lapi(tmp_path: Path) -> Iterator[tuple[str, str]]:
    port = free_port()
    config = _config(tmp_path / "crowdsec", port)
    password = "extractguard-machine-password"
    for command in (
        ["machines", "add", "extractguard", "--password", password, "--force", "-f", str(config.parent / "m.yaml")],
        ["bouncers", "add", "test-bouncer", "-k", BOUNCER_KEY],
    ):
        subprocess.run([str(CSCLI), "-c", str(config), *command], check=True, capture_output=True, timeout=60)
    log = (tmp_path / "lapi.log").open("ab")
    process = subprocess.Popen([str(CROWDSEC), "-c", str(config), "-no-cs"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "lapi.log").read_text()[-2000:]
            try:
                urllib3.request("GET", f"{url}/v1/decisions", headers={"X-Api-Key": BOUNCER_KEY}, timeout=2)
                break
            except urllib3.exceptions.HTTPError:
                assert time.monotonic() < deadline, "the CrowdSec LAPI did not start"
                time.sleep(0.5)
        yield url, password
    finally:
        process.terminate()
        process.wait(20)


def _bouncer_sees(url: str, ip: str) -> list[str]:
    response = urllib3.request("GET", f"{url}/v1/decisions?ip={ip}", headers={"X-Api-Key": BOUNCER_KEY}, timeout=5)
    assert response.status == 200, response.data
    decisions = orjson.loads(response.data) or []
    return sorted(d["type"] for d in decisions)


def _decision(n: int, scope: str, entity: str, kind: str, ttl_s: float, status: str = "active") -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {"decision_id": f"dec-{n:016x}", "scope": scope, "entity": entity, "action": kind, "status": status,
            "effect": {"kind": kind}, "rule": "burst_from_one_prefix", "reason": "a critical burst",
            "policy": {"name": "default", "revision": "t1"}, "decided_at_ms": now,
            "expires_at_ms": now + int(ttl_s * 1000), "updated_at_ms": now}  # fmt: skip


def test_ip_prefix_decisions_reach_crowdsec_bouncers_and_expire_there(lapi: tuple[str, str]) -> None:
    url, password = lapi
    pusher = CrowdSecPusher(CrowdSecSettings(lapi_url=url, machine_id="extractguard", password=password))  # type: ignore[arg-type]
    pushed = pusher.push([
        _decision(1, "ip_prefix", "198.51.100.0/24", "deny", ttl_s=600),
        _decision(2, "ip_prefix", "203.0.113.0/24", "challenge", ttl_s=600),
        _decision(3, "ip_prefix", "192.0.2.0/24", "deny", ttl_s=3),
        _decision(4, "account", "acct-1", "deny", ttl_s=600),  # not a CrowdSec matter
        _decision(5, "ip_prefix", "100.64.0.0/24", "none", ttl_s=600),  # observe: nothing enforced
    ])  # fmt: skip
    assert pushed == 3
    assert _bouncer_sees(url, "198.51.100.77") == ["ban"]
    assert _bouncer_sees(url, "203.0.113.9") == ["captcha"]
    assert _bouncer_sees(url, "198.51.101.1") == []
    assert _bouncer_sees(url, "100.64.0.5") == []
    assert _bouncer_sees(url, "192.0.2.10") == ["ban"]
    time.sleep(4.5)
    assert _bouncer_sees(url, "192.0.2.10") == []  # its TTL ran out in CrowdSec too
    pusher.push([_decision(1, "ip_prefix", "198.51.100.0/24", "deny", ttl_s=600, status="lifted")])
    assert _bouncer_sees(url, "198.51.100.77") == []


@pytest.mark.kafka
def test_the_bouncer_pushes_what_the_enforcer_publishes(lapi: tuple[str, str], kafka: Any, run_id: str) -> None:
    import threading

    from confluent_kafka import Producer

    from extractguard.contracts.enforcement import ENFORCEMENT_DECISIONS
    from extractguard.enforcement.crowdsec import CrowdSecBouncer

    url, password = lapi
    from extractguard.contracts.enforcement import valid_decision
    from extractguard.enforcement.book import EnforcementBook
    from extractguard.enforcement.policy import shipped_policy

    octet = int(run_id[:2], 16)
    burst = {
        "schema_version": 1, "detection_id": run_id.ljust(32, "0"), "detector": "burst", "detector_version": "1",
        "entity_kind": "ip_prefix", "entity": f"198.18.{octet}.0/24", "score": 40.0, "threshold": 8.0,
        "window_start_ms": 0, "window_end_ms": 60_000, "detected_at_ms": 60_000, "severity": "critical",
        "evidence": {"summary": "burst", "features": [], "accounts": [], "expected_false_alarms_per_day": 0.1},
    }  # fmt: skip
    book = EnforcementBook(shipped_policy())
    now = int(time.time() * 1000)
    book.detection(burst, now_ms=now - 10 * 60_000)  # observed ten minutes ago...
    (decision,) = [d for d in book.detection(burst, now_ms=now) if d["status"] == "active"]  # ...throttled now
    decision = valid_decision({**decision, "action": "suspend", "effect": {"kind": "deny"}})
    producer = Producer(kafka.client_config())
    producer.produce(
        ENFORCEMENT_DECISIONS, key=f"ip_prefix:{decision['entity']}".encode(), value=orjson.dumps(decision)
    )
    producer.flush(10)
    settings = CrowdSecSettings(lapi_url=url, machine_id="extractguard", password=password,  # type: ignore[arg-type]
                                group_id=f"extractguard-crowdsec-{run_id}")  # fmt: skip
    bouncer = CrowdSecBouncer(settings, kafka)
    stopped = threading.Event()
    loop = threading.Thread(target=bouncer.run, args=(stopped,), daemon=True)
    loop.start()
    try:
        deadline = time.monotonic() + 60
        while _bouncer_sees(url, f"198.18.{octet}.9") != ["ban"]:
            assert time.monotonic() < deadline, "the decision did not reach CrowdSec"
            time.sleep(0.5)
    finally:
        stopped.set()
        loop.join(timeout=30)
