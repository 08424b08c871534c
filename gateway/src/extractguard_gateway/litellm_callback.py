"""The LiteLLM proxy callback, named in the proxy's config by module path:

    litellm_settings:
      callbacks: extractguard_gateway.litellm_callback.extractguard

Success and failure events alike become gateway events (`adapters.litellm`) handed to the
non-blocking sender; LiteLLM's own logging worker calls these hooks, and they return at once.
Settings come from EXTRACTGUARD_* variables (`settings.GatewaySettings`), read when the proxy
loads its config; the sender's thread starts with the first event.
"""

from __future__ import annotations

import logging
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from extractguard_gateway.adapters.base import UnreadablePayload
from extractguard_gateway.adapters.litellm import LiteLLMAdapter
from extractguard_gateway.sender import EventSender
from extractguard_gateway.settings import GatewaySettings

log = logging.getLogger("extractguard_gateway")


class ExtractGuardLogger(CustomLogger):
    def __init__(self, settings: GatewaySettings | None = None, sender: EventSender | None = None) -> None:
        super().__init__()
        settings = settings or GatewaySettings.from_env()
        self.adapter = LiteLLMAdapter(settings.adapter_settings())
        self.sender = sender or settings.sender()
        self.unreadable = 0

    def _observe(self, kwargs: dict[str, Any]) -> None:
        try:
            for request in self.adapter.observations(kwargs.get("standard_logging_object")):
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
