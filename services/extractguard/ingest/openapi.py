"""The ingest's API as an OpenAPI 3.1 document, served at `GET /openapi.json`.

Built from the same contracts the ingest enforces: the request body of `POST /v1/events` is the
`gateway_event` schema (newest version), the refusals are the error object every route answers
with, and each adapter's receiver path is listed from the adapter registry. schemathesis runs
against it in the tests (tests/unit/test_ingest_hostile.py).
"""

from __future__ import annotations

from typing import Any

from extractguard.contracts.schemas import known_versions, schema_document
from extractguard.settings import IngestSettings
from extractguard_gateway.adapters import ADAPTERS

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "detail"],
            "properties": {"code": {"type": "string"}, "detail": {"type": "string"}, "field": {"type": "string"}},
        }
    },
}
_RESULTS = {
    "type": "object",
    "required": ["accepted", "rejected"],
    "properties": {
        "accepted": {"type": "integer", "minimum": 0},
        "rejected": {"type": "integer", "minimum": 0},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "status"],
                "properties": {
                    "index": {"type": "integer"},
                    "status": {"enum": ["accepted", "rejected"]},
                    "error": _ERROR["properties"]["error"],  # type: ignore[index]
                },
            },
        },
    },
}


def _refusals(*statuses: int) -> dict[str, Any]:
    why = {
        400: "the payload could not be read", 401: "missing or wrong bearer token", 408: "the body was too slow",
        413: "body or event count over the limit", 429: "this gateway's token is over its rate limit (Retry-After)",
        503: "too many requests in progress, or Kafka did not acknowledge; retry (Retry-After)",
    }  # fmt: skip
    return {
        str(status): {"description": why[status], "content": {"application/json": {"schema": _ERROR}}}
        for status in statuses
    }


def _payload_schema(payload: str) -> dict[str, Any]:
    """The newest JSON Schema of `payload`, as an OpenAPI body schema."""
    schema = dict(schema_document(payload, known_versions(payload)[-1]))
    for key in ("$schema", "$id"):
        schema.pop(key, None)
    return schema


def openapi_document(settings: IngestSettings) -> dict[str, Any]:
    event = _payload_schema("gateway_event")
    report = _payload_schema("bouncer_report")
    refused = _refusals(401, 408, 413, 429, 503)
    receivers: dict[str, Any] = {
        path: {
            "post": {
                "summary": f"{adapter.name}: the gateway's own format, read by its adapter",
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {
                    "200": {"description": "read", "content": {"application/json": {"schema": _RESULTS}}},
                    **_refusals(400, 401, 408, 413, 429, 503),
                },
            }
        }
        for adapter in ADAPTERS.values()
        for path in adapter.paths
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "ExtractGuard ingest", "version": "1"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"GatewayEvent": event, "Error": _ERROR},
        },
        "paths": {
            "/v1/events": {
                "post": {
                    "summary": "Gateway events: NDJSON, one per line, or a JSON array (at most "
                    f"{settings.max_events_per_request} events, {settings.max_body_bytes} bytes)",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"type": "array", "items": event}},
                            "application/x-ndjson": {"schema": {"type": "string"}},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "every event accepted or rejected with its reason; Kafka has them all",
                            "content": {"application/json": {"schema": _RESULTS}},
                        },
                        **refused,
                    },
                }
            },
            **receivers,
            "/v1/decisions": {
                "get": {
                    "summary": "Enforcement decisions for bouncers: a long poll from a position (none: the whole set)",
                    "parameters": [
                        {
                            "name": "position",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": "The position of the previous answer (the topic's offsets: any replica, any "
                            "restart resumes from it); none or one that does not parse gets the whole set",
                        },
                        {
                            "name": "wait_s",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "number", "minimum": 0, "maximum": 30},
                            "description": "How long to wait for a change (at most 30 s)",
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "position, reset, ready, and the decisions changed since (by target key)"
                        },
                        "400": {"description": "wait_s is not a number"},
                        "401": {"description": "missing or wrong bearer token"},
                        "404": {"description": "the decision feed is off on this ingest"},
                    },
                }
            },
            "/v1/decisions/reports": {
                "post": {
                    "summary": "What a bouncer fed over HTTP enforced (bouncer_report v1), to enforcement.reports",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"type": "array", "items": report}},
                            "application/x-ndjson": {"schema": {"type": "string"}},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "every report accepted or rejected with its reason; Kafka has them all",
                            "content": {"application/json": {"schema": _RESULTS}},
                        },
                        **refused,
                    },
                }
            },
            "/healthz": {"get": {"responses": {"200": {"description": "alive"}}}},
            "/readyz": {"get": {"responses": {"200": {"description": "ready"}}}},
            "/openapi.json": {"get": {"responses": {"200": {"description": "this document"}}}},
        },
    }
