"""Validation of payloads against their versioned JSON Schemas (`schemas/<payload>/v<N>.json`).

Schemas are compiled once with fastjsonschema (generated Python, ~10x faster than interpreting
them), which also fills declared defaults. Every failure becomes an `InvalidMessage` whose reason
code says what kind of problem it was. Bytes on the hot paths go through `decode_valid`, which
tries a msgspec type derived from the same schema first (`typed`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache
from typing import Any

import fastjsonschema
import orjson

from extractguard.contracts.rejection import InvalidMessage, Reason
from extractguard.contracts.typed import Untranslatable, typed_decoder
from extractguard.paths import schemas_dir
from extractguard_gateway.contract import RULE_REASONS as GATEWAY_RULE_REASONS

Payload = dict[str, Any]

# The gateway distribution checks events with the same rules before sending; one table for both.
_RULE_REASONS = {rule: Reason(code) for rule, code in GATEWAY_RULE_REASONS.items()}


@cache
def known_versions(payload: str) -> tuple[int, ...]:
    return tuple(sorted(int(p.stem[1:]) for p in (schemas_dir() / payload).glob("v*.json")))


@cache
def schema_document(payload: str, version: int) -> Payload:
    path = schemas_dir() / payload / f"v{version}.json"
    return orjson.loads(path.read_bytes())


@cache
def _validator(payload: str, version: int) -> Callable[[Payload], Payload]:
    return fastjsonschema.compile(schema_document(payload, version), use_default=True)


@cache
def _typed(payload: str) -> Callable[[bytes], Payload | None]:
    """The fast decoder of the payload's versions, newest first; a version whose schema cannot be
    typed takes the schema path. A payload of an older version fails the newer decoders at their
    `schema_version` literal, a few hundred nanoseconds each."""
    decoders = []
    for version in reversed(known_versions(payload)):
        try:
            decoders.append(typed_decoder(schema_document(payload, version), f"{payload}_v{version}"))
        except Untranslatable:
            continue
    if len(decoders) == 1:
        return decoders[0]

    def newest_first(raw: bytes) -> Payload | None:
        for decode in decoders:
            document = decode(raw)
            if document is not None:
                return document
        return None

    return newest_first


def decode_json(raw: bytes) -> Any:
    """Parse JSON bytes, telling invalid UTF-8 apart from other malformed input."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as utf8_error:
            raise InvalidMessage(Reason.INVALID_UTF8, f"not valid UTF-8 at byte {utf8_error.start}") from None
        raise InvalidMessage(Reason.NOT_JSON, f"not JSON: {error.msg} at char {error.pos}") from None


def validate(payload: str, document: Any) -> Payload:
    """Check a decoded document against the schema version it declares; returns it with defaults.

    >>> try:
    ...     validate("gateway_event", {"schema_version": 99})
    ... except InvalidMessage as error:
    ...     print(error.code, "-", error.detail)
    unknown_schema_version - gateway_event schema_version 99 is not one of (1, 2)
    """
    if not isinstance(document, dict):
        raise InvalidMessage(Reason.NOT_AN_OBJECT, f"expected a JSON object, got {type(document).__name__}")
    version = document.get("schema_version")
    if version is None:
        raise InvalidMessage(Reason.MISSING_FIELD, "schema_version is required", "schema_version")
    versions = known_versions(payload)
    if type(version) is not int or version not in versions:
        raise InvalidMessage(
            Reason.UNKNOWN_SCHEMA_VERSION,
            f"{payload} schema_version {version!r} is not one of {versions}",
            "schema_version",
        )
    try:
        valid = _validator(payload, version)(document)
    except fastjsonschema.JsonSchemaValueException as error:
        field = (error.name or "").removeprefix("data.").removeprefix("data") or None
        reason = _RULE_REASONS.get(error.rule or "", Reason.SCHEMA_VIOLATION)
        if error.rule == "required":
            # fastjsonschema names the object, not the missing key; its message has the key.
            detail = error.message.replace("data.", "").replace("data ", "event ")
        else:
            detail = error.message.replace("data.", "")
        raise InvalidMessage(reason, detail, field) from None
    _integers_as_int(schema_document(payload, version), valid)
    return valid


