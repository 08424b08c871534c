"""Which watermark key serves whom: the key registry's public half, cohort pools and canaries.

A *pool* is a set of serving replicas whose engines share one watermark key at a time (a vLLM
deployment started with that `--watermark-config`). Accounts are hashed into K *cohort* pools,
each with its own key, so a mark found in suspect text narrows its source to 1/K of the accounts
before any behavioural evidence; a *canary* pool serves the accounts of one suspected campaign
alone (the `watermark_canary` enforcement action), so that whatever is later distilled from
their take carries a key that only that campaign ever received.

The registry names keys by id, with the pool that holds each and when it is valid: a key id
plus a time gives the pool. The keys themselves are never here: they live in the registry's
secret store (a file or a Kubernetes Secret, read by the batch audit alone), so this module,
the gateway and every event see ids only. The registry is JSON (the gateway gains no YAML
dependency), and `route` is a pure function of (registry, canaries, account, time), so a
gateway and the audit agree on who was served by which key without asking each other.

>>> registry = cohort_registry(4, starts_ms=0, canaries=2)
>>> route(registry, (), "acct-1", at_ms=1_000).pool
'cohort-02'
>>> canary = assign_canary(registry, (), "cmp-7", ["acct-1"], at_ms=1_000, ttl_ms=86_400_000)
>>> r = route(registry, [canary], "acct-1", at_ms=2_000)
>>> (r.pool, r.key_id, r.canary_campaign)
('canary-00', 'wm-canary-00-0', 'cmp-7')
>>> route(registry, [canary], "acct-1", at_ms=90_000_000).pool  # the canary has expired
'cohort-02'
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import xxhash

PoolKind = Literal["cohort", "canary", "deployment"]
#: Fixed so that every gateway, and the audit, hash an account into the same cohort.
COHORT_SEED = 0x57A7E


class RegistryError(ValueError):
    """The registry file is unsound (says which entry and why)."""


class NoKeyValid(LookupError):
    """No key of the pool is valid at that time: the pool serves unmarked, which the event says."""


class NoCanaryPoolFree(LookupError):
    """Every canary pool is already serving another campaign (or has no key valid that long)."""


@dataclass(frozen=True, slots=True)
class Pool:
    name: str
    kind: PoolKind
    deployment: str  # the serving deployment (or its replica group) the gateway sends the pool to


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One watermark key, by id: its pool, the engine's configuration, when it is valid.

    `valid_until_ms` None: until further notice. Validity windows of one pool must not overlap.
    """

    key_id: str
    pool: str
    engine: str
    algorithm: str
    prf: str
    context_width: int
    valid_from_ms: int
    valid_until_ms: int | None = None

    def valid_at(self, at_ms: int) -> bool:
        return self.valid_from_ms <= at_ms and (self.valid_until_ms is None or at_ms < self.valid_until_ms)

    def overlaps(self, start_ms: int, end_ms: int) -> bool:
        return self.valid_from_ms < end_ms and (self.valid_until_ms is None or start_ms < self.valid_until_ms)


