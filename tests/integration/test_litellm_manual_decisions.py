"""A person's decision at the real LiteLLM proxy, over both feeds: `extractguard decisions add`
suspends one key's user and `decisions lift` restores it, each taking effect at the proxy within
5 s, with the hook fed from Kafka or, for a gateway host outside the broker's network, over HTTP
from the ingest's `GET /v1/decisions` under the gateway's own token. Another key is served
throughout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import urllib3

from extractguard.contracts.enforcement import ENFORCEMENT_APPROVALS
from extractguard.contracts.topics import CAMPAIGNS, DETECTIONS
from extractguard.demo.processes import Service, wait_group_stable, wait_http
from extractguard.kafka_offsets import start_group_at_end
from extractguard.settings import KafkaSettings
from tests.integration.conftest import free_port, within
from tests.integration.test_litellm_enforcement import SECRET, _litellm, _start_proxy
from tests.integration.test_litellm_proxy import stop_proxy

pytestmark = pytest.mark.kafka

TOKEN = "gateway-token-manual"


@pytest.mark.parametrize("feed", ["http", "kafka"])
def test_a_manual_suspend_and_its_lift_take_effect_at_the_proxy_within_5_s(
    kafka: KafkaSettings, services: list[Service], tmp_path: Path, run_id: str, feed: str
) -> None:
    _litellm()
    group = f"extractguard-enforcer-manual-{run_id}"
    start_group_at_end(kafka, group, [CAMPAIGNS, DETECTIONS, ENFORCEMENT_APPROVALS])
    web_port, ingest_port = free_port(), free_port()
    enforcer = Service("enforcer", {"EXTRACTGUARD_ENFORCER_GROUP_ID": group,
                                    "EXTRACTGUARD_ENFORCER_WEB_PORT": str(web_port)}, tmp_path)  # fmt: skip
    ingest = Service("ingest", {"EXTRACTGUARD_INGEST_PORT": str(ingest_port), "EXTRACTGUARD_INGEST_TOKEN": TOKEN},
                     tmp_path)  # fmt: skip
    for service in (enforcer, ingest):
        service.start()
        services.append(service)
    wait_http(f"http://127.0.0.1:{web_port}/readyz", 60, enforcer)
    wait_group_stable(kafka, group, 60, enforcer)
    wait_http(f"http://127.0.0.1:{ingest_port}/healthz", 60, ingest)

    suspect, honest = f"sk-eg-suspect-{run_id}", f"sk-eg-honest-{run_id}"
    keys = {suspect: {"user_id": f"suspect-{run_id}"}, honest: {"user_id": f"honest-{run_id}"}}
    via = (
        {"EXTRACTGUARD_ENFORCE_FEED_URL": f"http://127.0.0.1:{ingest_port}", "EXTRACTGUARD_INGEST_TOKEN": TOKEN}
        if feed == "http"
        else {"EXTRACTGUARD_ENFORCE_BOOTSTRAP_SERVERS": kafka.bootstrap_servers}
    )
    # The HTTP case must not lean on Kafka: the proxy is given no broker at all.
    env_off = {"EXTRACTGUARD_KAFKA_BOOTSTRAP_SERVERS": "", "KAFKA_BOOTSTRAP_SERVERS": ""} if feed == "http" else {}
    proxy, base = _start_proxy(tmp_path, keys, {"EXTRACTGUARD_KEY_SECRET": SECRET, **via, **env_off})
    http = urllib3.PoolManager(maxsize=4, retries=False, timeout=30)

    def status(key: str) -> int:
        body = orjson.dumps({"model": "guard-large", "messages": [{"role": "user", "content": "hello"}]})
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        return http.request("POST", f"{base}/v1/chat/completions", body=body, headers=headers).status

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "extractguard.cli", "decisions", *args], env=dict(os.environ),
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    try:
        assert status(suspect) == 200 and status(honest) == 200
        added = cli("add", "--account", f"suspect-{run_id}", "--action", "suspend", "--ttl", "1h", "--note",
                    f"manual test over {feed}", "--by", "ana")  # fmt: skip
        suspended_s = within(5, lambda: status(suspect) == 403, f"the suspend at the proxy over {feed}")
        assert status(honest) == 200
        cli("lift", added.split("group ")[1].split(";")[0], "--note", "lifted by the test")
        lifted_s = within(5, lambda: status(suspect) == 200, f"the lift at the proxy over {feed}")
        assert status(honest) == 200
        print(f"\nover {feed}: suspend at the proxy after {suspended_s:.2f} s, lift after {lifted_s:.2f} s")
    finally:
        stop_proxy(proxy)