#: What an integer may be anywhere: a signed 64-bit one, as the lander's Arrow columns and orjson
#: take it (fuzzing landed labelled_at_ms = 2^63 and stopped the lander). JSON numbers past 2^64
#: parse as floats (orjson), which the schema would take for integers.
_INTEGER_RANGE = (-(2**63), 2**63 - 1)


def _integers_as_int(schema: Any, document: Any, path: str = "") -> Any:
    """JSON Schema counts 5.0 as an integer; the stages after the check (Arrow columns of the
    lander, array("I") of the sketches) do not. So a float the schema accepted where it declares an
    integer is turned into that integer, in place: valid input means the same thing whatever way
    its producer wrote the number (fuzzing found a MinHash value of 0.0 that stopped the lander).

    >>> _integers_as_int({"type": "object", "properties": {"n": {"type": "integer"}}}, {"n": 5.0})
    {'n': 5}
    >>> _integers_as_int({"type": "object", "properties": {"n": {"type": "integer"}}}, {"n": 2.0**64})
    Traceback (most recent call last):
    ...
    extractguard.contracts.rejection.InvalidMessage: out_of_range: n is 18446744073709551616, past the 64-bit range
    >>> _integers_as_int({"type": "integer"}, 2**63)
    Traceback (most recent call last):
    ...
    extractguard.contracts.rejection.InvalidMessage: out_of_range: value is 9223372036854775808, past the 64-bit range
    """
    if not isinstance(schema, dict):
        return document
    types = schema.get("type")
    types = [types] if isinstance(types, str) else types or []
    integral = isinstance(document, float) or (isinstance(document, int) and not isinstance(document, bool))
    if integral and "integer" in types and "number" not in types:
        value = int(document)
        if not _INTEGER_RANGE[0] <= value <= _INTEGER_RANGE[1]:
            where = path or "value"
            raise InvalidMessage(Reason.OUT_OF_RANGE, f"{where} is {value}, past the 64-bit range", path or None)
        return value
    if isinstance(document, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, value in document.items():
            inner = properties.get(key, extra)
            if inner is not None:
                document[key] = _integers_as_int(inner, value, f"{path}.{key}" if path else str(key))
    elif isinstance(document, list):
        items = schema.get("items")
        for index, value in enumerate(document):
            inner = items[index] if isinstance(items, list) and index < len(items) else items
            if not isinstance(items, list) or index < len(items):
                document[index] = _integers_as_int(inner, value, f"{path}[{index}]")
    return document


def decode_valid(payload: str, raw: bytes) -> Payload:
    """Decode and check JSON bytes: the typed decoder first, the schema for anything it refuses.

    The schema has the last word and the exact reason (see `typed`); valid input, nearly all of
    it, never reaches it.
    """
    document = _typed(payload)(raw)
    return document if document is not None else validate(payload, decode_json(raw))


def validate_gateway_event(
    raw: bytes, *, max_event_bytes: int, max_clock_skew_s: int, now_ms: int | None = None
) -> Payload:
    """The full check of one gateway event as bytes: size, encoding, JSON, schema and clock."""
    if len(raw) > max_event_bytes:
        raise InvalidMessage(Reason.OVERSIZED_EVENT, f"event is {len(raw)} bytes, the limit is {max_event_bytes}")
    event = decode_valid("gateway_event", raw)
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    ahead_ms = event["event_time_ms"] - now
    if ahead_ms > max_clock_skew_s * 1000:
        raise InvalidMessage(
            Reason.FUTURE_TIMESTAMP,
            f"event_time_ms is {ahead_ms / 1000:.0f}s in the future (max clock skew {max_clock_skew_s}s)",
            "event_time_ms",
        )
    return event
