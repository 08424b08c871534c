"""The README's "Run it beside your gateway", followed end to end: `extractguard up` on a fresh
home, the real LiteLLM proxy (custom_auth keys: its Postgres key store needs Prisma's engines,
which this machine cannot fetch) with both ExtractGuard callbacks pointed at the stack's ingest
alone (events over HTTP, decisions over the HTTP feed, no broker given to the proxy), traffic from
several keys landed per key, a manual suspend and its lift at the proxy within 5 s, and `down`
leaving nothing running, with no error line in any service's log."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import urllib3

from extractguard.pids import pid_alive
from extractguard.settings import KafkaSettings
from tests.integration.conftest import cli_process, service_log_errors, stack_env, within
from tests.integration.test_litellm_enforcement import SECRET, _litellm, _start_proxy
from tests.integration.test_litellm_proxy import stop_proxy

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

TOKEN = "beside-a-gateway-token"
CALLBACKS = ("extractguard_gateway.litellm_callback.extractguard", "extractguard_gateway.litellm_enforcer.enforcer")


def test_a_gateway_beside_the_stack_is_watched_and_enforced_through_the_ingest_alone(
    kafka: KafkaSettings, tmp_path: Path, run_id: str
) -> None:
    _litellm()
    home = tmp_path / "home"
    env, ports = stack_env(kafka, home, TOKEN, run_id)
    env["EXTRACTGUARD_INGEST_KEY_SECRET"] = SECRET
    up = cli_process(env, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    state = orjson.loads((home / "stack" / "state.json").read_bytes())
    ingest = f"http://127.0.0.1:{ports['INGEST']}"
    keys = {f"sk-eg-beside-{run_id}-{n}": {"user_id": f"beside-{run_id}-{n}"} for n in range(3)}
    users = [who["user_id"] for who in keys.values()]
    proxy, base = _start_proxy(tmp_path, keys, {
        "EXTRACTGUARD_KEY_SECRET": SECRET, "EXTRACTGUARD_INGEST_URL": ingest, "EXTRACTGUARD_INGEST_TOKEN": TOKEN,
        "EXTRACTGUARD_ENFORCE_FEED_URL": ingest,
        "EXTRACTGUARD_KAFKA_BOOTSTRAP_SERVERS": "", "KAFKA_BOOTSTRAP_SERVERS": "",  # the ingest alone
    }, callbacks=CALLBACKS)  # fmt: skip
    http = urllib3.PoolManager(maxsize=4, retries=False, timeout=30)

    def status(key: str) -> int:
        body = orjson.dumps({"model": "guard-large", "messages": [{"role": "user", "content": f"hello from {key}"}]})
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        return http.request("POST", f"{base}/v1/chat/completions", body=body, headers=headers).status

    try:
        assert [status(key) for key in keys for _ in range(10)] == [200] * 30

        def per_user() -> dict[str, int]:
            query = f"SELECT account_id, count() AS n FROM events WHERE account_id IN {tuple(users)} GROUP BY 1"
            sql = cli_process(env, "sql", query, "--format", "json", timeout_s=60)
            assert sql.returncode == 0 and not sql.stderr.strip(), sql.stderr
            return {row["account_id"]: int(row["n"]) for row in orjson.loads(sql.stdout)}

        within(60, lambda: per_user() == dict.fromkeys(users, 10), "ten events landed per key")

        suspect, *others = list(keys)
        added = cli_process(env, "decisions", "add", "--account", keys[suspect]["user_id"], "--action", "suspend",
                            "--ttl", "1h", "--note", "beside a gateway", "--by", "ana", timeout_s=60)  # fmt: skip
        assert added.returncode == 0, added.stdout + added.stderr
        suspended_s = within(5, lambda: status(suspect) == 403, "the manual suspend at the proxy")
        assert [status(key) for key in others] == [200, 200]
        lifted = cli_process(env, "decisions", "lift", added.stdout.split("group ")[1].split(";")[0], "--note", "done",
                             timeout_s=60)  # fmt: skip
        assert lifted.returncode == 0, lifted.stdout + lifted.stderr
        lifted_s = within(5, lambda: status(suspect) == 200, "the lift at the proxy")
        print(f"\nbeside a gateway: suspend at the proxy after {suspended_s:.2f} s, lift after {lifted_s:.2f} s")
    finally:
        stop_proxy(proxy)
        down = cli_process(env, "down", timeout_s=180)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(pid_alive(s["pid"]) for s in state["services"].values())
    errors = service_log_errors(home)
    assert not errors, "\n".join(errors)
