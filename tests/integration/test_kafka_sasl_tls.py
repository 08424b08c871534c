"""Kafka over SASL/SCRAM-SHA-512 and TLS, end to end: a broker whose only client listener is
SASL_SSL (`sasl_kafka` in conftest: a keytool certificate, SCRAM users from `kafka-storage format
--add-scram`), reached by the services with nothing but the EXTRACTGUARD_KAFKA_* settings.

The ingest takes events over HTTP and produces them, the lander consumes and lands them in
ClickHouse, `extractguard topics` provisions: all over SASL_SSL. (The Faust workers, detect and
campaigns, run over it in test_no_secrets_in_logs.py.) And the broker refuses what it must: a wrong
password, a client that does not speak TLS, a client that does not trust the certificate.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson
import pytest
import urllib3
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

from extractguard.contracts.provision import declared_topics
from extractguard.contracts.topics import GATEWAY_EVENTS
from extractguard.demo.processes import Service, wait_group_stable, wait_http
from extractguard.kafka_offsets import start_group_at_end
from extractguard.lander.sinks import landed_topics
from extractguard.settings import KafkaSettings, LanderSettings
from extractguard.storage.query import query_lander
from tests.integration.conftest import SecureKafka, cli_process, free_port, within

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def _refusals(settings: KafkaSettings) -> list[str]:
    """What librdkafka reported while failing to list the topics with these settings."""
    errors: list[str] = []
    admin = AdminClient({**settings.client_config(), "error_cb": lambda error: errors.append(str(error))})
    with pytest.raises(KafkaException) as failure:
        admin.list_topics(timeout=6)
    admin.poll(1)  # serves the error callbacks
    return [str(failure.value), *errors]


def test_the_broker_refuses_a_wrong_password_plaintext_and_an_untrusted_certificate(sasl_kafka: SecureKafka) -> None:
    good = sasl_kafka.settings
    topics = AdminClient(good.client_config()).list_topics(timeout=10).topics
    assert {spec.name for spec in declared_topics()} <= set(topics)
    wrong = good.model_copy(update={"sasl_password": SecretStr("not-the-password")})
    assert any("Authentication failed" in error for error in _refusals(wrong)), _refusals(wrong)
    assert _refusals(good.model_copy(update={"security_protocol": "SASL_PLAINTEXT"}))
    untrusted = _refusals(good.model_copy(update={"ssl_ca_location": None}))
    assert any("certificate verify failed" in error for error in untrusted), untrusted


def test_ingest_lander_and_topics_work_over_sasl_ssl(
    sasl_kafka: SecureKafka, services: list[Service], tmp_path: Path, run_id: str, golden: dict[str, list[Path]]
) -> None:
    kafka = sasl_kafka.settings
    env = {**sasl_kafka.env, "EXTRACTGUARD_HOME": str(tmp_path)}
    provisioned = cli_process({**os.environ, **env}, "topics", timeout_s=120)
    assert provisioned.returncode == 0, provisioned.stderr
    assert f"exists   {GATEWAY_EVENTS}" in provisioned.stdout

    ports = {"ingest": free_port(), "sql": free_port()}
    group = f"extractguard-lander-sasl-{run_id}"
    start_group_at_end(kafka, group, landed_topics())
    common = {**env, "EXTRACTGUARD_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'clickhouse'}",
              "EXTRACTGUARD_LANDER_SQL_PORT": str(ports["sql"])}  # fmt: skip
    ingest = Service("ingest", {**common, "EXTRACTGUARD_INGEST_PORT": str(ports["ingest"]),
                                "EXTRACTGUARD_INGEST_TOKEN": "sasl-test-token"}, tmp_path)  # fmt: skip
    lander = Service("lander", {**common, "EXTRACTGUARD_LANDER_GROUP_ID": group}, tmp_path)
    for service in (ingest, lander):
        services.append(service)
        service.start()
    wait_http(f"http://127.0.0.1:{ports['ingest']}/healthz", 60, ingest)
    wait_http(f"http://127.0.0.1:{ports['sql']}/healthz", 120, lander)
    wait_group_stable(kafka, group, 120, lander)

    example = orjson.loads(golden["gateway_event"][0].read_bytes())
    now_ms = int(time.time() * 1000)
    events = [{**example, "event_id": f"{run_id}-{n:06d}", "event_time_ms": now_ms - 1000} for n in range(200)]
    http = urllib3.PoolManager(retries=False, timeout=30)
    answer = http.request(
        "POST", f"http://127.0.0.1:{ports['ingest']}/v1/events",
        body=b"\n".join(orjson.dumps(event) for event in events),
        headers={"Authorization": "Bearer sasl-test-token", "Content-Type": "application/x-ndjson"},
    )  # fmt: skip
    assert answer.status == 200, answer.data
    assert orjson.loads(answer.data)["accepted"] == len(events)  # acknowledged by the broker over SASL_SSL

    door = LanderSettings().model_copy(update={"sql_port": ports["sql"]})

    def landed() -> int:
        return int(query_lander("SELECT count() FROM events FINAL", door)[1][0][0])

    within(90, lambda: landed() == len(events), f"the {len(events)} events landed by the lander over SASL_SSL")
    for service in (ingest, lander):
        assert service.alive(), service.tail()
