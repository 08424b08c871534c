"""Enforcement through the real LiteLLM proxy, offline (mock_response models, custom_auth keys, no
Postgres): the enforcer service runs on the real broker with a policy whose rungs are seconds long;
a campaign of five keys and an honest key send requests while the campaign record is republished
as the resolver would. The campaign is observed (200s), then throttled (429 with Retry-After),
then suspended (403); the honest key gets 200 throughout. Every decision lands in ClickHouse with
its evidence, and the bouncer's reports count exactly the refusals the clients saw.

A second test runs the hook inside the LiteLLM environment under a Python audit hook and shows
that answering a request opens no socket and resolves no name.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3
import yaml
from confluent_kafka import Producer

from extractguard.contracts.enforcement import ENFORCEMENT_DECISIONS, ENFORCEMENT_REPORTS
from extractguard.contracts.topics import CAMPAIGNS, DETECTIONS
from extractguard.demo.processes import Service, wait_group_stable, wait_http
from extractguard.kafka_offsets import end_offsets, read_since, start_group_at_end
from extractguard.settings import KafkaSettings
from extractguard.storage import migrate
from extractguard.storage.client import connect
from tests.integration.conftest import free_port, start_lander, stop_in_thread
from tests.integration.test_litellm_proxy import LITELLM_VENV, MASTER_KEY, SCAFFOLD, litellm_port, stop_proxy

SECRET = "enforcement-test-secret"
CAMPAIGN_KEYS = 5
POLICY = """\
version: 1
revision: litellm-test
rules:
  - name: extraction_campaign
    when: {source: campaign, min_members: 3, min_shaped_share: 0.5}
    targets: [account]
    ladder:
      - {action: observe, ttl: 10m, escalate_after: 4s}
      - {action: throttle, ttl: 10m, escalate_after: 6s, params: {rate_factor: 0.2, retry_after_s: 7}}
      - {action: suspend, ttl: 10m}
