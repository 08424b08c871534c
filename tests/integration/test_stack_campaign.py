"""A campaign caught and decided under `extractguard up`, and the decision carried out at two real
LiteLLM proxies, one fed over HTTP by the stack's ingest (no broker given to it), one over Kafka.

Hydra in miniature (`scenarios/chaos/hydra_small.yaml`: 300 organic accounts, 44 look-alikes, a
fleet of 150 behind a proxy pool; 15,316 events over two hours of event time) is posted to the
stack's ingest as a gateway would post it. The detectors, the linker and the resolver find the
fleet; the enforcer's default policy decides on its members (its first rung, observe: served, and
counted). Each proxy has a key per member and a few organic accounts' keys; requests from them are
served (observe refuses nothing) and both proxies report what they observed under the decision:
the Kafka-fed one to `enforcement.reports` itself, the HTTP-fed one through the ingest's
`POST /v1/decisions/reports`. No organic account is decided, and no service logs an error.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3

from extractguard.evaluation.sources import SimulatedReplay
from extractguard.paths import project_root
from extractguard.settings import KafkaSettings
from extractguard.simulator.scenario import Scenario
from tests.integration.conftest import cli_process, service_log_errors, stack_env, within
from tests.integration.test_litellm_enforcement import SECRET, _litellm, _start_proxy
from tests.integration.test_litellm_proxy import stop_proxy

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

TOKEN = "stack-campaign-token"
SCENARIO = project_root() / "scenarios" / "chaos" / "hydra_small.yaml"
ENFORCER = ("extractguard_gateway.litellm_enforcer.enforcer",)


def _scenario_events() -> tuple[list[bytes], dict[str, str]]:
    """The scenario's events as the gateway would post them, and each account's label."""
    scenario = Scenario.from_yaml(SCENARIO)
    # Ending a minute ago, as a gateway's traffic would.
    replay = SimulatedReplay(scenario, int(time.time() * 1000) - int(scenario.duration_s * 1000) - 60_000)
    rows = list(replay.events())
    return [orjson.dumps(row.event) for row in rows], {row.event["account_id"]: row.label for row in rows}


def test_a_campaign_through_the_stack_is_decided_and_carried_out_at_proxies_fed_over_http_and_kafka(
    kafka: KafkaSettings, tmp_path: Path, run_id: str
) -> None:
    _litellm()
    events, labels = _scenario_events()
    fleet = sorted(a for a, label in labels.items() if label == "campaign")
    organic = sorted(a for a, label in labels.items() if label == "organic")[:5]
    keys = {f"sk-eg-{account}": {"user_id": account} for account in [*fleet, *organic]}
    key_of = {who["user_id"]: key for key, who in keys.items()}

    home = tmp_path / "home"
    env, ports = stack_env(kafka, home, TOKEN, run_id)
    up = cli_process(env, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    ingest = f"http://127.0.0.1:{ports['INGEST']}"
    proxies = []
    try:
        common = {"EXTRACTGUARD_KEY_SECRET": SECRET, "EXTRACTGUARD_ENFORCE_REPORT_INTERVAL_S": "1"}
        (tmp_path / "http").mkdir()
        (tmp_path / "kafka").mkdir()
        proxies.append(_start_proxy(tmp_path / "http", keys, {
            **common, "EXTRACTGUARD_ENFORCE_FEED_URL": ingest, "EXTRACTGUARD_INGEST_TOKEN": TOKEN,
            "EXTRACTGUARD_KAFKA_BOOTSTRAP_SERVERS": "", "KAFKA_BOOTSTRAP_SERVERS": "",  # the ingest alone
        }, callbacks=ENFORCER))  # fmt: skip
        proxies.append(_start_proxy(tmp_path / "kafka", keys, {
            **common, "EXTRACTGUARD_ENFORCE_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        }, callbacks=ENFORCER))  # fmt: skip
        http = urllib3.PoolManager(maxsize=4, retries=False, timeout=30)

        def status(base: str, account: str) -> int:
            body = orjson.dumps({"model": "guard-large", "messages": [{"role": "user", "content": "Map topic 7"}]})
            headers = {"Authorization": f"Bearer {key_of[account]}", "Content-Type": "application/json"}
            return http.request("POST", f"{base}/v1/chat/completions", body=body, headers=headers).status

        post = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}
        for start in range(0, len(events), 2000):
            answer = http.request("POST", f"{ingest}/v1/events", body=b"\n".join(events[start : start + 2000]),
                                  headers=post)  # fmt: skip
            assert answer.status == 200 and orjson.loads(answer.data)["rejected"] == 0, answer.data[:500]
        posted_at = time.monotonic()

        def sql(query: str) -> list[dict[str, Any]]:
            done = cli_process(env, "sql", query, "--format", "json", timeout_s=60)
            assert done.returncode == 0 and not done.stderr.strip(), done.stderr
            rows: list[dict[str, Any]] = orjson.loads(done.stdout)
            return rows

        accounts = tuple(fleet + organic)
        within(120, lambda: sql(f"SELECT count() AS n FROM events WHERE account_id IN {accounts}")[0]["n"]
               >= sum(1 for e in events if orjson.loads(e)["account_id"] in accounts), "the events landed")  # fmt: skip

        def decided() -> list[dict[str, Any]]:
            return sql(
                "SELECT decision_id, entity, action, rule, campaign_id FROM decisions FINAL "
                f"WHERE scope = 'account' AND entity IN {accounts} AND status = 'active'"
            )

        within(300, lambda: any(d["rule"] == "extraction_campaign" for d in decided()),
                           "a decision of the default policy's campaign rule on the fleet")  # fmt: skip
        decisions = decided()
        on_fleet = [d for d in decisions if d["entity"] in fleet and d["rule"] == "extraction_campaign"]
        campaign_id = on_fleet[0]["campaign_id"]
        members = sql(f"SELECT members FROM campaigns FINAL WHERE campaign_id = '{campaign_id}'")[0]["members"]
        assert sum(1 for m in members if labels.get(m) == "campaign") >= 5, members
        assert not [d for d in decisions if d["entity"] in organic], decisions
        print(f"\ncampaign {campaign_id} decided within {time.monotonic() - posted_at:.0f} s of the traffic: "
              f"{len(on_fleet)} of {len(fleet)} members, action {sorted({d['action'] for d in on_fleet})}")  # fmt: skip

        # Each proxy serves the members under observe (and the organic accounts as ever), and
        # reports what it observed under each member's decision.
        watched = [d["entity"] for d in on_fleet[:5]]
        for base in (proxies[0][1], proxies[1][1]):
            assert [status(base, account) for account in watched + organic] == [200] * (len(watched) + len(organic))
        ids = tuple(d["decision_id"] for d in on_fleet[:5])

        def reporting_instances() -> int:
            query = (
                "SELECT uniqExact(instance) AS n FROM bouncer_reports FINAL WHERE bouncer = 'litellm' "
                f"AND outcome = 'observed' AND decision_id IN {ids}"
            )
            return int(sql(query)[0]["n"])

        reported_s = within(60, lambda: reporting_instances() == 2, "both proxies' reports of what they observed")
        print(f"both proxies' reports landed {reported_s:.1f} s after their requests")
    finally:
        for proxy, _base in proxies:
            stop_proxy(proxy)
        down = cli_process(env, "down", timeout_s=180)
    assert down.returncode == 0, down.stdout + down.stderr
    errors = service_log_errors(home)
    assert not errors, "\n".join(errors)
