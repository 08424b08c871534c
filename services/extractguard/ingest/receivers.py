"""Receivers for gateways that push their own format: one route per path of each adapter in the
registry (`extractguard_gateway.adapters.ADAPTERS`) that declares paths, e.g. OTLP/HTTP logs and
traces at `/otlp/v1/logs` and `/otlp/v1/traces`, Kong's http-log at `/kong/http-log`.

Each payload (JSON, or OTLP protobuf) is read by its adapter into observations, built into events
as the gateway distribution builds them (a bad optional field is left out and counted; an event
with a bad required field is dead-lettered with its reason) and published like `POST /v1/events`.
A payload the adapter cannot read is dead-lettered whole (`unreadable_payload`) and answered 400.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from extractguard import metrics
from extractguard.contracts.rejection import InvalidMessage, Reason
from extractguard.settings import IngestSettings
from extractguard_gateway.adapters import ADAPTERS, AdapterSettings, GatewayAdapter, UnreadablePayload
from extractguard_gateway.addresses import AsnDatabase, trusted_networks
from extractguard_gateway.contract import InvalidEvent
from extractguard_gateway.events import build

PROTOBUF = "application/x-protobuf"
_PROTOBUF_MESSAGES: dict[str, Any] = {
    "/otlp/v1/logs": ExportLogsServiceRequest,
    "/otlp/v1/traces": ExportTraceServiceRequest,
}
_ID_FIELDS = ("traceId", "spanId")

Authorize = Callable[[web.Request], bool]
Publish = Callable[
    [web.Request, list[bytes], list[tuple[bytes, InvalidMessage]]], Awaitable[list[dict[str, Any]] | web.Response]
]


def _hex_ids(node: Any) -> None:
    """Protobuf's JSON mapping writes bytes as base64; OTLP/JSON writes trace and span ids as hex."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                _hex_ids(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids(item)


def decode_payload(path: str, body: bytes, content_type: str) -> Any:
    """The payload as the adapter reads it (OTLP protobuf as its OTLP/JSON form); raises UnreadablePayload."""
    if content_type == PROTOBUF and path in _PROTOBUF_MESSAGES:
        try:
            message = _PROTOBUF_MESSAGES[path].FromString(body)
        except DecodeError as error:
            raise UnreadablePayload(f"not an OTLP protobuf export: {error}") from None
        document = MessageToDict(message)
        _hex_ids(document)
        return document
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise UnreadablePayload(f"not JSON: {error.msg} at char {error.pos}") from None


def _handler(
    adapter: GatewayAdapter, settings: IngestSettings, authorize: Authorize, publish: Publish
) -> Callable[[web.Request], Awaitable[web.Response]]:
    secret = settings.key_secret.get_secret_value().encode()

    async def receive(request: web.Request) -> web.Response:
        if not authorize(request):
            metrics.INGEST_REQUESTS_REFUSED.labels("unauthorized").inc()
            return web.json_response({"error": {"code": "unauthorized", "detail": "missing or wrong bearer token"}},
                                     status=401)  # fmt: skip
        body = await request.read()
        try:
            observations = adapter.observations(decode_payload(request.path, body, request.content_type))
        except UnreadablePayload as error:
            metrics.ADAPTER_PAYLOADS.labels(adapter.name, "unreadable").inc()
            refusal = InvalidMessage(Reason.UNREADABLE_PAYLOAD, f"{adapter.name}: {error}")
            outcome = await publish(request, [], [(body, refusal)])
            status = outcome.status if isinstance(outcome, web.Response) else 400
            return web.json_response({"error": refusal.as_dict()}, status=status)
        metrics.ADAPTER_PAYLOADS.labels(adapter.name, "read").inc()
        lines: list[bytes] = []
        refused: list[tuple[bytes, InvalidMessage]] = []
        for observation in observations:
            try:
                built = build(observation, secret)
            except InvalidEvent as error:
                # The original is the adapter's payload: the refused observation has no bytes of its own.
                refused.append((body, InvalidMessage(Reason(error.code), f"{adapter.name}: {error.detail}",
                                                     error.field)))  # fmt: skip
                continue
            for field, reason in built.dropped:
                metrics.EVENT_FIELDS_DROPPED.labels(field, reason).inc()
            lines.append(orjson.dumps(built.event))
        outcome = await publish(request, lines, refused)
        if isinstance(outcome, web.Response):
            return outcome
        if request.content_type == PROTOBUF:
            return web.Response(body=b"", content_type=PROTOBUF)  # an empty Export*ServiceResponse
        accepted = sum(1 for r in outcome if r["status"] == "accepted")
        return web.json_response({"accepted": accepted, "rejected": len(outcome) - accepted + len(refused)})

    return receive


def adapter_settings(settings: IngestSettings) -> AdapterSettings:
    return AdapterSettings(
        trusted_proxies=trusted_networks(settings.trusted_proxies),
        asn_database=AsnDatabase(settings.asn_database) if settings.asn_database else None,
        extra={"key_secret": settings.key_secret.get_secret_value().encode()},
    )


def add_receivers(app: web.Application, settings: IngestSettings, authorize: Authorize, publish: Publish) -> None:
    shared = adapter_settings(settings)
    for adapter_type in ADAPTERS.values():
        adapter = adapter_type(shared)
        for path in adapter.paths:
            app.router.add_post(path, _handler(adapter, settings, authorize, publish))
