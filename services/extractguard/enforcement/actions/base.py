"""What an enforcement action is: a name, its parameters, and the effect bouncers enforce.

An action module defines one `Action` subclass and decorates it with `register`; `actions/__init__`
imports every module of the package, so a new action is one new file. The policy names actions by
`name` and gives their `parameters` (validated at load); a decision carries the action's name, its
params and the effect it renders to (`extractguard_gateway.enforcement.decisions`), which is all a
bouncer reads.

>>> from extractguard.enforcement.actions import action
>>> throttle = action("throttle")
>>> throttle.effect(throttle.params({"rate_factor": 0.2}))["kind"]
'limit'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Action:
    """One action. Subclasses set `name`, `strength` (how far up the ladder it is: observe 0,
    suspend 100; escalation must not go down) and `parameters`, and render `effect`."""

    name: ClassVar[str]
    strength: ClassVar[int]
    parameters: ClassVar[type[Params]] = Params
    #: Whether a person must approve it where the policy's approval gate applies (observe needs none).
    needs_approval: ClassVar[bool] = True

    def params(self, raw: dict[str, Any] | None) -> Params:
        """The validated parameters (raises pydantic's ValidationError)."""
        return self.parameters.model_validate(raw or {})

    def effect(self, params: Params) -> dict[str, Any]:
        """The `effect` object of the decision (kind none|annotate|limit|challenge|deny and its
        fields, as the decision schema declares). Must be pure: it is called for every decision."""
        raise NotImplementedError


_REGISTRY: dict[str, Action] = {}
A = TypeVar("A", bound=type[Action])


def register(cls: A) -> A:
    if cls.name in _REGISTRY:
        raise ValueError(f"action {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls()
    return cls


def registry() -> dict[str, Action]:
    return _REGISTRY


Renderer = Callable[[Params], dict[str, Any]]
