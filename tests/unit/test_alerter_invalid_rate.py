"""The alerter stops when nearly every detection it reads is invalid, and commits nothing of that
batch (a bad deploy of a detector must not quietly route every detection to the DLQ); a stream
with the odd invalid detection goes on."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from extractguard.alerting import service
from extractguard.contracts.rejection import TooManyInvalid
from extractguard.contracts.topics import DETECTIONS, dlq_name
from extractguard.settings import AlerterSettings, KafkaSettings
from tests.unit.test_alerting import detection


class FakeMessage:
    def __init__(self, value: bytes, offset: int) -> None:
        self._value, self._offset = value, offset

    def value(self) -> bytes:
        return self._value

    def topic(self) -> str:
        return DETECTIONS

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def error(self) -> None:
        return None


class FakeConsumer:
    batches: list[list[FakeMessage]] = []
    commits = 0

    def __init__(self, _config: dict[str, Any]) -> None:
        pass

    def subscribe(self, _topics: list[str]) -> None:
        pass

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        if not FakeConsumer.batches:
            alerter.stop()
            return []
        return FakeConsumer.batches.pop(0)

    def commit(self, asynchronous: bool) -> None:
        FakeConsumer.commits += 1

    def close(self) -> None:
        pass


class FakeProducer:
    produced: list[str] = []

    def __init__(self, _config: dict[str, Any]) -> None:
        pass

    def produce(self, topic: str, **_kwargs: Any) -> None:
        FakeProducer.produced.append(topic)

    def flush(self, _timeout: float) -> int:
        return 0


alerter: service.Alerter


def _run(monkeypatch: pytest.MonkeyPatch, values: list[bytes]) -> None:
    global alerter
    monkeypatch.setattr(service, "Consumer", FakeConsumer)
    monkeypatch.setattr(service, "Producer", FakeProducer)
    FakeConsumer.batches = [[FakeMessage(v, i) for i, v in enumerate(values)]]
    FakeConsumer.commits = 0
    FakeProducer.produced = []
    settings = AlerterSettings(
        sql_rules=False, rebuild_lookback_s=0, max_invalid_fraction=0.5, invalid_window_messages=10
    )
    alerter = service.Alerter(settings, KafkaSettings())
    monkeypatch.setattr(alerter, "_refresh", lambda: None)  # no ClickHouse for silences here
    alerter.run()


def test_the_alerter_stops_when_nearly_every_detection_is_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    garbage = [b"{not json"] * 8 + [orjson.dumps(detection(n)) for n in range(2)] + [b"[]"] * 10
    with pytest.raises(TooManyInvalid, match="of the last 10 messages were invalid"):
        _run(monkeypatch, garbage)
    assert FakeConsumer.commits == 0, "the batch that tripped the guard must not be committed"


def test_the_odd_invalid_detection_goes_to_the_dlq_and_the_alerter_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    mostly_valid = [orjson.dumps(detection(n)) for n in range(18)] + [b"{not json"] * 2
    _run(monkeypatch, mostly_valid)
    assert FakeConsumer.commits == 1
    assert FakeProducer.produced.count(dlq_name(DETECTIONS)) == 2
