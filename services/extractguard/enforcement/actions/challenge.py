"""challenge: step-up verification. Requests get 401 with a challenge body naming where to verify;
a person behind the account can pass it, a fleet of scripted accounts cannot cheaply."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from extractguard.enforcement.actions.base import Action, Params, register


class ChallengeParams(Params):
    verify_url: str | None = Field(default=None, max_length=512, description="Where the account owner verifies.")
    message: str = Field(default="verification required for this account", max_length=256)


@register
class Challenge(Action):
    name = "challenge"
    strength = 60
    parameters = ChallengeParams

    def effect(self, params: Params) -> dict[str, Any]:
        assert isinstance(params, ChallengeParams)
        challenge = {"verify_url": params.verify_url} if params.verify_url else {}
        return {"kind": "challenge", "message": params.message, "challenge": challenge}
