"""The LiteLLM proxy callback, named in the proxy's config by module path:

    litellm_settings:
      callbacks: extractguard_gateway.litellm_callback.extractguard

Success and failure events alike become gateway events (`adapters.litellm`) handed to the
non-blocking sender; LiteLLM's own logging worker calls these hooks, and they return at once.
Settings come from EXTRACTGUARD_* variables (`settings.GatewaySettings`), read when the proxy
loads its config; the sender's thread starts with the first event.

The proxy sometimes reports one failed call twice (same `litellm_call_id`: seen with refused keys
and unknown models when the proxy is busy), so the callback remembers the calls it has seen
recently and observes each (call, outcome) once.

A request the enforcer protected (`litellm_enforcer`, `protect_reasoning`) is recorded as such: its
event says `protected` and how many reasoning tokens were withheld, whether this callback sees the
response before the enforcer protected it (it counts the reasoning itself) or after (it reads the
count the enforcer left in `protection.recently_withheld`).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from extractguard_gateway.adapters.base import UnreadablePayload
from extractguard_gateway.adapters.common import last_user_text
from extractguard_gateway.adapters.litellm import LiteLLMAdapter
from extractguard_gateway.enforcement.protection import Protection, reasoning_tokens, recently_withheld
from extractguard_gateway.events import ObservedRequest
from extractguard_gateway.sender import EventSender
from extractguard_gateway.settings import GatewaySettings
from extractguard_gateway.sketch import elicits_reasoning

log = logging.getLogger("extractguard_gateway")
RECENT_CALLS = 65_536  # (call, outcome) pairs remembered against double reports


def _annotations(kwargs: dict[str, Any]) -> dict[str, str] | None:
    """The enforcer's annotations of the request (its pre-call hook put them in the metadata)."""
    params = kwargs.get("litellm_params")
    for metadata in (params.get("metadata") if isinstance(params, dict) else None, kwargs.get("metadata")):
        annotations = metadata.get("extractguard") if isinstance(metadata, dict) else None
        if isinstance(annotations, dict):
            return annotations
    return None


def _with_protection(request: ObservedRequest, kwargs: dict[str, Any], payload: Any) -> ObservedRequest:
    """The request marked with what protection withheld from its response, if it was protected."""
    if not isinstance(payload, dict):  # the adapter reads only dicts; kept for the type's sake
        return request
    call = payload.get("litellm_call_id")
    known = recently_withheld.get(call) if isinstance(call, str) else None
    protection = Protection.from_annotations(_annotations(kwargs))
    if (protection is None and known is None) or payload.get("status") != "success":
        return request
    prompt = last_user_text(payload.get("messages"))
    response = payload.get("response")
    seen = reasoning_tokens(response, prompt is not None and elicits_reasoning(prompt)) if response else 0
    request.protected = True
    request.reasoning_withheld_tokens = max(seen, known.reasoning_tokens if known else 0)
    choices = response.get("choices") if isinstance(response, dict) else None
    had_logprobs = any(isinstance(c, dict) and c.get("logprobs") for c in choices or [])
    dropping = protection is not None and protection.drop_logprobs
    request.logprobs_withheld = bool(known.logprobs) if known else had_logprobs and dropping
    return request


class ExtractGuardLogger(CustomLogger):
    def __init__(self, settings: GatewaySettings | None = None, sender: EventSender | None = None) -> None:
        super().__init__()
        settings = settings or GatewaySettings.from_env()
        self.adapter = LiteLLMAdapter(settings.adapter_settings())
        self.sender = sender or settings.sender()
        self.unreadable = 0
        self.duplicates = 0
        self._recent: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._recent_lock = threading.Lock()  # sync hooks run in LiteLLM's threads, async ones on its loop

    def _seen(self, payload: Any) -> bool:
        """Whether this (call, outcome) was observed already; remembers it if not."""
        if not isinstance(payload, dict) or not payload.get("litellm_call_id"):
            return False
        key = (str(payload["litellm_call_id"]), str(payload.get("status")))
        with self._recent_lock:
            if key in self._recent:
                self.duplicates += 1
                return True
            self._recent[key] = None
            if len(self._recent) > RECENT_CALLS:
                self._recent.popitem(last=False)
            return False

    def _observe(self, kwargs: dict[str, Any]) -> None:
        payload = kwargs.get("standard_logging_object")
        try:
            if self._seen(payload):
                return
            for request in self.adapter.observations(payload):
                self.sender.submit(_with_protection(request, kwargs, payload))
        except UnreadablePayload:
            self.unreadable += 1  # a call LiteLLM logged without its standard payload
        except Exception:  # the gateway's request must never fail because of us
            log.exception("extractguard: could not observe a LiteLLM call")

    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._observe(kwargs)

    def log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._observe(kwargs)

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._observe(kwargs)

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._observe(kwargs)


extractguard = ExtractGuardLogger()
