"""LiteLLM proxy: its `StandardLoggingPayload` (the `standard_logging_object` of every success and
failure callback) as an observation.

Attribution follows LiteLLM's own: the account is the key's user, else its team, else the key
itself (`metadata.user_api_key_hash`, which LiteLLM computes, keyed-hashed again here); the org is
the key's organisation (an enterprise feature), else its team. `end_user` (the request's `user`) is
what the caller asserts: it is kept only as the hashed, low-trust `end_user_id`, never as the
account. The client address is the nearest untrusted hop of the logged `x-forwarded-for` chain
(the trusted proxies are the operator's), else LiteLLM's `requester_ip_address`. The user agent
comes from the payload, else from LiteLLM's `User-Agent:` request tags.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from extractguard_gateway.adapters.base import UNAUTHENTICATED, AdapterSettings, UnreadablePayload
from extractguard_gateway.adapters.common import (
    client,
    count,
    last_user_text,
    number,
    prior_turns,
    sdk_of,
    text,
)
from extractguard_gateway.events import ObservedRequest, keyed_hash

#: LiteLLM call types (with or without the async "a" prefix) -> gen_ai.operation.name.
OPERATIONS = {
    "completion": "chat",
    "responses": "chat",
    "anthropic_messages": "chat",
    "text_completion": "text_completion",
    "embedding": "embeddings",
}
_FINISH = {"stop", "length", "content_filter", "tool_calls"}


def _operation(call_type: Any) -> str:
    name = call_type if isinstance(call_type, str) else ""
    return OPERATIONS.get(name, OPERATIONS.get(name[1:], "chat") if name.startswith("a") else "chat")


def _user_agent(payload: dict[str, Any], metadata: dict[str, Any]) -> tuple[str | None, str | None]:
    """(user agent, SDK) from the payload or LiteLLM's "User-Agent: ..." tags."""
    agent = text(payload.get("user_agent")) or text(metadata.get("user_agent"))
    tags = [t.split(":", 1)[1].strip() for t in payload.get("request_tags") or [] if isinstance(t, str)
            and t.lower().startswith("user-agent:")]  # fmt: skip
    if agent is None and tags:
        agent = max(tags, key=len)  # LiteLLM tags both "openai-python" and "openai-python/1.54.0"
    return agent, sdk_of(agent) or (min(tags, key=len) if tags else None)


def _forwarded_for(metadata: dict[str, Any]) -> str | None:
    for headers in (
        metadata.get("requester_custom_headers"),
        (metadata.get("requester_metadata") or {}).get("headers"),
    ):
        if isinstance(headers, dict):
            for name, value in headers.items():
                if name.lower() == "x-forwarded-for" and isinstance(value, str):
                    return value
    return None


