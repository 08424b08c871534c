"""The typed (msgspec) decoder never changes a verdict: it accepts only what the JSON Schema accepts,
returns the same payload, and leaves the exact reason for everything else to the schema."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from extractguard.contracts.rejection import InvalidMessage
from extractguard.contracts.schemas import _typed, decode_json, decode_valid, schema_document, validate
from extractguard.contracts.typed import Untranslatable, typed_decoder

Verdict = tuple[str, Any]

WRONG_VALUES: list[Any] = [None, True, 0, -1, 5.0, 2.5, "", "x", [], {}, [1], {"a": 1}, 2**64]


def _schema_verdict(payload: str, raw: bytes) -> Verdict:
    try:
        return "valid", validate(payload, decode_json(raw))
    except InvalidMessage as error:
        return "invalid", (error.code, error.detail, error.field)


def _verdict(payload: str, raw: bytes) -> Verdict:
    try:
        return "valid", decode_valid(payload, raw)
    except InvalidMessage as error:
        return "invalid", (error.code, error.detail, error.field)


def _boundaries(schema: dict[str, Any]) -> Iterator[Any]:
    """Values at and just past each bound a property declares."""
    for low, high in (("minimum", "maximum"), ("exclusiveMinimum", "exclusiveMaximum")):
        if low in schema:
            yield from (schema[low] - 1, schema[low], schema[low] + 1)
        if high in schema:
            yield from (schema[high] - 1, schema[high], schema[high] + 1)
    for bound in ("minLength", "maxLength"):
        if bound in schema:
            yield from ("a" * max(schema[bound] - 1, 0), "a" * schema[bound], "a" * (schema[bound] + 1))
            yield from ("é" * schema[bound], "🙂" * schema[bound])  # lengths count characters
    for bound in ("minItems", "maxItems"):
        if bound in schema:
            yield from ([1] * max(schema[bound] - 1, 0), [1] * schema[bound], [1] * (schema[bound] + 1))
            yield [-1] * schema[bound]
    if "pattern" in schema:
        yield from ("0123456789abcdeF", "0123456789abcdef\n", "198.51.100.0/24x", "a b")
    for value in schema.get("enum", []):
        yield value
        if isinstance(value, str):
            yield value.upper()


def _mutations(document: dict[str, Any], schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every property removed, set to a wrong or boundary value; unknown keys; nested too."""
    properties: dict[str, Any] = schema.get("properties", {})
    for key, child in properties.items():
        without = copy.deepcopy(document)
        without.pop(key, None)
        yield without
        for value in [*WRONG_VALUES, *_boundaries(child)]:
            mutated = copy.deepcopy(document)
            mutated[key] = value
            yield mutated
        if child.get("type") == "object" and isinstance(document.get(key), dict):
            for nested in _mutations(document[key], child):
                mutated = copy.deepcopy(document)
                mutated[key] = nested
                yield mutated
    unknown = copy.deepcopy(document)
    unknown["not_in_the_schema"] = 1
    yield unknown


@pytest.mark.parametrize("payload", ["gateway_event", "account_label"])
def test_typed_decoder_agrees_with_the_schema_on_every_mutation(payload: str, golden: dict[str, list[Path]]) -> None:
    checked = accepted_fast = 0
    for path in golden[payload]:
        document = orjson.loads(path.read_bytes())
        schema = schema_document(payload, document["schema_version"])  # every version's golden payloads
        for mutated in [document, *_mutations(document, schema)]:
            raw = json.dumps(mutated).encode()  # stdlib: it writes integers past 64 bits too
            expected = _schema_verdict(payload, raw)
            fast = _typed(payload)(raw)
            if fast is not None:
                accepted_fast += 1
                assert expected == ("valid", fast), mutated  # never looser than the schema
            assert _verdict(payload, raw) == expected, mutated
            checked += 1
    assert checked > 200
    assert accepted_fast > len(golden[payload])  # the fast path is really in use


def test_defaults_are_filled_like_the_schema_fills_them(golden: dict[str, list[Path]]) -> None:
    event = orjson.loads(golden["gateway_event"][0].read_bytes())
    for optional in ("request_logprobs", "request_choice_count", "refusal", "turn_index"):
        event.pop(optional, None)
    event["prompt_sketch"].pop("cot_elicitation", None)
    fast = _typed("gateway_event")(orjson.dumps(event))
    assert fast is not None
    assert fast == validate("gateway_event", copy.deepcopy(event))
    assert fast["request_choice_count"] == 1 and fast["prompt_sketch"]["cot_elicitation"] is False


def test_a_schema_the_decoder_cannot_express_exactly_is_refused() -> None:
    base = {"type": "object", "additionalProperties": False}
    with pytest.raises(Untranslatable, match="oneOf"):
        typed_decoder({**base, "properties": {"a": {"type": "string", "oneOf": []}}}, "t")
    with pytest.raises(Untranslatable, match="closed objects"):
        typed_decoder({"type": "object", "properties": {}}, "t")
    with pytest.raises(Untranslatable, match="scalar defaults"):
        typed_decoder({**base, "properties": {"a": {"type": "array", "default": []}}}, "t")


def test_payloads_whose_schema_is_not_typed_still_get_the_schema_check(golden: dict[str, list[Path]]) -> None:
    raw = golden["alert"][0].read_bytes()
    assert _typed("alert")(raw) is None  # open `labels` map: not typed
    assert decode_valid("alert", raw) == validate("alert", decode_json(raw))
    with pytest.raises(InvalidMessage):
        decode_valid("alert", b'{"schema_version": 1}')
