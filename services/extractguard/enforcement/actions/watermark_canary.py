"""watermark_canary: serve a suspected campaign's accounts from a watermark key pool of its own.

Nothing is refused: the campaign keeps harvesting, but under a key no one else is served with, so
whatever is later distilled from its take carries that key's mark and points at this campaign
alone (`extractguard attribute`; the key registry in `extractguard_gateway.watermark_pools`). The
policy lists the registry's canary pools the enforcer may hand out (`pools`); each campaign gets
the first one no other campaign holds while its decisions are in force, and keeps it as members
join (every member's decision names the same pool). When every pool is held, the decision is
recorded with no pool and enforces nothing: two campaigns sharing a key would make the mark
point at both. The bouncer attaches the pool as the request annotation `watermark_pool` (and the
campaign as `watermark_canary`); the pool router maps it to the pool's key
(`watermark_pools.route_annotated`).

>>> from extractguard.enforcement.actions.base import Binding
>>> canary = WatermarkCanary()
>>> policy = canary.params({"pools": ["canary-00", "canary-01"]})
>>> first = canary.bind(policy, Binding("account", "a1", "cmp-1", 0, []))
>>> canary.effect(first)
{'kind': 'annotate', 'annotations': {'watermark_pool': 'canary-00', 'watermark_canary': 'cmp-1'}}
>>> held = [{"params": first.model_dump(mode="json")}]
>>> canary.bind(policy, Binding("account", "a2", "cmp-1", 0, held)).pool  # the campaign keeps its pool
'canary-00'
>>> canary.bind(policy, Binding("account", "b1", "cmp-2", 0, held)).pool  # another gets its own
'canary-01'
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from extractguard.enforcement.actions.base import Action, Binding, Params, register


class WatermarkCanaryParams(Params):
    pools: list[str] = Field(
        default=["canary-00"],
        min_length=1,
        max_length=64,
        description="Canary pools of the key registry to hand out (a cohort registry names them canary-00, -01...).",
    )
    # Set by the enforcer when it makes the decision (`bind`), not in the policy.
    pool: str | None = Field(default=None, description="The pool this decision's campaign holds.")
    campaign: str | None = Field(default=None, description="The campaign it holds it for.")


@register
class WatermarkCanary(Action):
    name = "watermark_canary"
    strength = 5  # above observe, below anything that refuses a request
    parameters = WatermarkCanaryParams
    needs_approval = False  # it serves every request as before, only under another key
    binds = True

    def bind(self, params: Params, binding: Binding) -> Params:
        assert isinstance(params, WatermarkCanaryParams)
        holders: dict[str, str] = {}  # pool -> the campaign holding it
        for decision in binding.in_force:
            held = decision["params"]
            if held.get("pool") and held.get("campaign"):
                holders.setdefault(str(held["pool"]), str(held["campaign"]))
        mine = next((p for p, c in holders.items() if c == binding.evidence_id and p in params.pools), None)
        free = next((p for p in params.pools if p not in holders), None)
        pool = mine or free
        return params.model_copy(update={"pool": pool, "campaign": binding.evidence_id if pool else None})

    def effect(self, params: Params) -> dict[str, Any]:
        assert isinstance(params, WatermarkCanaryParams)
        if params.pool is None or params.campaign is None:
            return {"kind": "none"}  # every canary pool is held by another campaign
        return {"kind": "annotate", "annotations": {"watermark_pool": params.pool, "watermark_canary": params.campaign}}
