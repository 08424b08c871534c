"""The gateway event contract as the gateway checks it before sending: the JSON Schema, per field.

A gateway gives what it gives. One bad optional field (a `user` of 300 characters, a country
code of three letters) costs that field, named with a reason, and the event goes on without it;
only an event whose required fields are unsound is refused whole. The limits come from the
schema itself (`schemas/gateway_event/v<N>.json`), never from a copy of them.

>>> event = {"schema_version": 2, "event_id": "e-00000001", "event_time_ms": 1_795_000_000_000,
...          "account_id": "a1", "operation_name": "chat", "provider_name": "openai", "request_model": "m",
...          "input_tokens": 1, "output_tokens": 2, "response_status": 200, "latency_ms": 5,
...          "user_agent": "x" * 600, "client_country": "FRA"}
>>> sound, dropped = salvage(event)
>>> "user_agent" in sound, dropped
(False, [('user_agent', 'oversized_field'), ('client_country', 'oversized_field')])
>>> salvage({**event, "input_tokens": -1})
Traceback (most recent call last):
...
extractguard_gateway.contract.InvalidEvent: out_of_range: input_tokens must be bigger than or equal to 0
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema

SCHEMA_VERSION = 2
Event = dict[str, Any]

#: Reason codes by the JSON Schema rule that failed; the same codes the backend's DLQ uses.
RULE_REASONS = {
    "required": "missing_field",
    "type": "wrong_type",
    "additionalProperties": "unknown_field",
    "minimum": "out_of_range",
    "maximum": "out_of_range",
    "exclusiveMinimum": "out_of_range",
    "exclusiveMaximum": "out_of_range",
    "maxLength": "oversized_field",
    "maxItems": "oversized_field",
    "const": "unknown_schema_version",
}
DEFAULT_REASON = "schema_violation"


class InvalidEvent(ValueError):
    """The event's required part does not meet the contract; `code` says how, `field` where."""

    def __init__(self, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.field = field


def schemas_dir() -> Path:
    """The packaged schemas (a wheel), else the checkout's `schemas/` (an editable install)."""
    packaged = Path(__file__).resolve().parent / "_schemas"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[3] / "schemas"


@cache
def schema(version: int = SCHEMA_VERSION) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((schemas_dir() / "gateway_event" / f"v{version}.json").read_bytes())
    return document


@cache
def _whole() -> Callable[[Event], Event]:
    return fastjsonschema.compile(schema(), use_default=True)


@cache
def _fields() -> dict[str, Callable[[Any], Any]]:
    """A validator per optional top-level field: the field's own subschema."""
    document = schema()
    required = set(document["required"])
    draft = document["$schema"]
    return {
        name: fastjsonschema.compile({"$schema": draft, **sub})
        for name, sub in document["properties"].items()
        if name not in required
    }


def _reason(error: fastjsonschema.JsonSchemaValueException) -> str:
    return RULE_REASONS.get(error.rule or "", DEFAULT_REASON)


def salvage(event: Event) -> tuple[Event, list[tuple[str, str]]]:
    """The event with every unsound optional field removed, and (field, reason) for each removed.

    Raises `InvalidEvent` when what remains still breaks the contract (a required field).
    """
    present = {name: value for name, value in event.items() if value is not None}  # absent is absent
    try:
        return _whole()(present), []  # nearly every event: one check of the whole
    except fastjsonschema.JsonSchemaValueException:
        pass  # find which fields are unsound, one by one
    checks = _fields()
    dropped: list[tuple[str, str]] = []
    sound: Event = {}
    for name in event:
        value = event[name]
        check = checks.get(name)
        if check is not None:
            if value is None:
                continue  # absent is absent: left out rather than sent as null
            try:
                check(value)
            except fastjsonschema.JsonSchemaValueException as error:
                dropped.append((name, _reason(error)))
                continue
        sound[name] = value
    try:
        return _whole()(sound), dropped
    except fastjsonschema.JsonSchemaValueException as error:
        field = (error.name or "").removeprefix("data.").removeprefix("data") or None
        raise InvalidEvent(_reason(error), error.message.replace("data.", ""), field) from None
