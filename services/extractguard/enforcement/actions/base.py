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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class Binding:
    """What one decision is made about, for an action whose parameters depend on it (`bind`)."""

    scope: str  # account | api_key | org | ip_prefix
    entity: str
    evidence_id: str  # the campaign (or detection) the decision comes from
    at_ms: int
    #: The records of this action's decisions in force now, whatever their target: for an action
    #: that hands out a shared resource (a canary key pool) and must know who holds what.
    in_force: Sequence[Mapping[str, Any]]


class Action:
    """One action. Subclasses set `name`, `strength` (how far up the ladder it is: observe 0,
    suspend 100; escalation must not go down) and `parameters`, and render `effect`; an action
    whose parameters depend on the target sets `binds` and overrides `bind`."""

    name: ClassVar[str]
    strength: ClassVar[int]
    parameters: ClassVar[type[Params]] = Params
    #: Whether a person must approve it where the policy's approval gate applies (observe needs none).
    needs_approval: ClassVar[bool] = True
    #: Whether `bind` needs the decisions in force (the book gathers them only for such actions).
    binds: ClassVar[bool] = False

    def bind(self, params: Params, binding: Binding) -> Params:
        """The parameters of one decision, from the policy's and its target. Called once, when the
        decision is made; the result is what the decision records (so a restart, reading the
        decisions back, knows it) and what `effect` renders. Deterministic given its inputs."""
        return params

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
