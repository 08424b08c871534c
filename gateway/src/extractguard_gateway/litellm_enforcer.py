"""The LiteLLM proxy's enforcement point: a pre-call hook over ExtractGuard's decisions.

    litellm_settings:
      callbacks: ["extractguard_gateway.litellm_callback.extractguard",
                  "extractguard_gateway.litellm_enforcer.enforcer"]

LiteLLM calls `async_pre_call_hook` on every request after authentication (it needs no database:
the key's user, team and org come from the key store or `custom_auth`). The hook derives the
request's identity as the events do (`enforcement.identity`), reads the local decision cache (no
network call; a background thread keeps the cache fed from `enforcement.decisions`, or, with
EXTRACTGUARD_ENFORCE_FEED_URL, long-polls ExtractGuard's ingest for them) and either lets
the request through or raises LiteLLM's own `ProxyException`, which the proxy turns into the
answer: 429 with `Retry-After` (throttle), 401 with a challenge body (challenge), 403 (suspend).
While the cache is not warm the hook admits (fail-open, the default) or answers 503.

A request admitted under `protect_reasoning` (its annotations, `enforcement.protection`) is answered,
then protected before the answer leaves the proxy: `async_post_call_success_hook` takes the
reasoning and logprobs out of a whole response, `async_post_call_streaming_iterator_hook` out of
each chunk of a streamed one. What was withheld goes to `protection.recently_withheld`, where the
event callback finds it for the request's gateway event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from typing import Any

from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import ProxyException

from extractguard_gateway.adapters.common import last_user_text
from extractguard_gateway.addresses import trusted_networks
from extractguard_gateway.enforcement.cache import DecisionCache, Identity, Verdict
from extractguard_gateway.enforcement.feed import DecisionFeed
from extractguard_gateway.enforcement.http_feed import HttpDecisionFeed
from extractguard_gateway.enforcement.identity import litellm_identity
from extractguard_gateway.enforcement.protection import (
    Protection,
    StreamProtector,
    Withheld,
    protect,
    recently_withheld,
)
from extractguard_gateway.enforcement.settings import EnforceSettings
from extractguard_gateway.sketch import elicits_reasoning

log = logging.getLogger("extractguard_gateway")
_ERROR_TYPES = {401: "auth_error", 403: "permission_denied", 429: "rate_limit_error", 503: "service_unavailable"}


def _headers(data: dict[str, Any]) -> dict[str, str]:
    request = data.get("proxy_server_request")
    headers = request.get("headers") if isinstance(request, dict) else None
    return {str(k).lower(): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {}


def _metadata(data: dict[str, Any]) -> dict[str, Any]:
    for name in ("metadata", "litellm_metadata"):
        value = data.get(name)
        if isinstance(value, dict) and value:
            return value
    return data.setdefault("metadata", {})


def _protection(data: dict[str, Any]) -> Protection | None:
    for name in ("metadata", "litellm_metadata"):
        value = data.get(name)
        annotations = value.get("extractguard") if isinstance(value, dict) else None
        if isinstance(annotations, dict):
            return Protection.from_annotations(annotations)
    return None


def _drop_annotations(data: dict[str, Any]) -> bool:
    dropped = False
    for name in ("metadata", "litellm_metadata"):
        value = data.get(name)
        if isinstance(value, dict) and value.pop("extractguard", None) is not None:
            dropped = True
    return dropped


def _cot_requested(data: dict[str, Any]) -> bool:
    prompt = last_user_text(data.get("messages"))
    return prompt is not None and elicits_reasoning(prompt)


def _record(data: dict[str, Any], withheld: Withheld) -> None:
    call = data.get("litellm_call_id")
    if isinstance(call, str) and call:
        recently_withheld.record(call, withheld)


class ExtractGuardEnforcer(CustomLogger):
    def __init__(
        self, settings: EnforceSettings | None = None, cache: DecisionCache | None = None, start_feed: bool = True
    ) -> None:
        super().__init__()
        self.settings = settings or EnforceSettings.from_env()
        self.trusted = trusted_networks(self.settings.trusted_proxies)
        self.cache = cache or DecisionCache()
        self.feed: DecisionFeed | HttpDecisionFeed | None = None
        if start_feed and self.settings.feed_url:
            self.feed = HttpDecisionFeed(
                self.cache, self.settings.feed_url, self.settings.feed_token, bouncer="litellm",
                report_interval_s=self.settings.report_interval_s if self.settings.reports_topic else None,
            ).start()  # fmt: skip
        elif start_feed and self.settings.bootstrap_servers:
            self.feed = DecisionFeed(
                self.cache, self.settings.bootstrap_servers, bouncer="litellm", topic=self.settings.topic,
                reports_topic=self.settings.reports_topic, report_interval_s=self.settings.report_interval_s,
            ).start()  # fmt: skip
        if self.feed is not None:
            if not self.cache.ready.wait(self.settings.warm_wait_s):
                log.warning("extractguard: decisions not warm after %.0f s; fail_open=%s",
                            self.settings.warm_wait_s, self.settings.fail_open)  # fmt: skip
        elif start_feed:
            log.warning(
                "extractguard: no EXTRACTGUARD_ENFORCE_FEED_URL or _BOOTSTRAP_SERVERS: nothing will be enforced"
            )
            self.cache.ready.set()

    def identity(self, user_api_key_dict: Any, data: dict[str, Any]) -> Identity:
        metadata = _metadata(data)
        return litellm_identity(
            user_id=getattr(user_api_key_dict, "user_id", None),
            team_id=getattr(user_api_key_dict, "team_id", None),
            org_id=getattr(user_api_key_dict, "org_id", None),
            key_hash=getattr(user_api_key_dict, "api_key", None) or metadata.get("user_api_key"),
            forwarded_for=_headers(data).get("x-forwarded-for"),
            peer=metadata.get("requester_ip_address") or None,
            secret=self.settings.key_secret,
            trusted=self.trusted,
        )

    def verdict(self, user_api_key_dict: Any, data: dict[str, Any]) -> Verdict:
        if not self.cache.ready.is_set() and not self.settings.fail_open:
            body = {"error": {"type": "enforcement_unavailable", "message": "enforcement decisions not loaded yet"}}
            return Verdict(503, "unavailable", None, {"Retry-After": "5"}, body)
        return self.cache.verdict(self.identity(user_api_key_dict, data), int(time.time() * 1000))

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: Any
    ) -> dict[str, Any] | None:
        # A caller's own `metadata.extractguard` is not ours: dropped, so no request can name its own
        # annotations (a watermark pool, or a protection that would misreport its event).
        forged = _drop_annotations(data)
        try:
            verdict = self.verdict(user_api_key_dict, data)
        except Exception:  # a fault of ours must not take the gateway down: admit, loudly
            log.exception("extractguard: enforcement check failed; request admitted")
            return data if forged else None
        if verdict.admitted:
            if verdict.annotations:
                _metadata(data)["extractguard"] = dict(verdict.annotations)
                return data
            return data if forged else None
        error = verdict.body.get("error", {})
        extra = {k: v for k, v in error.items() if k not in ("message", "type")}
        raise ProxyException(
            message=str(error.get("message", "refused by ExtractGuard")),
            type=str(error.get("type", _ERROR_TYPES.get(verdict.status, "permission_denied"))),
            param=None,
            code=verdict.status,
            headers=dict(verdict.headers),
            provider_specific_fields={"extractguard": extra} if extra else None,
        )

    async def async_post_call_success_hook(self, data: dict[str, Any], user_api_key_dict: Any, response: Any) -> Any:
        protection = _protection(data)
        if protection is None:
            return None
        try:
            _record(data, protect(response, protection, _cot_requested(data)))
        except Exception:  # as with the pre-call check: a fault of ours serves the answer, loudly
            log.exception("extractguard: could not protect a response; served as it came")
        return response

    async def async_post_call_streaming_iterator_hook(
        self, user_api_key_dict: Any, response: Any, request_data: dict[str, Any]
    ) -> AsyncGenerator[Any, None]:
        protection = _protection(request_data)
        if protection is None:
            async for chunk in response:
                yield chunk
            return
        protector = StreamProtector(protection)
        async for chunk in response:
            yield protector.chunk(chunk)
            _record(request_data, protector.withheld)


enforcer = ExtractGuardEnforcer()
