"""Kong AI Gateway: the body the `http-log` plugin posts for each request, with the `ai` audit
fields the AI plugins add: `ai.<plugin>.usage.prompt_token` and `completion_token` (also read as
`prompt_tokens`), `ai.<plugin>.meta.request_model`, `provider_name`, `response_model`,
`llm_latency`, `ai.<plugin>.cache.cache_status`; the prompt in `ai.payload.request` or
`ai.<plugin>.payload.request` only when the plugin's `logging.log_payloads` is on.

Identity: the consumer (`consumer.id`, else `consumer.username`) is the account and the
authenticated credential (`authenticated_entity.id`) the key; `client_ip` is what Kong resolved
with its own `trusted_ips` / `real_ip_header`, so it is taken as is.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, ClassVar

from extractguard_gateway.adapters.base import UNAUTHENTICATED, AdapterSettings, UnreadablePayload
from extractguard_gateway.adapters.common import client, count, last_user_text, number, prior_turns, sdk_of, text
from extractguard_gateway.events import ObservedRequest


def _plugin(ai: dict[str, Any]) -> dict[str, Any]:
    """The audit block of the AI plugin that proxied the call (ai-proxy, ai-proxy-advanced, ...)."""
    for value in ai.values():
        if isinstance(value, dict) and ("usage" in value or "meta" in value):
            return value
    return {}


def _request_body(ai: dict[str, Any], plugin: dict[str, Any]) -> dict[str, Any]:
    """The logged request (`ai.payload.request` up to 3.9, `ai.<plugin>.payload.request` since)."""
    body = (plugin.get("payload") or {}).get("request") or (ai.get("payload") or {}).get("request")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return {}
    return body if isinstance(body, dict) else {}


def _cache_hit(plugin: dict[str, Any]) -> bool | None:
    status = (plugin.get("cache") or {}).get("cache_status")  # Hit, Miss, Bypass, Refresh (3.8+)
    return None if not isinstance(status, str) else status.lower() == "hit"


class KongHttpLogAdapter:
    name: ClassVar[str] = "kong_http_log"
    paths: ClassVar[tuple[str, ...]] = ("/kong/http-log",)

    def __init__(self, settings: AdapterSettings) -> None:
        self.settings = settings

    def observations(self, document: Any) -> list[ObservedRequest]:
        # http-log sends one object per request, or an array of them when queue.max_batch_size > 1.
        entries = document if isinstance(document, list) else [document]
        if not entries or not all(isinstance(e, dict) and "request" in e for e in entries):
            raise UnreadablePayload("not a Kong http-log body (no request)")
        return [self._one(e) for e in entries if isinstance(e.get("ai"), dict)]

    def _one(self, entry: dict[str, Any]) -> ObservedRequest:
        ai = _plugin(entry["ai"])
        usage, meta = ai.get("usage") or {}, ai.get("meta") or {}
        consumer = entry.get("consumer") or {}
        credential = entry.get("authenticated_entity") or {}
        request = entry.get("request") or {}
        headers = {str(k).lower(): v for k, v in (request.get("headers") or {}).items()}
        agent = headers.get("user-agent")
        agent = agent if isinstance(agent, str) else None
        address, asn = client(self.settings, None, text(entry.get("client_ip")))
        body = _request_body(entry["ai"], ai)
        messages = body.get("messages")
        latencies = entry.get("latencies") or {}
        status = count((entry.get("response") or {}).get("status")) or 200
        started = count(entry.get("started_at")) or 0
        return ObservedRequest(
            event_id=text(headers.get("x-request-id")) or text(entry.get("request_id")) or uuid.uuid4().hex,
            account_id=text(consumer.get("id")) or text(consumer.get("username")) or UNAUTHENTICATED,
            api_key=text(credential.get("id")),
            client_ip=address,
            client_asn=asn,
            user_agent=agent,
            sdk_name=sdk_of(agent),
            provider_name=self.settings.provider_name or text(meta.get("provider_name")) or "kong",
            request_model=text(meta.get("request_model")) or text(body.get("model")) or "unknown",
            response_model=text(meta.get("response_model")),
            prompt=last_user_text(messages) if messages is not None else text(body.get("prompt")),
            turn_index=prior_turns(messages),
            event_time_ms=started,
            latency_ms=count(latencies.get("request")) or count(meta.get("llm_latency")) or 0,
            input_tokens=count(usage.get("prompt_tokens", usage.get("prompt_token"))) or 0,
            output_tokens=count(usage.get("completion_tokens", usage.get("completion_token"))) or 0,
            max_tokens=count(body.get("max_tokens")),
            temperature=number(body.get("temperature")),
            top_p=number(body.get("top_p")),
            n=count(body.get("n")) or 1,
            logprobs=bool(body.get("logprobs")),
            top_logprobs=count(body.get("top_logprobs")) or 0,
            logit_bias=bool(body.get("logit_bias")),
            response_status=status if 100 <= status <= 599 else 500,
            finish_reason="stop" if status < 400 else "error",
            cache_hit=_cache_hit(ai),
        )
