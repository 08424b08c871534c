"""Gateway adapters, found by name through one registry (`ADAPTERS`).

Adding a gateway is adding a module with one class behind `base.GatewayAdapter` and one line here;
the contract test runs over every entry with the golden payloads in
`schemas/examples/adapters/<name>/`.
"""

from __future__ import annotations

from extractguard_gateway.adapters.base import AdapterSettings, GatewayAdapter, UnreadablePayload
from extractguard_gateway.adapters.kong import KongHttpLogAdapter
from extractguard_gateway.adapters.litellm import LiteLLMAdapter
from extractguard_gateway.adapters.otel import OtelGenAiAdapter

ADAPTERS: dict[str, type[GatewayAdapter]] = {
    adapter.name: adapter for adapter in (LiteLLMAdapter, OtelGenAiAdapter, KongHttpLogAdapter)
}

__all__ = ["ADAPTERS", "AdapterSettings", "GatewayAdapter", "UnreadablePayload"]
