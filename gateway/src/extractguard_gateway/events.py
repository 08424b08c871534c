"""Turn what the gateway saw of one request and its response into a gateway event (schema v2).

The prompt is sketched here and dropped; the API key (or the gateway's own hash of it) and the
client-asserted end user are reduced to keyed hashes; the client address to its /24 (IPv4) or /48
(IPv6) prefix. What the gateway does not know stays absent: no org, no ASN, no prompt sketch
when the gateway logs no prompt, never a stand-in value that would make one entity of all traffic.
A field that cannot be used (an address of "unknown", a user agent of 2 kB) is dropped with a
reason (`BuiltEvent.dropped`), and the event goes on.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import uuid
from dataclasses import dataclass, field
from typing import Any

from extractguard_gateway.contract import SCHEMA_VERSION, Event, salvage
from extractguard_gateway.sketch import sketch_completion, sketch_prompt
from extractguard_gateway.watermark import Watermark


@dataclass(slots=True)
class ObservedRequest:
    """What the gateway knows of one API call. `prompt` and `completion` are used for their
    sketches, then discarded; `watermark` is what the serving pool's engine applied (key id only).

    `api_key` is whatever identifies the key at the gateway (the key, or the gateway's own hash of
    it): only its keyed hash is sent. `end_user_id` is what the caller claims about its end user.
    """

    account_id: str
    request_model: str
    event_time_ms: int
    input_tokens: int
    output_tokens: int
    latency_ms: int
    prompt: str | None = None
    org_id: str | None = None
    api_key: str | None = None
    client_ip: str | None = None
    client_asn: int | None = None
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
    reasoning_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    cache_hit: bool | None = None
    completion: str | None = None
    watermark: Watermark | None = None
    #: Under `protect_reasoning` (`enforcement.protection`): what the response had withheld.
    protected: bool = False
    reasoning_withheld_tokens: int | None = None
    logprobs_withheld: bool = False
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(slots=True)
class BuiltEvent:
    event: Event
    dropped: list[tuple[str, str]]  # (field, reason) of each field left out


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


def keyed_hash(value: str, secret: bytes) -> str:
    return hmac.new(secret, value.encode(), hashlib.blake2b).hexdigest()[:32]


api_key_hash = keyed_hash  # the name the API key's hash goes by


def build(request: ObservedRequest, key_secret: bytes, *, checked: bool = True) -> BuiltEvent:
    """The event for one request, with what had to be left out of it.

    Raises `contract.InvalidEvent` when a required field is unsound (the event cannot be sent).
    `checked=False` only leaves absent fields out, for producers whose fields are sound by
    construction (the simulator), where checking would be most of the cost of an event.
    """
    dropped: list[tuple[str, str]] = []
    prefix = None
    if request.client_ip is not None:
        try:
            prefix = client_ip_prefix(request.client_ip)
        except ValueError:
            dropped.append(("client_ip_prefix", "unparseable_address"))
    event: Event = {
        "schema_version": SCHEMA_VERSION,
        "event_id": request.event_id,
        "event_time_ms": request.event_time_ms,
        "account_id": request.account_id,
        "org_id": request.org_id,
        "end_user_id": None if request.end_user_id is None else keyed_hash(request.end_user_id, key_secret),
        "api_key_hash": None if request.api_key is None else api_key_hash(request.api_key, key_secret),
        "account_created_ms": request.account_created_ms,
        "client_ip_prefix": prefix,
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
        "reasoning_output_tokens": request.reasoning_tokens,
        "cache_read_input_tokens": request.cache_read_tokens,
        "cache_creation_input_tokens": request.cache_creation_tokens,
        "cache_hit": request.cache_hit,
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
        "prompt_sketch": None if request.prompt is None else sketch_prompt(request.prompt).as_dict(),
        "completion_sketch": None if request.completion is None else sketch_completion(request.completion).as_dict(),
        "watermark": None if request.watermark is None else request.watermark.as_dict(),
        # Left out unless protected, so every unprotected event is byte for byte as before.
        "protected": True if request.protected else None,
        "reasoning_withheld_tokens": request.reasoning_withheld_tokens if request.protected else None,
        "logprobs_withheld": True if request.protected and request.logprobs_withheld else None,
    }
    if not checked:
        return BuiltEvent({k: v for k, v in event.items() if v is not None}, dropped)
    sound, unsound = salvage(event)
    return BuiltEvent(sound, dropped + unsound)


def build_event(request: ObservedRequest, key_secret: bytes) -> dict[str, Any]:
    """The event alone (see `build` for what was left out)."""
    return build(request, key_secret).event
