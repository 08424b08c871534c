"""throttle: the target keeps `rate_factor` of its request rate; the rest get 429 with Retry-After.
A campaign paced just under per-account limits loses most of its harvest while a wrongly throttled
honest user is slowed, not locked out."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from extractguard.enforcement.actions.base import Action, Params, register


class ThrottleParams(Params):
    rate_factor: float = Field(default=0.1, gt=0, lt=1, description="Share of the target's requests admitted.")
    retry_after_s: int = Field(default=60, ge=1, le=86_400)
    message: str = Field(default="rate limited: unusual traffic from this account", max_length=256)


@register
class Throttle(Action):
    name = "throttle"
    strength = 30
    parameters = ThrottleParams

    def effect(self, params: Params) -> dict[str, Any]:
        assert isinstance(params, ThrottleParams)
        return {"kind": "limit", "rate_factor": params.rate_factor, "retry_after_s": params.retry_after_s,
                "message": params.message}  # fmt: skip