@dataclass(frozen=True, slots=True)
class KeyRegistry:
    pools: tuple[Pool, ...]
    keys: tuple[KeyEntry, ...]
    cohort_seed: int = COHORT_SEED

    def __post_init__(self) -> None:
        names = [p.name for p in self.pools]
        if len(set(names)) != len(names):
            raise RegistryError("pool names must be unique")
        ids = [k.key_id for k in self.keys]
        if len(set(ids)) != len(ids):
            raise RegistryError("key ids must be unique")
        for key in self.keys:
            if key.pool not in names:
                raise RegistryError(f"key {key.key_id}: unknown pool {key.pool}")
            if key.context_width < 1:
                raise RegistryError(f"key {key.key_id}: context_width must be positive")
            for other in self.keys:
                if (
                    other.pool == key.pool
                    and other.key_id < key.key_id
                    and other.overlaps(key.valid_from_ms, key.valid_until_ms or 2**63)
                ):
                    raise RegistryError(f"keys {other.key_id} and {key.key_id} of pool {key.pool} overlap in time")

    def pool(self, name: str) -> Pool:
        for pool in self.pools:
            if pool.name == name:
                return pool
        raise KeyError(name)

    def of_kind(self, kind: PoolKind) -> list[Pool]:
        return sorted((p for p in self.pools if p.kind == kind), key=lambda p: p.name)

    def key(self, key_id: str) -> KeyEntry:
        for key in self.keys:
            if key.key_id == key_id:
                return key
        raise KeyError(key_id)

    def key_for(self, pool: str, at_ms: int) -> KeyEntry:
        for key in self.keys:
            if key.pool == pool and key.valid_at(at_ms):
                return key
        raise NoKeyValid(f"no key of pool {pool} is valid at {at_ms}")

    def keys_between(self, start_ms: int, end_ms: int) -> list[KeyEntry]:
        """Every key valid at some time in [start_ms, end_ms): the candidates an audit tests."""
        return [k for k in self.keys if k.overlaps(start_ms, end_ms)]

    def cohort_of(self, account_id: str) -> Pool:
        cohorts = self.of_kind("cohort")
        if not cohorts:
            raise RegistryError("the registry has no cohort pools")
        return cohorts[xxhash.xxh64_intdigest(account_id.encode(), seed=self.cohort_seed) % len(cohorts)]

    def as_json(self) -> dict[str, Any]:
        return {
            "cohort_seed": self.cohort_seed,
            "pools": [{"name": p.name, "kind": p.kind, "deployment": p.deployment} for p in self.pools],
            "keys": [
                {"key_id": k.key_id, "pool": k.pool, "engine": k.engine, "algorithm": k.algorithm, "prf": k.prf,
                 "context_width": k.context_width, "valid_from": _iso(k.valid_from_ms),
                 "valid_until": None if k.valid_until_ms is None else _iso(k.valid_until_ms)}
                for k in self.keys
            ],
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class CanaryAssignment:
    """A campaign's accounts served by a canary pool from `starts_ms` until `ends_ms`."""

    campaign_id: str
    pool: str
    key_id: str
    accounts: frozenset[str]
    starts_ms: int
    ends_ms: int

    def covers(self, account_id: str, at_ms: int) -> bool:
        return self.starts_ms <= at_ms < self.ends_ms and account_id in self.accounts

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id, "pool": self.pool, "key_id": self.key_id,
            "accounts": sorted(self.accounts), "starts_ms": self.starts_ms, "ends_ms": self.ends_ms,
        }  # fmt: skip

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> CanaryAssignment:
        return cls(str(value["campaign_id"]), str(value["pool"]), str(value["key_id"]),
                   frozenset(map(str, value["accounts"])), int(value["starts_ms"]), int(value["ends_ms"]))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Route:
    """Where the gateway sends one request, and the key that will mark its response."""

    pool: str
    deployment: str
    key_id: str | None  # None: the pool has no key valid now (its responses are unmarked)
    canary_campaign: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def route(registry: KeyRegistry, canaries: Iterable[CanaryAssignment], account_id: str, at_ms: int) -> Route:
    """The pool (and key id) that serves `account_id` at `at_ms`: its campaign's canary pool while
    one covers it, else its cohort pool."""
    for canary in canaries:
        if canary.covers(account_id, at_ms):
            pool = registry.pool(canary.pool)
            return Route(pool.name, pool.deployment, canary.key_id, canary.campaign_id)
    pool = registry.cohort_of(account_id)
    try:
        key_id: str | None = registry.key_for(pool.name, at_ms).key_id
    except NoKeyValid:
        key_id = None
    return Route(pool.name, pool.deployment, key_id)


def route_annotated(registry: KeyRegistry, annotations: dict[str, str], account_id: str, at_ms: int) -> Route:
    """`route`, where the canary comes from the enforcement decision in force for the request: the
    bouncer's annotations (`watermark_pool`, `watermark_canary`, from the `watermark_canary`
    action) name the campaign's canary pool. Anything else — no annotation, a pool the registry
    does not know or that is not a canary pool, one without a key valid now — routes as `route`
    would without canaries (the cohort), so a stale or foreign annotation never sends a request
    to a key it was not meant for.

    >>> registry = cohort_registry(4, starts_ms=0, canaries=2)
    >>> r = route_annotated(registry, {"watermark_pool": "canary-01", "watermark_canary": "cmp-7"}, "acct-1", 5)
    >>> (r.pool, r.key_id, r.canary_campaign)
    ('canary-01', 'wm-canary-01-0', 'cmp-7')
    >>> route_annotated(registry, {"watermark_pool": "cohort-00"}, "acct-1", 5).pool  # not a canary pool
    'cohort-02'
    """
    name = annotations.get("watermark_pool")
    campaign = annotations.get("watermark_canary")
    if name and campaign:
        try:
            pool = registry.pool(name)
            if pool.kind == "canary":
                return Route(pool.name, pool.deployment, registry.key_for(pool.name, at_ms).key_id, campaign)
        except (KeyError, NoKeyValid):
            pass
    return route(registry, (), account_id, at_ms)


