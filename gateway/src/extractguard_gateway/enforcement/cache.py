"""The bouncer's local copy of the decisions in force, and the verdict on one request.

Lookups are dictionary reads under a lock: no network call on a request. The cache is fed by
`feed.DecisionFeed` (or anything else that calls `apply`); the newest version of a target's decision
wins, and an expired decision stops applying at its expiry time even if no message says so.

>>> cache = DecisionCache()
>>> cache.apply({"decision_id": "dec-0000000000000001", "scope": "account", "entity": "a-1",
...     "action": "suspend", "status": "active", "expires_at_ms": 10_000, "updated_at_ms": 1,
...     "effect": {"kind": "deny", "message": "suspended"}})
True
>>> cache.verdict(Identity(account="a-1"), now_ms=5_000).status
403
>>> cache.verdict(Identity(account="a-2"), now_ms=5_000).status
200
>>> cache.verdict(Identity(account="a-1"), now_ms=10_000).status
200
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from extractguard_gateway.enforcement.decisions import STRENGTH, Decision, target_key


@dataclass(frozen=True, slots=True)
class Identity:
    """Who sent a request, in the event's own terms (the same attribution the adapters use)."""

    account: str | None = None
    api_key: str | None = None  # the keyed hash, as `api_key_hash` in gateway events
    org: str | None = None
    ip_prefix: str | None = None

    def targets(self) -> list[str]:
        pairs = (("account", self.account), ("api_key", self.api_key), ("org", self.org), ("ip_prefix", self.ip_prefix))
        return [target_key(scope, value) for scope, value in pairs if value]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one request. `status` 200 admits it (with `annotations`, if any)."""

    status: int = 200
    outcome: str = "admitted"  # admitted | observed | annotated | throttled | challenged | denied
    decision: Decision | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def admitted(self) -> bool:
        return self.status == 200


ADMIT = Verdict()


def _strongest(decisions: list[Decision]) -> Decision | None:
    found: Decision | None = None
    for decision in decisions:  # the first of equals wins: account, key, org, prefix
        if found is None or STRENGTH[decision.effect.kind] > STRENGTH[found.effect.kind]:
            found = decision
    return found


class DecisionCache:
    def __init__(self) -> None:
        self._by_key: dict[str, Decision] = {}
        self._admitted: Counter[str] = Counter()  # requests seen per throttling decision
        self._lock = threading.Lock()
        #: (decision id, action, effect kind, outcome) -> requests, taken by the report sender.
        self.counts: Counter[tuple[str, str, str, str]] = Counter()
        self.ready = threading.Event()  # set once warmed from the topic

    def __len__(self) -> int:
        return len(self._by_key)

    def apply(self, payload: dict[str, Any] | None, key: str | None = None, at: tuple[int, int] | None = None) -> bool:
        """Take one record of the topic (None: a tombstone for `key`); False when older than what is held.
        (`at`, where the record was read, is of no use to a cache: the newest by `updated_at_ms` wins.)"""
        with self._lock:
            if payload is None:
                return self._by_key.pop(key, None) is not None if key else False
            decision = Decision.from_payload(payload)
            held = self._by_key.get(decision.key)
            if held is not None and held.updated_at_ms > decision.updated_at_ms:
                return False
            if held is None or held.decision_id != decision.decision_id:
                self._admitted.pop(held.decision_id if held else "", None)
            self._by_key[decision.key] = decision
            return True

    def decisions(self) -> list[Decision]:
        with self._lock:
            return list(self._by_key.values())

    def _enforced(self, identity: Identity, now_ms: int) -> list[Decision]:
        with self._lock:
            found = [self._by_key.get(key) for key in identity.targets()]
        return [d for d in found if d is not None and d.enforced_at(now_ms)]

    def in_force(self, identity: Identity, now_ms: int) -> Decision | None:
        """The strongest decision enforced now on any of the request's identities."""
        return _strongest(self._enforced(identity, now_ms))

    def verdict(self, identity: Identity, now_ms: int) -> Verdict:
        """The strongest decision's verdict. A request it admits also carries the annotations of
        every `annotate` decision in force on its other identities (a canary key pool on the account,
        reasoning protection on its IP prefix): each rides along with whatever else applies, and
        is counted as annotated."""
        enforced = self._enforced(identity, now_ms)
        decision = _strongest(enforced)
        if decision is None:
            return ADMIT
        verdict = self._verdict_of(decision)
        riders = [d for d in enforced if d is not decision and d.effect.kind == "annotate"] if verdict.admitted else []
        if riders:
            annotations = dict(verdict.annotations)
            for rider in riders:
                for name, value in rider.effect.annotations.items():
                    annotations.setdefault(name, value)  # the strongest decision's own value wins
            verdict = replace(verdict, annotations=annotations)
        with self._lock:
            self.counts[(decision.decision_id, decision.action, decision.effect.kind, verdict.outcome)] += 1
            for rider in riders:
                self.counts[(rider.decision_id, rider.action, rider.effect.kind, "annotated")] += 1
        return verdict

    def _verdict_of(self, decision: Decision) -> Verdict:
        effect = decision.effect
        ref = {"decision_id": decision.decision_id, "action": decision.action}
        if effect.kind == "none":
            return Verdict(outcome="observed", decision=decision)
        if effect.kind == "annotate":
            return Verdict(outcome="annotated", decision=decision, annotations=dict(effect.annotations))
        if effect.kind == "limit":
            with self._lock:
                self._admitted[decision.decision_id] += 1
                n = self._admitted[decision.decision_id]
            # Admit the share `rate_factor`, spread evenly: request n passes when n * factor crosses
            # an integer, so the first request after the decision is already refused (factor < 1).
            if math.floor(n * effect.rate_factor) > math.floor((n - 1) * effect.rate_factor):
                return Verdict(outcome="admitted_throttled", decision=decision)
            message = effect.message or "rate limited by ExtractGuard"
            return Verdict(
                429, "throttled", decision, {"Retry-After": str(effect.retry_after_s)},
                {"error": {"type": "rate_limited", "message": message, **ref}},
            )  # fmt: skip
        if effect.kind == "challenge":
            challenge = {"type": "step_up", **effect.challenge, **ref}
            message = effect.message or "verification required"
            return Verdict(
                401, "challenged", decision, {"WWW-Authenticate": 'ExtractGuard-Challenge realm="api"'},
                {"error": {"type": "challenge_required", "message": message, "challenge": challenge}},
            )  # fmt: skip
        message = effect.message or "suspended by ExtractGuard"
        return Verdict(403, "denied", decision, {}, {"error": {"type": "suspended", "message": message, **ref}})

    def take_counts(self) -> Counter[tuple[str, str, str, str]]:
        with self._lock:
            taken, self.counts = self.counts, Counter()
        return taken
