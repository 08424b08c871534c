"""The one small protocol every on-call destination implements, and what they share.

A destination turns alerts into the HTTP requests its service expects; it does no I/O (so a
payload can be checked against the service's published schema without a network) and the
dispatcher (`dispatch.py`) sends what it returns, with retries, backoff and a rate limit per
destination. Adding a destination is adding a module to `destinations/` and one line to its
registry; configuration names the module (`kind`), nothing branches on a string.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Alert = dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """One POST carrying one or more alerts."""

    url: str
    body: bytes
    alerts: tuple[Alert, ...]
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


class DestinationConfig(BaseModel):
    """What every destination's configuration has; each module adds its own fields and `kind`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, description="Distinguishes two destinations of one kind.")
    timeout_s: float = Field(default=5.0, gt=0)
    attempts: int = Field(default=5, ge=1, description="Tries per request, the first included.")
    backoff_s: float = Field(default=0.5, ge=0, description="urllib3 backoff factor between tries.")
    rate_per_s: float = Field(default=5.0, gt=0, description="Requests per second to this destination.")
    burst: int = Field(default=20, ge=1, description="Requests that may go at once before the rate applies.")

    def build(self, case_base_url: str | None) -> Destination:
        """The destination this configuration describes (each module's `Config` says which)."""
        raise NotImplementedError


C = TypeVar("C", bound=DestinationConfig)


class ConfiguredDestination(Generic[C]):
    """What every destination module's class shares: its configuration, its name (the
    configuration's, else its kind) and where case pages are served (None: no links)."""

    kind: ClassVar[str]

    def __init__(self, config: C, case_base_url: str | None = None) -> None:
        self.config = config
        self.name = config.name or self.kind
        self.case_base_url = case_base_url


class Destination(Protocol):
    """An on-call destination.

    `name` identifies it in metrics and in the delivery records; `config` carries its retry and
    rate settings. `requests` must not block or do I/O, and must not raise on any alert that
    validates against `schemas/alert`: it is called on the alerter's loop.
    """

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def config(self) -> DestinationConfig: ...

    def requests(self, alerts: Sequence[Alert]) -> list[OutgoingRequest]: ...


def iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).isoformat().replace("+00:00", "Z")


def case_url(alert: Alert, base_url: str | None) -> str | None:
    """Where a person reads the case: a campaign's case page (`extractguard campaigns show ID
    --html`, served under the base URL), or the alert's own page for any other alert."""
    if not base_url:
        return None
    base = base_url.rstrip("/")
    if alert["entity_kind"] == "campaign":
        return f"{base}/campaigns/{alert['entity']}.html"
    return f"{base}/alerts/{alert['alert_id']}.html"
