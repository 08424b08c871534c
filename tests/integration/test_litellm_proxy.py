"""The real LiteLLM proxy, offline (mock_response models, master key, no Postgres), with the shipped
callback and nothing else of ours: a few hundred requests from several keys, addresses and user
agents -> the HTTP ingest -> Kafka -> the lander -> ClickHouse. Every request is accounted for:
landed once, or dead-lettered with its reason.

The proxy runs in its own environment (`make litellm-venv`: litellm[proxy] and
extractguard-gateway only), as a gateway runs it. Its config is the shipped snippet
(gateway/examples/litellm.yaml, quoted in the README) merged into the test's models and keys.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3
import yaml

from extractguard.contracts.topics import GATEWAY_EVENTS, dlq_name
from extractguard.demo.processes import Service, wait_http
from extractguard.kafka_offsets import end_offsets
from extractguard.paths import project_root
from extractguard.settings import KafkaSettings
from extractguard.storage import migrate
from extractguard.storage.client import connect
from extractguard_gateway.events import keyed_hash
from tests.integration.conftest import free_port, read_from, start_lander, stop_in_thread

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

TOKEN = "litellm-test-token"
SECRET = "litellm-test-secret"
MASTER_KEY = "sk-master-test"
SCAFFOLD = Path(__file__).parent / "litellm"
KEYS: dict[str, dict[str, str]] = orjson.loads((SCAFFOLD / "keys.json").read_bytes())
SNIPPET = project_root() / "gateway" / "examples" / "litellm.yaml"
LITELLM_VENV = Path(os.environ.get("EXTRACTGUARD_LITELLM_VENV", project_root() / ".venv-litellm"))
AGENTS = ["openai-python/1.54.0", "openai-node/4.67.1", "curl/8.5.0", "python-httpx/0.27.2", "LangChain/0.3.1"]
REQUESTS = 300


def proxy_config(tmp_path: Path) -> Path:
    """The test's models and keys, plus the shipped snippet as it is."""
    mock = {"api_key": "sk-mock", "mock_response": "A mock answer of a few words."}
    models = [
        {"model_name": name, "litellm_params": {"model": f"openai/{name}", **mock}}
        for name in ("guard-large", "guard-small")
    ]
    config = {
        "model_list": models,
        "general_settings": {"master_key": MASTER_KEY, "custom_auth": "custom_auth.user_api_key_auth"},
        **yaml.safe_load(SNIPPET.read_text()),
    }
    for name in ("custom_auth.py", "keys.json"):
        shutil.copy(SCAFFOLD / name, tmp_path / name)
    path = tmp_path / "litellm.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def litellm_port() -> int:
    for port in range(24000, 24100):  # this worktree's LiteLLM range
        try:
            with __import__("socket").create_server(("127.0.0.1", port)):
                return port
        except OSError:
            continue
    return free_port()


def stop_proxy(proxy: subprocess.Popen[bytes]) -> None:
    """Stop a proxy this test started: asked first, killed if it has not gone in 30 s."""
    proxy.terminate()
    try:
        proxy.wait(30)
    except subprocess.TimeoutExpired:
        proxy.kill()


def plan(n: int, seed: int) -> list[dict[str, Any]]:
    """`n` requests: known keys from several addresses and agents, unknown keys, an unknown
    model, an address of "unknown", an oversized user agent and a long client-asserted user."""
    rng = random.Random(seed)
    keys = list(KEYS)
    requests = []
    for i in range(n):
        kind = "ok"
        key = rng.choice(keys)
        if i % 25 == 3:
            kind, key = "bad_key", f"sk-eg-stolen-{i}"
        elif i % 40 == 7:
            kind = "bad_model"
        forwarded = f"203.0.{113 + i % 6}.{rng.randrange(1, 250)}, 10.0.0.{1 + i % 3}"
        if i % 50 == 11:
            forwarded = "unknown"
        agent = "x" * 700 if i % 60 == 13 else rng.choice(AGENTS)
        body: dict[str, Any] = {
            "model": "no-such-model" if kind == "bad_model" else rng.choice(["guard-large", "guard-small"]),
            "messages": [{"role": "user", "content": f"Summarise item {i} of the catalogue in {rng.choice('ab')} way"}],
            "max_tokens": 64,
        }
        if i % 4 == 0:
            body["user"] = f"end-user-{i % 9}" if i % 8 else "u" * 300
        if i % 10 == 5:
            body.update(logprobs=True, top_logprobs=5)
        requests.append({"i": i, "kind": kind, "key": key, "forwarded": forwarded, "agent": agent, "body": body})
    return requests


def send(base: str, http: urllib3.PoolManager, request: dict[str, Any]) -> dict[str, Any]:
    response = http.request(
        "POST", f"{base}/v1/chat/completions", body=orjson.dumps(request["body"]),
        headers={"Authorization": f"Bearer {request['key']}", "Content-Type": "application/json",
                 "User-Agent": request["agent"], "X-Forwarded-For": request["forwarded"]},
    )  # fmt: skip
    return {**request, "status": response.status, "call_id": response.headers.get("x-litellm-call-id")}


