"""What every gateway adapter is: one small protocol from a gateway's own payload to observations.

An adapter reads what one product gives (LiteLLM's standard logging payload, an OTLP export, Kong's
http-log body) and returns the `ObservedRequest`s it describes, leaving absent whatever the
product does not know. It never raises for a well-formed payload that lacks optional parts; it
raises `UnreadablePayload` for one it cannot read at all (the caller dead-letters it whole).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from extractguard_gateway.addresses import AsnDatabase, Network
from extractguard_gateway.events import ObservedRequest

UNAUTHENTICATED = "unauthenticated"  # the account of a request refused before any identity was read


class UnreadablePayload(ValueError):
    """The payload is not the product's format at all (wrong shape, not JSON)."""


@dataclass(slots=True)
class AdapterSettings:
    trusted_proxies: Sequence[Network] = ()  # hops of the forwarded chain that are the operator's own
    asn_database: AsnDatabase | None = None  # address -> ASN when the operator provides one
    provider_name: str | None = None  # overrides what the payload says the provider is
    extra: dict[str, Any] = field(default_factory=dict)


class GatewayAdapter(Protocol):
    """Maps one payload of a gateway product to the requests it describes."""

    name: ClassVar[str]
    #: Where a receiving service serves this adapter (HTTP paths), empty for in-process adapters.
    paths: ClassVar[tuple[str, ...]]

    def __init__(self, settings: AdapterSettings) -> None: ...

    def observations(self, document: Any) -> list[ObservedRequest]:
        """The `ObservedRequest`s of one decoded payload; raises `UnreadablePayload`. Must not block."""
        ...
