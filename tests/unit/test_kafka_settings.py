"""Where the services look for the broker: KAFKA_BOOTSTRAP_SERVERS when set, else the local broker
on EXTRACTGUARD_KAFKA_PORT, the one variable `infra/kafka/kafka.sh` starts it on."""

from __future__ import annotations

import pytest

from extractguard.settings import KafkaSettings


@pytest.fixture(autouse=True)
def no_kafka_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("KAFKA_BOOTSTRAP_SERVERS", "EXTRACTGUARD_KAFKA_BOOTSTRAP_SERVERS", "EXTRACTGUARD_KAFKA_PORT"):
        monkeypatch.delenv(variable, raising=False)


def test_the_port_alone_moves_every_service_to_the_local_broker_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXTRACTGUARD_KAFKA_PORT", "19492")
    kafka = KafkaSettings()
    assert kafka.bootstrap_servers == "127.0.0.1:19492"
    assert kafka.client_config()["bootstrap.servers"] == "127.0.0.1:19492"
    assert kafka.local_broker  # so `up` and the demo start the local broker on that port


def test_nothing_set_is_the_local_broker_on_its_usual_port() -> None:
    kafka = KafkaSettings()
    assert (kafka.bootstrap_servers, kafka.port, kafka.local_broker) == ("127.0.0.1:9092", 9092, True)


@pytest.mark.parametrize("variable", ["KAFKA_BOOTSTRAP_SERVERS", "EXTRACTGUARD_KAFKA_BOOTSTRAP_SERVERS"])
def test_named_brokers_win_over_the_port(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv("EXTRACTGUARD_KAFKA_PORT", "19492")
    monkeypatch.setenv(variable, "kafka-1:9092,kafka-2:9092")
    kafka = KafkaSettings()
    assert kafka.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert not kafka.local_broker  # an operator's cluster: no local broker is started


def test_brokers_named_at_the_local_port_are_the_local_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXTRACTGUARD_KAFKA_PORT", "19492")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "localhost:19492")
    assert KafkaSettings().local_broker
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
    assert not KafkaSettings().local_broker


def test_an_empty_bootstrap_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "")
    monkeypatch.setenv("EXTRACTGUARD_KAFKA_PORT", "19500")
    assert KafkaSettings().bootstrap_servers == "127.0.0.1:19500"


def test_a_port_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXTRACTGUARD_KAFKA_PORT", "70000")
    with pytest.raises(ValueError, match="port"):
        KafkaSettings()
