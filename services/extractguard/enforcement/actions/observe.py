"""observe: shadow mode. The decision is recorded and bouncers count what it would have covered,
but nothing is enforced: the first rung of every ladder, and what a decision awaiting approval does."""

from __future__ import annotations

from typing import Any

from extractguard.enforcement.actions.base import Action, Params, register


@register
class Observe(Action):
    name = "observe"
    strength = 0
    needs_approval = False

    def effect(self, params: Params) -> dict[str, Any]:
        return {"kind": "none"}