"""


def _litellm() -> Path:
    litellm = LITELLM_VENV / "bin" / "litellm"
    if not litellm.exists():
        pytest.skip(f"the LiteLLM proxy is not installed at {LITELLM_VENV}: run `make litellm-venv`")
    return litellm


def _campaign(run_id: str, members: list[str]) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {
        "schema_version": 1, "campaign_id": f"cmp-{run_id[:10]}00", "status": "growing", "first_seen_ms": now,
        "last_seen_ms": now, "updated_ms": now, "severity": "warning", "score": 60.0, "members": sorted(members),
        "members_total": len(members), "shaped_members": len(members),
        "fingerprints": [{"fingerprint": "template:5d2c0e9f11aa4b70", "weight": 60.0, "sharers": len(members)}],
    }  # fmt: skip


def _start_proxy(
    tmp_path: Path,
    keys: dict[str, dict[str, str]],
    env: dict[str, str],
    callbacks: tuple[str, ...] = ("extractguard_gateway.litellm_enforcer.enforcer",),
    mocks: dict[str, str | dict[str, Any]] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    models = [
        {"model_name": name, "litellm_params": {"model": f"openai/{name}", "api_key": "sk-mock", "mock_response": mock}}
        for name, mock in (mocks or {"guard-large": "A mock answer of a few words."}).items()
    ]
    config = {
        "model_list": models,
        "general_settings": {"master_key": MASTER_KEY, "custom_auth": "custom_auth.user_api_key_auth"},
        "litellm_settings": {"callbacks": list(callbacks)},
    }
    shutil.copy(SCAFFOLD / "custom_auth.py", tmp_path / "custom_auth.py")
    (tmp_path / "keys.json").write_text(json.dumps(keys))
    (tmp_path / "litellm.yaml").write_text(yaml.safe_dump(config))
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    log_path = tmp_path / "litellm.log"
    deadline = time.monotonic() + 180
    # Another worktree's tests use the same port range: a port free when chosen may be taken before
    # the proxy binds it. The proxy is ours once its log says it listens there (another proxy
    # answering on the port would have our requests refused for keys it does not know).
    for _attempt in range(5):
        port = litellm_port()
        listening = f"Uvicorn running on http://127.0.0.1:{port}"
        with log_path.open("ab") as log:
            proxy = subprocess.Popen(
                [str(_litellm()), "--config", str(tmp_path / "litellm.yaml"), "--host", "127.0.0.1", "--port",
                 str(port)], env={**clean, **env}, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        while proxy.poll() is None:
            try:
                answered = urllib3.request("GET", f"{base}/health/liveliness", timeout=5, retries=False).status
            except urllib3.exceptions.HTTPError:
                answered = None
            if answered == 200 and listening in log_path.read_text(errors="replace"):
                return proxy, base
            assert time.monotonic() < deadline, "the LiteLLM proxy did not start"
            time.sleep(1)
        assert "address already in use" in log_path.read_text(errors="replace"), log_path.read_text()[-3000:]
    raise AssertionError(f"the LiteLLM proxy found no free port: {log_path.read_text()[-3000:]}")


@pytest.mark.kafka
@pytest.mark.clickhouse
def test_a_campaign_is_observed_throttled_then_suspended_while_an_honest_key_keeps_getting_200s(
    kafka: KafkaSettings, embedded_path: Path, services: list[Service], tmp_path: Path, run_id: str
) -> None:
    _litellm()
    client = connect(f"chdb://{embedded_path}")
    migrate.apply(client, {"events_ttl_days": 30})
    lander, lock, landing = start_lander(kafka, client, f"extractguard-lander-enforce-{run_id}")
    try:
        _run(kafka, client, lock, services, tmp_path, run_id)
    finally:  # a lander left running would land into the next test's database
        stop_in_thread(lander, landing)


def _run(
    kafka: KafkaSettings, client: Any, lock: threading.Lock, services: list[Service], tmp_path: Path, run_id: str
) -> None:
    campaign_keys = {f"sk-eg-cmp-{run_id}-{i}": {"user_id": f"cmp-{run_id}-{i}"} for i in range(CAMPAIGN_KEYS)}
    honest_key = f"sk-eg-honest-{run_id}"
    keys = {**campaign_keys, honest_key: {"user_id": f"honest-{run_id}", "team_id": "research"}}
    members = [who["user_id"] for who in campaign_keys.values()]

    since = {topic: end_offsets(kafka, topic) for topic in (ENFORCEMENT_DECISIONS, ENFORCEMENT_REPORTS)}
    group = f"extractguard-enforcer-test-{run_id}"
    start_group_at_end(kafka, group, [CAMPAIGNS, DETECTIONS, "enforcement.approvals"])
    (tmp_path / "policy.yaml").write_text(POLICY)
    web_port = free_port()
    enforcer = Service("enforcer", {
        "EXTRACTGUARD_ENFORCER_GROUP_ID": group, "EXTRACTGUARD_ENFORCER_POLICY_FILE": str(tmp_path / "policy.yaml"),
        "EXTRACTGUARD_ENFORCER_WEB_PORT": str(web_port), "EXTRACTGUARD_ENFORCER_EXPIRE_INTERVAL_S": "1",
    }, tmp_path)  # fmt: skip
    enforcer.start()
    services.append(enforcer)
    wait_http(f"http://127.0.0.1:{web_port}/readyz", 60, enforcer)
    wait_group_stable(kafka, group, 60, enforcer)

    proxy, base = _start_proxy(tmp_path, keys, {
        "EXTRACTGUARD_KEY_SECRET": SECRET, "EXTRACTGUARD_ENFORCE_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "EXTRACTGUARD_ENFORCE_REPORT_INTERVAL_S": "1",
    })  # fmt: skip
    http = urllib3.PoolManager(maxsize=8, retries=False, timeout=30)
    producer = Producer(kafka.client_config())
    sent: list[dict[str, Any]] = []

    def send(key: str) -> None:
        at = int(time.time() * 1000)
        response = http.request(
            "POST", f"{base}/v1/chat/completions",
            body=orjson.dumps({"model": "guard-large", "messages": [{"role": "user", "content": "Map topic 7"}]}),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )  # fmt: skip
        body = orjson.loads(response.data) if response.status != 200 else None
        retry_after = response.headers.get("Retry-After")
        sent.append({"key": key, "at": at, "status": response.status, "retry_after": retry_after, "body": body})

    try:
        for key in keys:  # before any decision, everyone is served
            send(key)
        assert {s["status"] for s in sent} == {200}, sent
        published_at = 0.0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if time.monotonic() - published_at >= 1:  # the resolver republishes a growing campaign
                producer.produce(CAMPAIGNS, key=b"cmp", value=orjson.dumps(_campaign(run_id, members)))
                producer.flush(10)
                published_at = time.monotonic()
            for key in keys:
                send(key)
            recent = [s for s in sent[-3 * len(keys) :] if s["key"] in campaign_keys]
            if len(recent) == 3 * CAMPAIGN_KEYS and {s["status"] for s in recent} == {403}:
                break
            time.sleep(0.2)
        time.sleep(4)  # the hook reports every second
    finally:
        stop_proxy(proxy)

    decisions = [orjson.loads(v) for v in read_since(kafka, ENFORCEMENT_DECISIONS, since[ENFORCEMENT_DECISIONS])]
    ours = [d for d in decisions if d["entity"] in members]
    first_decision_ms = min(d["decided_at_ms"] for d in ours)
    by_action = {
        a: min(d["decided_at_ms"] for d in ours if d["action"] == a) for a in ("observe", "throttle", "suspend")
    }
    honest = [s for s in sent if s["key"] == honest_key]
    harvest = [s for s in sent if s["key"] in campaign_keys]
    after = [s for s in harvest if s["at"] >= first_decision_ms]
    served_after = [s for s in after if s["status"] == 200]
    statuses = Counter(s["status"] for s in after)
    phases = {
        "observe": [s for s in after if s["at"] < by_action["throttle"]],
        "throttle": [s for s in after if by_action["throttle"] <= s["at"] < by_action["suspend"]],
        "suspend": [s for s in after if s["at"] >= by_action["suspend"]],
    }
    print(
        f"\ncampaign requests after its first decision: {len(after)}, served {len(served_after)} "
        f"({len(served_after) / len(after):.1%}); by status {dict(statuses)}; served/sent per rung: "
        + ", ".join(f"{k} {sum(s['status'] == 200 for s in v)}/{len(v)}" for k, v in phases.items())
        + f"; honest key: {dict(Counter(s['status'] for s in honest))}"
    )
    assert {s["status"] for s in honest} == {200}, Counter(s["status"] for s in honest)
    assert statuses[429] > 0 and statuses[403] >= 3 * CAMPAIGN_KEYS, statuses
    assert set(statuses) <= {200, 429, 403}
    # Observe is shadow: nothing refused before the throttle was decided...
    assert all(s["status"] == 200 for s in harvest if s["at"] < by_action["throttle"] - 50)
    # ...and once a key is refused with 403 it stays refused.
    for key in campaign_keys:
        answers = [s["status"] for s in harvest if s["key"] == key]
        first_403 = answers.index(403)
        assert set(answers[first_403:]) == {403}, answers
    assert {s["retry_after"] for s in harvest if s["status"] == 429} == {"7"}
    assert {s["body"]["error"]["type"] for s in harvest if s["status"] == 403} == {"suspended"}
    throttled_window = [s for s in harvest if by_action["throttle"] + 500 <= s["at"] < by_action["suspend"] - 500]
    if throttled_window:  # a factor of 0.2 admits about one in five
        assert sum(s["status"] == 200 for s in throttled_window) <= len(throttled_window) * 0.5

    # The bouncer's reports count exactly what the clients were refused.
    ids = {d["decision_id"] for d in ours}
    reported: Counter[str] = Counter()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        values = read_since(kafka, ENFORCEMENT_REPORTS, since[ENFORCEMENT_REPORTS])
        reports = [r for r in map(orjson.loads, values) if r["decision_id"] in ids]
        reported = Counter()
        for r in reports:
            reported[r["outcome"]] += r["requests"]
        if reported["throttled"] == statuses[429] and reported["denied"] == statuses[403]:
            break
        time.sleep(1)
    assert (reported["throttled"], reported["denied"]) == (statuses[429], statuses[403]), reported

    # Every decision is in ClickHouse with its evidence and rule, and so are the reports.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with lock:
            landed = client.query(
                "SELECT decision_id, action, status, campaign_id, rule, policy_revision, evidence_source FROM decisions"
                f" FINAL WHERE entity IN {tuple(members)}"
            ).result_rows
            counted = client.query(
                f"SELECT outcome, sum(requests) FROM bouncer_reports FINAL WHERE decision_id IN {tuple(ids)} GROUP BY 1"
            ).result_rows
        if {r[0] for r in landed} == ids and dict(counted).get("denied") == statuses[403]:
            break
        time.sleep(1)
    assert {r[0] for r in landed} == ids
    assert {(r[3], r[4], r[5], r[6]) for r in landed} == {
        (f"cmp-{run_id[:10]}00", "extraction_campaign", "litellm-test", "campaign")
    }
    assert {r[2] for r in landed if r[1] in ("observe", "throttle")} == {"superseded"}
    assert {r[2] for r in landed if r[1] == "suspend"} == {"active"}
    assert dict(counted)["throttled"] == statuses[429]


NO_NETWORK_SCRIPT = r"""
import asyncio, json, os, sys
os.environ["EXTRACTGUARD_KEY_SECRET"] = "s"
os.environ.pop("EXTRACTGUARD_ENFORCE_BOOTSTRAP_SERVERS", None)
os.environ.pop("EXTRACTGUARD_KAFKA_BOOTSTRAP_SERVERS", None)
from litellm.proxy._types import ProxyException, UserAPIKeyAuth
from extractguard_gateway.enforcement.cache import DecisionCache
from extractguard_gateway.enforcement.settings import EnforceSettings
from extractguard_gateway.litellm_enforcer import ExtractGuardEnforcer