def assign_canary(
    registry: KeyRegistry,
    active: Sequence[CanaryAssignment],
    campaign_id: str,
    accounts: Iterable[str],
    *,
    at_ms: int,
    ttl_ms: int,
) -> CanaryAssignment:
    """A canary pool of its own for `campaign_id`'s accounts from `at_ms` for `ttl_ms`.

    A pool is free if no other campaign's assignment overlaps that time; a campaign that already
    holds one keeps it (its accounts are extended), so the key stays that campaign's alone.
    Raises `NoCanaryPoolFree` when none is, or none has one key valid over the whole time: a
    canary whose key changes midway would split the campaign's take across two keys.
    """
    if ttl_ms <= 0:
        raise ValueError("ttl_ms must be positive")
    members = frozenset(accounts)
    if not members:
        raise ValueError("a canary needs at least one account")
    end_ms = at_ms + ttl_ms
    for held in active:
        if held.campaign_id == campaign_id and held.starts_ms <= at_ms < held.ends_ms:
            return CanaryAssignment(campaign_id, held.pool, held.key_id, held.accounts | members, held.starts_ms,
                                    max(held.ends_ms, end_ms))  # fmt: skip
    busy = {a.pool for a in active if a.starts_ms < end_ms and at_ms < a.ends_ms}
    for pool in registry.of_kind("canary"):
        if pool.name in busy:
            continue
        try:
            key = registry.key_for(pool.name, at_ms)
        except NoKeyValid:
            continue
        if key.valid_until_ms is not None and key.valid_until_ms < end_ms:
            continue
        return CanaryAssignment(campaign_id, pool.name, key.key_id, members, at_ms, end_ms)
    raise NoCanaryPoolFree(f"no canary pool is free for campaign {campaign_id} from {at_ms} for {ttl_ms} ms")


def _iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).isoformat().replace("+00:00", "Z")


def _ms(value: Any, where: str) -> int:
    if isinstance(value, int):
        return value
    try:
        parsed = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as error:
        raise RegistryError(f"{where}: not an ISO 8601 time or epoch milliseconds: {value!r}") from error
    if parsed.tzinfo is None:
        raise RegistryError(f"{where}: a time needs its zone (Z for UTC): {value!r}")
    return int(parsed.timestamp() * 1000)


def registry_from_json(document: dict[str, Any]) -> KeyRegistry:
    """A registry from its JSON form (`as_json`). A `key` field anywhere is refused: keys live in
    the secret store, and a registry that holds one would copy it wherever the registry goes."""
    try:
        pools = tuple(Pool(str(p["name"]), p["kind"], str(p.get("deployment", p["name"]))) for p in document["pools"])
        keys = []
        for i, k in enumerate(document["keys"]):
            if "key" in k or "secret" in k:
                raise RegistryError(f"keys[{i}]: the registry names keys by id; the key belongs in the secret store")
            keys.append(KeyEntry(
                str(k["key_id"]), str(k["pool"]), str(k["engine"]), str(k["algorithm"]), str(k["prf"]),
                int(k["context_width"]), _ms(k["valid_from"], f"keys[{i}].valid_from"),
                None if k.get("valid_until") is None else _ms(k["valid_until"], f"keys[{i}].valid_until"),
            ))  # fmt: skip
    except KeyError as error:
        raise RegistryError(f"missing field {error}") from None
    for pool in pools:
        if pool.kind not in ("cohort", "canary", "deployment"):
            raise RegistryError(f"pool {pool.name}: kind must be cohort, canary or deployment")
    return KeyRegistry(pools, tuple(keys), int(document.get("cohort_seed", COHORT_SEED)))


def load_registry(path: Path) -> KeyRegistry:
    return registry_from_json(json.loads(path.read_text(encoding="utf-8")))


def cohort_registry(
    cohorts: int,
    *,
    starts_ms: int,
    canaries: int = 0,
    engine: str = "vllm",
    algorithm: str = "gumbel",
    prf: str = "philox",
    context_width: int = 4,
) -> KeyRegistry:
    """A registry of `cohorts` cohort pools and `canaries` canary pools, one key each from `starts_ms`."""
    pools = [Pool(f"cohort-{i:02d}", "cohort", f"serve-cohort-{i:02d}") for i in range(cohorts)]
    pools += [Pool(f"canary-{i:02d}", "canary", f"serve-canary-{i:02d}") for i in range(canaries)]
    keys = tuple(KeyEntry(f"wm-{p.name}-0", p.name, engine, algorithm, prf, context_width, starts_ms) for p in pools)
    return KeyRegistry(tuple(pools), keys)