def test_every_request_through_the_real_litellm_proxy_is_accounted_for(
    kafka: KafkaSettings, embedded_path: Path, services: list[Service], tmp_path: Path, run_id: str
) -> None:
    litellm = LITELLM_VENV / "bin" / "litellm"
    if not litellm.exists():
        pytest.skip(f"the LiteLLM proxy is not installed at {LITELLM_VENV}: run `make litellm-venv`")
    client = connect(f"chdb://{embedded_path}")
    while migrate.revert(client):
        pass
    migrate.apply(client, {"events_ttl_days": 30})
    dlq_start = end_offsets(kafka, dlq_name(GATEWAY_EVENTS))
    lander, lock, landing = start_lander(kafka, client, f"extractguard-lander-litellm-{run_id}")

    ingest_port = free_port()
    ingest = Service("ingest", {"EXTRACTGUARD_INGEST_PORT": str(ingest_port), "EXTRACTGUARD_INGEST_TOKEN": TOKEN},
                     tmp_path)  # fmt: skip
    ingest.start()
    services.append(ingest)
    wait_http(f"http://127.0.0.1:{ingest_port}/healthz", 60, ingest)

    port = litellm_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))},
        "EXTRACTGUARD_INGEST_URL": f"http://127.0.0.1:{ingest_port}",
        "EXTRACTGUARD_INGEST_TOKEN": TOKEN,
        "EXTRACTGUARD_KEY_SECRET": SECRET,
        "EXTRACTGUARD_TRUSTED_PROXIES": "10.0.0.0/8",
    }
    log = (tmp_path / "litellm.log").open("ab")
    proxy = subprocess.Popen(
        [str(litellm), "--config", str(proxy_config(tmp_path)), "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            assert proxy.poll() is None, (tmp_path / "litellm.log").read_text()[-3000:]
            try:
                if urllib3.request("GET", f"{base}/health/liveliness", timeout=5, retries=False).status == 200:
                    break
            except urllib3.exceptions.HTTPError:
                pass
            assert time.monotonic() < deadline, "the LiteLLM proxy did not start"
            time.sleep(1)
        http = urllib3.PoolManager(maxsize=8, retries=False, timeout=30)
        with ThreadPoolExecutor(max_workers=8) as pool:
            sent = list(pool.map(lambda r: send(base, http, r), plan(REQUESTS, seed=int(run_id, 16) % 1000)))

        statuses = {kind: {s["status"] for s in sent if s["kind"] == kind} for kind in ("ok", "bad_key", "bad_model")}
        assert statuses == {"ok": {200}, "bad_key": {401}, "bad_model": {400}}, statuses
        # Each request's event: by LiteLLM's call id, or for a refused key by the key's own hash.
        by_call = {s["call_id"]: s for s in sent if s["call_id"]}
        by_account = {
            "key:" + keyed_hash(hashlib.sha256(s["key"].encode()).hexdigest(), SECRET.encode()): s
            for s in sent if s["kind"] == "bad_key"
        }  # fmt: skip
        assert len(by_call) + len(by_account) == REQUESTS

        def landed() -> list[tuple[Any, ...]]:
            with lock:
                return [tuple(r) for r in client.query(
                    "SELECT event_id, account_id, org_id, api_key_hash, client_ip_prefix, client_asn, user_agent,"
                    " end_user_id, response_status, request_logprobs, prompt_sketched FROM events"
                ).result_rows]  # fmt: skip

        deadline = time.monotonic() + 120
        rows = landed()
        while len(rows) < REQUESTS and time.monotonic() < deadline:
            time.sleep(1)
            rows = landed()
        dead = read_from(kafka, dlq_name(GATEWAY_EVENTS), dlq_start, expect=0, timeout_s=3)
    finally:
        stop_proxy(proxy)
        stop_in_thread(lander, landing)

    # Accounted for: every request landed exactly once, and nothing was dead-lettered.
    assert [m.value()[:200] for m in dead] == []
    ids = [r[0] for r in rows]
    if len(ids) != len(set(ids)):
        with lock:
            twice = client.query(
                "SELECT event_id, kafka_partition, kafka_offset, response_status, landed_at FROM events"
                " WHERE event_id IN (SELECT event_id FROM events GROUP BY event_id HAVING count() > 1)"
            ).result_rows
        pytest.fail(f"landed more than once: {twice}")
    assert len(ids) == len(set(ids)) == REQUESTS, (len(ids), len(set(ids)))
    matched = {r[0]: by_call[r[0]] for r in rows if r[0] in by_call}
    refused = {r[0]: by_account[r[1]] for r in rows if r[1] in by_account}
    assert len(matched) + len(refused) == REQUESTS

    rows_by_id = {r[0]: r for r in rows}
    for event_id, request in matched.items():
        _, account, org, key_hash, prefix, asn, agent, end_user, status, logprobs, sketched = rows_by_id[event_id]
        who = KEYS[request["key"]]
        assert account == who.get("user_id") or account == f"team:{who.get('team_id')}"
        assert org == (who.get("org_id") or (f"team:{who['team_id']}" if "team_id" in who else ""))
        assert asn is None  # LiteLLM knows no ASN: absent, never 0
        assert key_hash and status == (200 if request["kind"] == "ok" else 400) and sketched
        if request["forwarded"] == "unknown":
            assert prefix == ""  # an unusable address is absent, the event is kept
        else:
            assert prefix == ".".join(request["forwarded"].split(",")[0].split(".")[:3]) + ".0/24"
        assert agent == (None if len(request["agent"]) > 512 else request["agent"])  # field dropped, event kept
        user = request["body"].get("user")
        assert end_user == (None if user is None else keyed_hash(user, SECRET.encode()))
        assert logprobs == bool(request["body"].get("logprobs"))
    for event_id in refused:
        assert rows_by_id[event_id][8] == 401
    assert len({r[3] for r in rows if r[0] in matched}) == len({s["key"] for s in matched.values()})
