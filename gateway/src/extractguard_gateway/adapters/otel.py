"""OpenTelemetry GenAI: OTLP logs and spans (OTLP/JSON, or protobuf decoded to the same shape)
whose attributes follow the gen_ai.* semantic conventions, as observations.

This is how Envoy AI Gateway (its access log and spans carry gen_ai.*) and any OTel-instrumented
gateway connect. Every log record or span with a `gen_ai.request.model` or `gen_ai.operation.name`
is one request; the others (plain HTTP spans) are not requests to a model and are skipped.
Identity is what OTel has: `enduser.id`, else `enduser.pseudo.id`, for the account;
`client.address` (else the `x-forwarded-for` walk of `http.request.header.x-forwarded-for`);
`user_agent.original`; `session.id` or `gen_ai.conversation.id`. Prompt content appears only when
the gateway records `gen_ai.input.messages` (opt-in); without it the event has no sketch.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

from extractguard_gateway.adapters.base import UNAUTHENTICATED, AdapterSettings, UnreadablePayload
from extractguard_gateway.adapters.common import client, count, last_user_text, number, sdk_of, text
from extractguard_gateway.events import ObservedRequest

_OPERATIONS = {"chat", "text_completion", "embeddings", "generate_content", "execute_tool", "create_agent",
               "invoke_agent"}  # fmt: skip
_FINISH = {"stop", "length", "content_filter", "tool_calls", "error"}
Attributes = dict[str, Any]


def _value(any_value: Any) -> Any:
    """An OTLP AnyValue ({"stringValue": ...}, {"intValue": "12"}, arrays, maps) as plain Python."""
    if not isinstance(any_value, dict):
        return None
    for kind in ("stringValue", "boolValue", "doubleValue"):
        if kind in any_value:
            return any_value[kind]
    if "intValue" in any_value:
        return count(any_value["intValue"]) if not str(any_value["intValue"]).startswith("-") else None
    if "arrayValue" in any_value:
        return [_value(v) for v in (any_value["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in any_value:
        return _attributes((any_value["kvlistValue"] or {}).get("values", []))
    return None


def _attributes(pairs: Any) -> Attributes:
    if not isinstance(pairs, list):
        return {}
    return {p["key"]: _value(p.get("value")) for p in pairs if isinstance(p, dict) and isinstance(p.get("key"), str)}


def _records(document: dict[str, Any]) -> Iterator[tuple[Attributes, dict[str, Any]]]:
    """(merged attributes, the record) for every log record and span of an export request."""
    for resources_key, scopes_key, records_key in (("resourceLogs", "scopeLogs", "logRecords"),
                                                   ("resourceSpans", "scopeSpans", "spans")):  # fmt: skip
        for resource in document.get(resources_key) or []:
            base = _attributes((resource.get("resource") or {}).get("attributes"))
            for scope in resource.get(scopes_key) or []:
                for record in scope.get(records_key) or []:
                    if isinstance(record, dict):
                        yield {**base, **_attributes(record.get("attributes"))}, record


def _nanos(record: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = count(record.get(name))
        if value:
            return value
    return None


def _messages(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


class OtelGenAiAdapter:
    name: ClassVar[str] = "otel_genai"
    paths: ClassVar[tuple[str, ...]] = ("/otlp/v1/logs", "/otlp/v1/traces")

    def __init__(self, settings: AdapterSettings) -> None:
        self.settings = settings

    def observations(self, document: Any) -> list[ObservedRequest]:
        if not isinstance(document, dict) or not ({"resourceLogs", "resourceSpans"} & set(document)):
            raise UnreadablePayload("not an OTLP export request (no resourceLogs or resourceSpans)")
        return [self._one(a, r) for a, r in _records(document) if "gen_ai.request.model" in a or
                "gen_ai.operation.name" in a]  # fmt: skip

    def _one(self, a: Attributes, record: dict[str, Any]) -> ObservedRequest:
        start = _nanos(record, "startTimeUnixNano", "timeUnixNano", "observedTimeUnixNano") or 0
        end = _nanos(record, "endTimeUnixNano")
        duration_s = number(a.get("gen_ai.server.request.duration")) or number(a.get("http.server.request.duration"))
        latency = (end - start) // 1_000_000 if end else int(duration_s * 1000) if duration_s else 0
        address, asn = client(self.settings, text(a.get("http.request.header.x-forwarded-for")),
                              text(a.get("client.address")))  # fmt: skip
        agent = text(a.get("user_agent.original"))
        finish_reasons = a.get("gen_ai.response.finish_reasons")
        finish = finish_reasons[0] if isinstance(finish_reasons, list) and finish_reasons else None
        status = count(a.get("http.response.status_code")) or (500 if a.get("error.type") else 200)
        operation = text(a.get("gen_ai.operation.name")) or "chat"
        messages = _messages(a.get("gen_ai.input.messages"))
        trace, span = text(record.get("traceId")), text(record.get("spanId"))
        model = text(a.get("gen_ai.request.model")) or text(a.get("gen_ai.response.model")) or "unknown"
        return ObservedRequest(
            event_id=f"{trace}-{span}" if trace and span else uuid.uuid4().hex,
            account_id=text(a.get("enduser.id")) or text(a.get("enduser.pseudo.id")) or UNAUTHENTICATED,
            client_ip=address,
            client_asn=asn,
            user_agent=agent,
            sdk_name=sdk_of(agent),
            conversation_id=text(a.get("gen_ai.conversation.id")) or text(a.get("session.id")),
            operation_name=operation if operation in _OPERATIONS else "chat",
            provider_name=self.settings.provider_name
            or text(a.get("gen_ai.provider.name"))
            or text(a.get("gen_ai.system"))
            or "otel",
            request_model=model,
            response_model=text(a.get("gen_ai.response.model")),
            prompt=last_user_text(messages),
            event_time_ms=start // 1_000_000,
            latency_ms=max(0, latency),
            input_tokens=count(a.get("gen_ai.usage.input_tokens")) or 0,
            output_tokens=count(a.get("gen_ai.usage.output_tokens")) or 0,
            reasoning_tokens=count(a.get("gen_ai.usage.reasoning.output_tokens")),
            cache_read_tokens=count(a.get("gen_ai.usage.cache_read.input_tokens")),
            cache_creation_tokens=count(a.get("gen_ai.usage.cache_creation.input_tokens")),
            max_tokens=count(a.get("gen_ai.request.max_tokens")),
            temperature=number(a.get("gen_ai.request.temperature")),
            top_p=number(a.get("gen_ai.request.top_p")),
            n=count(a.get("gen_ai.request.choice.count")) or 1,
            response_status=status if 100 <= status <= 599 else 500,
            finish_reason=finish if finish in _FINISH else None,
        )