def _usage(payload: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    usage = metadata.get("usage_object")
    if not isinstance(usage, dict):
        response = payload.get("response")
        usage = response.get("usage") if isinstance(response, dict) else None
    return usage if isinstance(usage, dict) else {}


class LiteLLMAdapter:
    name: ClassVar[str] = "litellm"
    paths: ClassVar[tuple[str, ...]] = ()  # in-process: `extractguard_gateway.litellm_callback`

    def __init__(self, settings: AdapterSettings) -> None:
        self.settings = settings
        # The key hash names the account only when LiteLLM knows no user or team; it is LiteLLM's
        # unkeyed sha256 of the key, so it is keyed-hashed before it can become an account id.
        self._account_secret: bytes = settings.extra.get("key_secret", b"")

    def observations(self, document: Any) -> list[ObservedRequest]:
        if not isinstance(document, dict) or "metadata" not in document or "status" not in document:
            raise UnreadablePayload("not a LiteLLM StandardLoggingPayload (no metadata/status)")
        payload: dict[str, Any] = document
        metadata: dict[str, Any] = payload.get("metadata") or {}
        key = text(metadata.get("user_api_key_hash"))
        team = text(metadata.get("user_api_key_team_id")) or text(metadata.get("team_id"))
        account = text(metadata.get("user_api_key_user_id")) or (f"team:{team}" if team else None)
        if account is None:
            account = f"key:{keyed_hash(key, self._account_secret)}" if key else UNAUTHENTICATED
        org = text(metadata.get("user_api_key_org_id")) or (f"team:{team}" if team else None)
        address, asn = client(self.settings, _forwarded_for(metadata), text(payload.get("requester_ip_address")))
        agent, sdk = _user_agent(payload, metadata)
        usage = _usage(payload, metadata)
        completion_details = usage.get("completion_tokens_details") or {}
        prompt_details = usage.get("prompt_tokens_details") or {}
        params: dict[str, Any] = payload.get("model_parameters") or {}
        failed = payload.get("status") != "success"
        status = 200
        finish: str | None = "stop"
        refusal = False
        completion: str | None = None  # sketched by the event builder, then dropped
        if failed:
            error = payload.get("error_information") or {}
            status = count(error.get("error_code")) or 500
            status = status if 100 <= status <= 599 else 500
            finish = "error"
        else:
            response = payload.get("response")
            choices = response.get("choices") if isinstance(response, dict) else None
            if isinstance(choices, list) and choices and isinstance(choices[0], dict):
                reason = choices[0].get("finish_reason")
                finish = reason if reason in _FINISH else None
                message = choices[0].get("message") or {}
                refusal = bool(isinstance(message, dict) and message.get("refusal"))
                content = message.get("content") if isinstance(message, dict) else None
                completion = content if isinstance(content, str) and content else None
        start = number(payload.get("startTime")) or 0.0
        end = number(payload.get("endTime")) or start
        messages = payload.get("messages")
        prompt = last_user_text(messages)
        tools = params.get("tools")
        return [
            ObservedRequest(
                event_id=text(payload.get("litellm_call_id")) or text(payload.get("id")) or uuid.uuid4().hex,
                account_id=account,
                org_id=org,
                api_key=key,
                client_ip=address,
                client_asn=asn,
                end_user_id=text(payload.get("end_user")),
                user_agent=agent,
                sdk_name=sdk,
                request_model=text(payload.get("model_group")) or text(payload.get("model")) or "unknown",
                response_model=text((payload.get("hidden_params") or {}).get("litellm_model_name")),
                provider_name=self.settings.provider_name or text(payload.get("custom_llm_provider")) or "litellm",
                operation_name=_operation(payload.get("call_type")),
                prompt=prompt,
                completion=completion,
                conversation_id=text(payload.get("session_id")),
                turn_index=prior_turns(messages),
                event_time_ms=int(start * 1000),
                latency_ms=max(0, int((end - start) * 1000)),
                input_tokens=count(payload.get("prompt_tokens")) or 0,
                output_tokens=count(payload.get("completion_tokens")) or 0,
                reasoning_tokens=count(completion_details.get("reasoning_tokens")),
                cache_read_tokens=count(prompt_details.get("cached_tokens"))
                or count(usage.get("cache_read_input_tokens")),
                cache_creation_tokens=count(usage.get("cache_creation_input_tokens")),
                cache_hit=payload.get("cache_hit") if isinstance(payload.get("cache_hit"), bool) else None,
                max_tokens=count(params.get("max_tokens")) or count(params.get("max_completion_tokens")),
                temperature=number(params.get("temperature")),
                top_p=number(params.get("top_p")),
                n=count(params.get("n")) or 1,
                logprobs=bool(params.get("logprobs")),
                top_logprobs=count(params.get("top_logprobs")) or 0,
                logit_bias=bool(params.get("logit_bias")),
                tools_count=len(tools) if isinstance(tools, list) else 0,
                response_status=status,
                finish_reason=finish,
                refusal=refusal,
            )
        ]
