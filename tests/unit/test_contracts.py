"""The topic contracts: declarations, schemas, golden payloads and every kind of bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from extractguard.contracts.envelope import encode, split
from extractguard.contracts.rejection import InvalidMessage, InvalidRateGuard, Reason, TooManyInvalid
from extractguard.contracts.schemas import validate, validate_gateway_event
from extractguard.contracts.topics import contracts

NOW_MS = 1_795_000_200_000


def _event(golden: dict[str, list[Path]]) -> dict[str, Any]:
    return orjson.loads(golden["gateway_event"][0].read_bytes())  # type: ignore[no-any-return]


def check(raw: bytes, max_event_bytes: int = 16_384) -> dict[str, Any]:
    return validate_gateway_event(raw, max_event_bytes=max_event_bytes, max_clock_skew_s=300, now_ms=NOW_MS)


def test_every_topic_has_a_dlq_twin_and_a_schema_for_its_payload() -> None:
    declared = contracts()
    assert {"gateway.events", "detections", "alerts", "account.labels", "campaigns"} <= set(declared)
    for name, contract in declared.items():
        assert contract.dlq.name == f"{name}.dlq"
        assert contract.topic.partitions >= 1
        assert contract.topic.schema is not None or contract.topic.internal
    assert {n for n, c in declared.items() if c.topic.internal} == {"fingerprint.activity", "link.evidence"}


@pytest.mark.parametrize(
    "payload",
    [
        "gateway_event",
        "detection",
        "alert",
        "account_label",
        "campaign",
        "fingerprint_activity",
        "enforcement_decision",
        "enforcement_approval",
        "bouncer_report",
        "link_evidence",
    ],
)
def test_golden_examples_validate(payload: str, golden: dict[str, list[Path]]) -> None:
    assert golden[payload], f"no golden examples for {payload}"
    for path in golden[payload]:
        document = orjson.loads(path.read_bytes())
        assert validate(payload, document)["schema_version"] == document["schema_version"]


def test_defaults_are_filled_for_optional_fields(golden: dict[str, list[Path]]) -> None:
    event = _event(golden)
    for optional in ("request_logprobs", "request_choice_count", "refusal", "turn_index"):
        event.pop(optional, None)
    validated = check(orjson.dumps(event))
    assert validated["request_logprobs"] is False
    assert validated["request_choice_count"] == 1
    assert validated["turn_index"] == 0


def _bad_inputs(event: dict[str, Any]) -> list[tuple[str, bytes, Reason, str | None]]:
    without_account = {k: v for k, v in event.items() if k != "account_id"}
    return [
        ("not json", b"{not json", Reason.NOT_JSON, None),
        ("invalid utf-8", b'{"account_id": "\xff\xfe"}', Reason.INVALID_UTF8, None),
        ("array, not object", b"[1, 2]", Reason.NOT_AN_OBJECT, None),
        ("wrong type", orjson.dumps({**event, "input_tokens": "many"}), Reason.WRONG_TYPE, "input_tokens"),
        ("missing field", orjson.dumps(without_account), Reason.MISSING_FIELD, None),
        ("unknown schema version", orjson.dumps({**event, "schema_version": 3}), Reason.UNKNOWN_SCHEMA_VERSION,
         "schema_version"),
        ("no schema version", orjson.dumps({k: v for k, v in event.items() if k != "schema_version"}),
         Reason.MISSING_FIELD, "schema_version"),
        ("negative tokens", orjson.dumps({**event, "output_tokens": -1}), Reason.OUT_OF_RANGE, "output_tokens"),
        ("far-future timestamp", orjson.dumps({**event, "event_time_ms": NOW_MS + 3_600_000}),
         Reason.FUTURE_TIMESTAMP, "event_time_ms"),
        ("oversized field", orjson.dumps({**event, "user_agent": "u" * 600}), Reason.OVERSIZED_FIELD, "user_agent"),
        ("unknown field (raw prompt)", orjson.dumps({**event, "prompt": "secret text"}), Reason.UNKNOWN_FIELD, None),
        ("bad ip prefix", orjson.dumps({**event, "client_ip_prefix": "not-an-ip"}), Reason.SCHEMA_VIOLATION,
         "client_ip_prefix"),
    ]  # fmt: skip


def test_each_kind_of_bad_input_gets_its_own_specific_reason(golden: dict[str, list[Path]]) -> None:
    event = _event(golden)
    check(orjson.dumps(event))  # the base event itself is valid
    for label, raw, reason, field in _bad_inputs(event):
        with pytest.raises(InvalidMessage) as caught:
            check(raw)
        assert caught.value.code == reason, label
        assert caught.value.detail, label
        if field is not None:
            assert caught.value.field == field, label


def test_missing_field_names_the_field(golden: dict[str, list[Path]]) -> None:
    event = {k: v for k, v in _event(golden).items() if k != "org_id"}
    with pytest.raises(InvalidMessage, match="org_id"):
        check(orjson.dumps(event))


def test_oversized_event_is_refused_before_parsing(golden: dict[str, list[Path]]) -> None:
    raw = orjson.dumps(_event(golden))
    with pytest.raises(InvalidMessage) as caught:
        check(raw, max_event_bytes=len(raw) - 1)
    assert caught.value.code == Reason.OVERSIZED_EVENT


def test_envelope_roundtrip_keeps_each_events_bytes(golden: dict[str, list[Path]]) -> None:
    lines = [orjson.dumps(orjson.loads(p.read_bytes())) for p in golden["gateway_event"]]
    assert split(encode(lines)) == lines
    assert split(b"") == []


def test_invalid_rate_guard_trips_only_when_nearly_all_is_invalid() -> None:
    guard = InvalidRateGuard(max_fraction=0.9, window=100)
    for _ in range(10):  # 50% invalid for a long time is a problem to look at, not to stop for
        guard.record(valid=True, count=50)
        guard.record(valid=False, count=50)
    with pytest.raises(TooManyInvalid):
        guard.record(valid=False, count=100)
