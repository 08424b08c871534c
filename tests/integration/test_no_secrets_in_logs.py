"""Nothing that must stay secret reaches a log line or a metric: the pipeline runs (ingest with a
named token and a key secret, lander, detect, campaigns, enforcer, alerter) over simulated traffic
whose every prompt carries a marker word, plus refused requests that carry the marker and a wrong
token; then every log line of every service and every metric page is searched for the ingest token,
the key secret, the lander's SQL token, the Kafka SASL password and the marker. None may appear.

Every service reaches Kafka over SASL/SCRAM on TLS (`sasl_kafka`), the password in its
environment as a deployment gives it, so the password is there to leak; the run is also the
end-to-end proof that the Faust workers (detect, campaigns), the enforcer and the alerter work over
SASL_SSL (test_kafka_sasl_tls.py proves the ingest, the lander and the provisioning).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3
from pydantic import SecretStr

from extractguard.contracts.enforcement import ENFORCEMENT_APPROVALS
from extractguard.contracts.topics import CAMPAIGNS, DETECTIONS, FINGERPRINT_ACTIVITY, GATEWAY_EVENTS, LINK_EVIDENCE
from extractguard.demo.processes import Service, wait_group_stable, wait_http
from extractguard.gateway.publisher import EventPublisher
from extractguard.kafka_offsets import start_group_at_end
from extractguard.lander.sinks import landed_topics
from extractguard.settings import LanderSettings
from extractguard.simulator import replay
from extractguard.simulator.scenario import CampaignSpec, OrganicSpec, Scenario
from extractguard.storage.query import query_lander
from tests.integration.conftest import SASL_PASSWORD, SecureKafka, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

INGEST_TOKEN = "eg-ingest-token-7f3c9a1e5d2b8046"
KEY_SECRET = "eg-key-secret-b61d0c4f9e2a7358"
SQL_TOKEN = "eg-sql-token-4e8a2c6f0b9d1357"
MARKER = "quizzicalmarmoset"  # in every prompt; a word no log or metric has a reason to hold


def _marked(generate: Any) -> Any:
    def with_marker(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for account, request in generate(*args, **kwargs):
            request.prompt = f"{request.prompt or ''} {MARKER} please explain {MARKER}"
            yield account, request

    return with_marker


def test_no_token_secret_password_or_prompt_word_in_any_log_or_metric(
    sasl_kafka: SecureKafka, services: list[Service], tmp_path: Path, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka = sasl_kafka.settings
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"gateway-test": INGEST_TOKEN}))
    ports = {name: free_port() for name in ("ingest", "sql", "detect", "campaigns", "enforcer", "alerter")}
    groups = {
        "lander": (f"extractguard-lander-secrets-{run_id}", landed_topics()),
        "detect": (f"extractguard-detect-secrets-{run_id}", [GATEWAY_EVENTS]),
        "campaigns": (f"extractguard-campaigns-secrets-{run_id}", [FINGERPRINT_ACTIVITY, LINK_EVIDENCE]),
        "enforcer": (f"extractguard-enforcer-secrets-{run_id}", [CAMPAIGNS, DETECTIONS, ENFORCEMENT_APPROVALS]),
        "alerter": (f"extractguard-alerter-secrets-{run_id}", [DETECTIONS]),
    }
    for group, topics in groups.values():
        start_group_at_end(kafka, group, topics)
    common = {
        **sasl_kafka.env,
        "EXTRACTGUARD_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'clickhouse'}",
        "EXTRACTGUARD_LANDER_SQL_PORT": str(ports["sql"]),
        "EXTRACTGUARD_LANDER_SQL_TOKEN": SQL_TOKEN,
    }
    started = {
        "ingest": Service("ingest", {**common, "EXTRACTGUARD_INGEST_PORT": str(ports["ingest"]),
                                     "EXTRACTGUARD_INGEST_TOKENS_FILE": str(tokens),
                                     "EXTRACTGUARD_INGEST_KEY_SECRET": KEY_SECRET}, tmp_path),
        "lander": Service("lander", {**common, "EXTRACTGUARD_LANDER_GROUP_ID": groups["lander"][0]}, tmp_path),
        "detect": Service("detect", {**common, "EXTRACTGUARD_DETECT_APP_ID": groups["detect"][0],
                                     "EXTRACTGUARD_DETECT_WEB_PORT": str(ports["detect"]),
                                     "EXTRACTGUARD_DETECT_FAUST_LOG_LEVEL": "info"}, tmp_path),
        "campaigns": Service("campaigns", {**common, "EXTRACTGUARD_CAMPAIGNS_APP_ID": groups["campaigns"][0],
                                           "EXTRACTGUARD_CAMPAIGNS_WEB_PORT": str(ports["campaigns"]),
                                           "EXTRACTGUARD_CAMPAIGNS_FAUST_LOG_LEVEL": "info"}, tmp_path),
        "enforcer": Service("enforcer", {**common, "EXTRACTGUARD_ENFORCER_GROUP_ID": groups["enforcer"][0],
                                         "EXTRACTGUARD_ENFORCER_WEB_PORT": str(ports["enforcer"]),
                                         "EXTRACTGUARD_ENFORCER_RESTORE_BOOK": "false"}, tmp_path),
        "alerter": Service("alerter", {**common, "EXTRACTGUARD_ALERTER_GROUP_ID": groups["alerter"][0],
                                       "EXTRACTGUARD_ALERTER_WEB_PORT": str(ports["alerter"]),
                                       "EXTRACTGUARD_ALERTER_REBUILD_LOOKBACK_S": "0"}, tmp_path),
    }  # fmt: skip
    for service in started.values():
        services.append(service)
        service.start()
    wait_http(f"http://127.0.0.1:{ports['sql']}/healthz", 120, started["lander"])
    wait_http(f"http://127.0.0.1:{ports['ingest']}/healthz", 60, started["ingest"])
    for name, (group, _topics) in groups.items():
        wait_group_stable(kafka, group, 120, started[name])

    monkeypatch.setattr(replay, "generate", _marked(replay.generate))
    scenario = Scenario(organic=OrganicSpec(accounts=120), campaigns=[CampaignSpec(name="c", accounts=60, start_s=300)],
                        duration_s=1200, seed=11)  # fmt: skip
    url = f"http://127.0.0.1:{ports['ingest']}/v1/events"
    with EventPublisher(kafka) as publisher:
        stats = replay.Replayer(scenario, publisher, url, INGEST_TOKEN, wall_seconds=12, http_share=3).run()
    assert stats.events_sent_http > 0
    http = urllib3.PoolManager(retries=False, timeout=30)
    hostile = [
        orjson.dumps({"schema_version": 1, "prompt_text": f"the raw prompt {MARKER}", "account_id": MARKER}),
        f'{{"account_id": "{MARKER}", "user_agent": "{MARKER}"}}'.encode(),
    ]
    authorized = {"Authorization": f"Bearer {INGEST_TOKEN}", "Content-Type": "application/x-ndjson"}
    answer = http.request("POST", url, body=b"\n".join(hostile), headers=authorized)
    assert answer.status == 200 and orjson.loads(answer.data)["rejected"] == 2
    wrong = http.request("POST", url, body=hostile[0], headers={"Authorization": f"Bearer {INGEST_TOKEN}x"})
    assert wrong.status == 401
    with open(Path(__file__).parents[2] / "schemas/examples/adapters/kong_http_log/ai_proxy_with_payload.json") as f:
        kong = f.read().replace("Baltic", MARKER)
    kong_headers = {**authorized, "Content-Type": "application/json"}
    http.request("POST", f"http://127.0.0.1:{ports['ingest']}/kong/http-log", body=kong.encode(), headers=kong_headers)
    time.sleep(8)  # windows close, detections and alerts flow, the lander lands

    pages = {
        "ingest": f"http://127.0.0.1:{ports['ingest']}/metrics",
        "lander": f"http://127.0.0.1:{ports['sql']}/metrics",
        "detect": f"http://127.0.0.1:{ports['detect']}/metrics",
        "campaigns": f"http://127.0.0.1:{ports['campaigns']}/metrics",
        "enforcer": f"http://127.0.0.1:{ports['enforcer']}/metrics",
        "alerter": f"http://127.0.0.1:{ports['alerter']}/metrics",
    }
    texts = {f"{name} /metrics": http.request("GET", page).data.decode() for name, page in pages.items()}
    assert "extractguard_ingest_events_total" in texts["ingest /metrics"]
    # The pipeline worked over SASL_SSL: the events landed, the detection worker detected.
    door = LanderSettings().model_copy(update={"sql_port": ports["sql"], "sql_token": SecretStr(SQL_TOKEN)})
    assert int(query_lander("SELECT count() FROM events", door)[1][0][0]) > 0
    detected = next(line for line in texts["detect /metrics"].splitlines()
                    if line.startswith("extractguard_detect_events_total "))  # fmt: skip
    assert float(detected.split()[1]) > 0, detected
    for service in started.values():
        assert service.alive(), service.tail()
        service.stop()
        texts[f"{service.name} log"] = service.log_path.read_text(errors="replace")
    assert sum(len(text.splitlines()) for text in texts.values()) > 100, "there must be logs to search"
    for where, text in texts.items():
        for secret in (INGEST_TOKEN, KEY_SECRET, SQL_TOKEN, SASL_PASSWORD, MARKER):
            line = next((line for line in text.splitlines() if secret in line), None)
            assert line is None, f"{secret!r} in the {where}: {line[:300] if line else ''}"
