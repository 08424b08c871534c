"""Gateway events as the simulator and the replays build them: the gateway distribution's builder
(`extractguard_gateway.events`), one implementation for every producer.

The simulator's fields are sound by construction, so its events skip the per-field check that a
real gateway's get (`build(..., checked=False)`: absent fields are still left out); the consumers
check every event anyway.
"""

from __future__ import annotations

from typing import Any

from extractguard_gateway.events import ObservedRequest, api_key_hash, build, client_ip_prefix, keyed_hash

__all__ = ["ObservedRequest", "api_key_hash", "build", "build_event", "client_ip_prefix", "keyed_hash"]


def build_event(request: ObservedRequest, key_secret: bytes) -> dict[str, Any]:
    return build(request, key_secret, checked=False).event