cache = DecisionCache()
for user, kind in (("suspended", "deny"), ("throttled", "limit")):
    cache.apply({"decision_id": "dec-000000000000000" + str(len(user) % 10), "scope": "account", "entity": user,
                 "action": kind, "status": "active", "expires_at_ms": 2**62, "updated_at_ms": 1,
                 "effect": {"kind": kind, "rate_factor": 0.5}})
cache.ready.set()
hook = ExtractGuardEnforcer(EnforceSettings.from_env(), cache=cache, start_feed=False)
events = []
watching = [False]
sys.addaudithook(lambda event, args: events.append(event) if watching[0] and event.startswith("socket.") else None)
answers = []

async def main():
    for user in ("honest", "suspended", "throttled", "throttled", "honest"):
        auth = UserAPIKeyAuth(api_key="sk-" + user, user_id=user)
        data = {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                "proxy_server_request": {"headers": {"x-forwarded-for": "203.0.113.9"}}, "metadata": {}}
        watching[0] = True
        try:
            await hook.async_pre_call_hook(auth, None, data, "acompletion")
            answers.append(200)
        except ProxyException as error:
            answers.append(int(error.code))
        finally:
            watching[0] = False

asyncio.run(main())
hook_events = list(events)
import socket
watching[0] = True  # the control: the audit hook does see a name resolved on this machine
socket.getaddrinfo("localhost", 80)
watching[0] = False
print(json.dumps({"answers": answers, "socket_events": hook_events, "control_events": events[len(hook_events):]}))
"""


def test_the_litellm_hook_answers_a_request_without_any_network_call(tmp_path: Path) -> None:
    python = LITELLM_VENV / "bin" / "python"
    _litellm()
    script = tmp_path / "no_network.py"
    script.write_text(NO_NETWORK_SCRIPT)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    done = subprocess.run([str(python), str(script)], capture_output=True, text=True, env=clean, timeout=300,
                          cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["answers"] == [200, 403, 429, 200, 200]
    assert result["socket_events"] == []
    assert "socket.getaddrinfo" in result["control_events"]
