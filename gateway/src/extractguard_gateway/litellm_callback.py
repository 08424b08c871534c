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
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from extractguard_gateway.adapters.base import UnreadablePayload
from extractguard_gateway.adapters.litellm import LiteLLMAdapter
from extractguard_gateway.sender import EventSender
from extractguard_gateway.settings import GatewaySettings

log = logging.getLogger("extractguard_gateway")
RECENT_CALLS = 65_536  # (call, outcome) pairs remembered against double reports


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
                self.sender.submit(request)
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
