"""Typed decoding: a msgspec type derived from a payload's JSON Schema, for the hot paths.

Checking a gateway event with the compiled JSON Schema costs ~50 us (orjson, then fastjsonschema's
generated Python walking the dict); msgspec decodes and checks the same bytes against a typed
description in C in a few microseconds. The JSON Schema stays the contract: the type is derived
from it here, for the keywords our schemas use, and a schema using any other keyword is refused at
build time (`Untranslatable`) rather than approximated. The derived type may only be *stricter*
than the schema (msgspec refuses 5.0 for an integer that JSON Schema accepts, for instance), never
looser: whatever it refuses goes to the full schema check, which either accepts it or says exactly
why not. So the fast path changes how quickly an event is judged, never the verdict.

Objects become msgspec Structs that forbid unknown fields (`additionalProperties: false`), with
the schema's defaults and `UNSET` for an optional key without one, then plain dicts again
(`to_builtins` leaves UNSET keys out): the same dict fastjsonschema returns, defaults filled and
absent keys absent. Decoding into a Struct and converting (~7 us) is cheaper than decoding into a
TypedDict (~12 us), which also cannot refuse unknown keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, Optional

import msgspec

Payload = dict[str, Any]

# Keywords that only document; everything else must be translated or the schema is refused.
_DOCUMENTATION = frozenset({"$schema", "$id", "title", "description", "examples", "$comment"})


class Untranslatable(ValueError):
    """The schema uses a keyword the typed decoder cannot express exactly."""


def _meta(schema: Payload, names: dict[str, str]) -> dict[str, Any]:
    return {meta_name: schema[keyword] for keyword, meta_name in names.items() if keyword in schema}


_STRING = {"minLength": "min_length", "maxLength": "max_length", "pattern": "pattern"}
_NUMBER = {"minimum": "ge", "maximum": "le", "exclusiveMinimum": "gt", "exclusiveMaximum": "lt"}
_ARRAY = {"minItems": "min_length", "maxItems": "max_length"}
_HANDLED = {
    "string": set(_STRING),
    "integer": set(_NUMBER),
    "number": set(_NUMBER),
    "boolean": set(),
    "array": set(_ARRAY) | {"items"},
    "object": {"properties", "required", "additionalProperties"},
}


class _Translator:
    def __init__(self, name: str) -> None:
        self.name = name
        self.counter = 0

    def translate(self, schema: Payload, where: str) -> Any:
        """The msgspec type for one schema node."""
        keywords = set(schema) - _DOCUMENTATION - {"default"}
        if "const" in schema:
            if keywords != {"const"}:
                raise Untranslatable(f"{where}: const with other keywords")
            return Literal[schema["const"]]
        if "enum" in schema:
            values = schema["enum"]
            if keywords - {"enum", "type"} or not all(isinstance(v, str) or v is None for v in values):
                raise Untranslatable(f"{where}: only enums of strings (and null) are typed")
            strings = tuple(v for v in values if v is not None)
            literal: Any = Literal[strings]
            return Optional[literal] if None in values else literal  # noqa: UP045 (runtime type)
        kinds = schema.get("type")
        kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
        nullable = "null" in kinds
        kinds = [k for k in kinds if k != "null"]
        if len(kinds) != 1 or kinds[0] not in _HANDLED:
            raise Untranslatable(f"{where}: type {schema.get('type')!r}")
        kind = kinds[0]
        unknown = keywords - {"type"} - _HANDLED[kind]
        if unknown:
            raise Untranslatable(f"{where}: keywords {sorted(unknown)} on a {kind}")
        typed: Any
        if kind == "string":
            meta = _meta(schema, _STRING)
            if "pattern" in meta:
                meta["pattern"] = _python_pattern(meta["pattern"], where)
            typed = _constrained(str, meta)
        elif kind == "integer":
            # No integer past signed 64 bits, whatever the schema says (`schemas._INTEGER_RANGE`):
            # msgspec reads any size; orjson and the lander's Arrow columns stop there.
            meta = {"ge": -(2**63), "le": 2**63 - 1, **_meta(schema, _NUMBER)}
            if "gt" in meta:
                meta.pop("ge")
            if "lt" in meta:
                meta.pop("le")
            typed = _constrained(int, meta)
        elif kind == "number":
            typed = _constrained(float, _meta(schema, _NUMBER))
        elif kind == "boolean":
            typed = bool
        elif kind == "array":
            items = self.translate(schema["items"], f"{where}[]") if "items" in schema else Any
            typed = _constrained(list[items], _meta(schema, _ARRAY))  # type: ignore[valid-type]
        else:
            typed = self.object(schema, where)
        return Optional[typed] if nullable else typed  # noqa: UP045 (runtime type)

    def object(self, schema: Payload, where: str) -> Any:
        if schema.get("additionalProperties", True) is not False:
            raise Untranslatable(f"{where}: only closed objects (additionalProperties: false) are typed")
        required = set(schema.get("required", []))
        properties: Payload = schema.get("properties", {})
        if required - set(properties):
            raise Untranslatable(f"{where}: required keys without a declared type")
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        # Attribute names stand in for the keys ("class" is a key and a Python keyword).
        names = {f"f{i}": key for i, key in enumerate(properties)}
        for name, key in names.items():
            child = properties[key]
            typed = self.translate(child, f"{where}.{key}")
            if key in required:
                fields.append((name, typed))
            elif "default" in child:
                if isinstance(child["default"], list | dict):
                    # One shared default object would be filled into every payload.
                    raise Untranslatable(f"{where}.{key}: only scalar defaults are typed")
                fields.append((name, typed, child["default"]))
            else:
                fields.append((name, typed | msgspec.UnsetType, msgspec.UNSET))
        self.counter += 1
        return msgspec.defstruct(
            f"{self.name}_{self.counter}", fields, kw_only=True, forbid_unknown_fields=True, rename=names
        )


def _python_pattern(pattern: str, where: str) -> str:
    """A JSON Schema (ECMA-262) pattern for Python's `re.search`, which msgspec uses.

    The one difference our patterns meet: Python's `$` also matches before a trailing newline,
    ECMA's only at the very end, so "abc\n" would pass `^[a-z]+$` here and fail the schema.
    """
    body = pattern[:-1] if pattern.endswith("$") and not pattern.endswith("\\$") else pattern
    if "$" in body:
        raise Untranslatable(f"{where}: pattern with $ before its end")
    return body + "\\Z" if body != pattern else pattern


def _constrained(base: Any, meta: dict[str, Any]) -> Any:
    return Annotated[base, msgspec.Meta(**meta)] if meta else base


def typed_decoder(schema: Payload, name: str) -> Callable[[bytes], Payload | None]:
    """A decoder returning the payload with defaults filled, or None when the schema must judge it.

    Raises `Untranslatable` when the schema cannot be expressed exactly.
    """
    decode = msgspec.json.Decoder(_Translator(name).object(schema, name)).decode
    as_dict = msgspec.to_builtins
    # msgspec raises UnicodeDecodeError itself for bytes that are not UTF-8.
    errors = (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError)

    def decode_or_none(raw: bytes) -> Payload | None:
        try:
            document: Payload = as_dict(decode(raw))
        except errors:
            return None
        return document

    return decode_or_none
