"""A decision as a bouncer reads it (`enforcement_decision` v1 on `enforcement.decisions`).

The enforcer's actions (observe, throttle, challenge, suspend, and any added later) each render to
one *effect* from a small closed vocabulary, and bouncers know only effects: a new action needs no
change at any enforcement point.

- `none`: shadow; recorded and counted, nothing enforced (observe, and a decision awaiting approval,
  unless it escalates a rung in force: then it carries that rung's effect until approved).
- `limit`: admit `rate_factor` of the requests; the others get 429 with `Retry-After`.
- `challenge`: 401 with a challenge body (step-up verification).
- `deny`: 403.
- `annotate`: admit, with `annotations` attached to the request (e.g. the watermark key pool it is
  routed to).

>>> d = Decision.from_payload({"decision_id": "dec-00000000000000aa", "scope": "account", "entity": "a-1",
...     "action": "throttle", "status": "active", "expires_at_ms": 2_000, "updated_at_ms": 1_000,
...     "effect": {"kind": "limit", "rate_factor": 0.25, "retry_after_s": 30}})
>>> d.key, d.enforced_at(1_500), d.enforced_at(2_000)
('account:a-1', True, False)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Scope = Literal["account", "api_key", "org", "ip_prefix"]
SCOPES: tuple[Scope, ...] = ("account", "api_key", "org", "ip_prefix")
EffectKind = Literal["none", "annotate", "limit", "challenge", "deny"]
#: How strongly each effect refuses: where several decisions cover one request, the strongest applies.
STRENGTH: dict[str, int] = {"none": 0, "annotate": 1, "limit": 2, "challenge": 3, "deny": 4}
#: Statuses under which a decision applies (until it expires): an active one enforces its effect; one
#: awaiting approval carries effect `none` (counted as observed, enforcing nothing), or, when it
#: escalates a rung in force, that rung's effect.
ENFORCED_STATUSES = frozenset({"active", "pending_approval"})


def target_key(scope: str, entity: str) -> str:
    """The key of a target on the decisions topic (one decision per target is in force)."""
    return f"{scope}:{entity}"


@dataclass(frozen=True, slots=True)
class Effect:
    kind: EffectKind = "none"
    rate_factor: float = 1.0
    retry_after_s: int = 60
    message: str = ""
    challenge: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_payload(cls, payload: dict[str, Any] | None) -> Effect:
        if not payload:
            return cls()
        kind = payload.get("kind", "none")
        return cls(
            kind=kind if kind in STRENGTH else "deny",  # an effect this bouncer does not know refuses
            rate_factor=float(payload.get("rate_factor", 1.0)),
            retry_after_s=int(payload.get("retry_after_s", 60)),
            message=str(payload.get("message", "")),
            challenge=dict(payload.get("challenge") or {}),
            annotations={str(k): str(v) for k, v in (payload.get("annotations") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class Decision:
    decision_id: str
    scope: str
    entity: str
    action: str
    status: str
    effect: Effect
    expires_at_ms: int
    updated_at_ms: int

    @property
    def key(self) -> str:
        return target_key(self.scope, self.entity)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Decision:
        return cls(
            decision_id=str(payload["decision_id"]),
            scope=str(payload["scope"]),
            entity=str(payload["entity"]),
            action=str(payload["action"]),
            status=str(payload["status"]),
            effect=Effect.from_payload(payload.get("effect")),
            expires_at_ms=int(payload["expires_at_ms"]),
            updated_at_ms=int(payload.get("updated_at_ms", 0)),
        )

    def enforced_at(self, now_ms: int) -> bool:
        """Whether its effect applies now: in force and not expired (expiry needs no message)."""
        return self.status in ENFORCED_STATUSES and now_ms < self.expires_at_ms
