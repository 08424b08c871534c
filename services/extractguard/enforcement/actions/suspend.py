"""suspend: every request gets 403 until the decision expires or is lifted."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from extractguard.enforcement.actions.base import Action, Params, register


class SuspendParams(Params):
    message: str = Field(default="suspended: this account's traffic violates the usage policy", max_length=256)


@register
class Suspend(Action):
    name = "suspend"
    strength = 100
    parameters = SuspendParams

    def effect(self, params: Params) -> dict[str, Any]:
        assert isinstance(params, SuspendParams)
        return {"kind": "deny", "message": params.message}
