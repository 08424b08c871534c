"""Turn what the gateway saw of one request and its response into a GatewayEvent (schema v1).

The prompt is sketched here and dropped; the API key is reduced to a keyed hash; the client
address to its /24 (IPv4) or /48 (IPv6) prefix.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import uuid
from dataclasses import dataclass, field
from typing import Any

from extractguard.gateway.sketch import sketch_prompt


@dataclass(slots=True)
class ObservedRequest:
    """What the gateway knows of one API call. `prompt` is used for the sketch, then discarded."""

    account_id: str
    org_id: str
    api_key: str
    client_ip: str
    client_asn: int
    request_model: str
    prompt: str
    event_time_ms: int
    input_tokens: int
    output_tokens: int
    latency_ms: int
    response_status: int = 200
    operation_name: str = "chat"
    provider_name: str = "extractguard-demo"
    response_model: str | None = None
    end_user_id: str | None = None
    account_created_ms: int | None = None
    client_country: str | None = None
    user_agent: str | None = None
    tls_ja4: str | None = None
    sdk_name: str | None = None
    conversation_id: str | None = None
    turn_index: int = 0
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int = 1
    logprobs: bool = False
    top_logprobs: int = 0
    logit_bias: bool = False
    tools_count: int = 0
    finish_reason: str | None = "stop"
    refusal: bool = False
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)


def client_ip_prefix(address: str) -> str:
    """
    >>> client_ip_prefix("203.0.113.77")
    '203.0.113.0/24'
    >>> client_ip_prefix("2001:db8:abcd:12::1")
    '2001:db8:abcd::/48'
    """
    ip = ipaddress.ip_address(address)
    bits = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def api_key_hash(api_key: str, secret: bytes) -> str:
    return hmac.new(secret, api_key.encode(), hashlib.blake2b).hexdigest()[:32]


def build_event(request: ObservedRequest, key_secret: bytes) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": request.event_id,
        "event_time_ms": request.event_time_ms,
        "account_id": request.account_id,
        "org_id": request.org_id,
        "end_user_id": request.end_user_id,
        "api_key_hash": api_key_hash(request.api_key, key_secret),
        "account_created_ms": request.account_created_ms,
        "client_ip_prefix": client_ip_prefix(request.client_ip),
        "client_asn": request.client_asn,
        "client_country": request.client_country,
        "user_agent": request.user_agent,
        "tls_ja4": request.tls_ja4,
        "sdk_name": request.sdk_name,
        "conversation_id": request.conversation_id,
        "turn_index": request.turn_index,
        "operation_name": request.operation_name,
        "provider_name": request.provider_name,
        "request_model": request.request_model,
        "response_model": request.response_model or request.request_model,
        "input_tokens": request.input_tokens,
        "output_tokens": request.output_tokens,
        "request_max_tokens": request.max_tokens,
        "request_temperature": request.temperature,
        "request_top_p": request.top_p,
        "request_choice_count": request.n,
        "request_logprobs": request.logprobs,
        "request_top_logprobs": request.top_logprobs,
        "request_logit_bias": request.logit_bias,
        "request_tools_count": request.tools_count,
        "response_status": request.response_status,
        "response_finish_reason": request.finish_reason,
        "refusal": request.refusal,
        "latency_ms": request.latency_ms,
        "prompt_sketch": sketch_prompt(request.prompt).as_dict(),
    }
