"""protect_reasoning: serve the answer, withhold what a distiller learns most from.

The target's requests are all answered, but the bouncer takes the reasoning out of each response
(reasoning fields, `<think>` blocks, worked steps before the final answer of a step-by-step
request) or replaces it by a short fixed summary, and drops token log-probabilities. Published
work finds that withholding or rewriting the reasoning a suspected distiller receives cuts what a
student learns from it sharply, while an honest user wrongly protected still gets every answer:
the cheapest response that costs a harvest something, and one that does not tell the actor it
was seen the way a refusal does.

It renders to an `annotate` effect (`extractguard_gateway.enforcement.protection` is the contract
every enforcement point follows), so a bouncer that predates it admits the request unchanged.

>>> protect = ProtectReasoning()
>>> protect.effect(protect.params({}))
{'kind': 'annotate', 'annotations': {'protect_reasoning': 'withhold', 'protect_logprobs': 'drop'}}
>>> protect.effect(protect.params({"mode": "summary"}))["annotations"]["protect_reasoning_summary"]
'[reasoning withheld]'
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from extractguard.enforcement.actions.base import Action, Params, register
from extractguard_gateway.enforcement import protection


class ProtectReasoningParams(Params):
    mode: Literal["withhold", "summary"] = Field(
        default="withhold", description="Remove the reasoning, or replace it by `summary`."
    )
    summary: str = Field(default=protection.DEFAULT_SUMMARY, min_length=1, max_length=256)
    drop_logprobs: bool = Field(default=True, description="Null every choice's logprobs (and top_logprobs).")


@register
class ProtectReasoning(Action):
    name = "protect_reasoning"
    strength = 10  # above observe and the canary key, below anything that refuses a request
    parameters = ProtectReasoningParams
    needs_approval = False  # every request is still answered

    def effect(self, params: Params) -> dict[str, Any]:
        assert isinstance(params, ProtectReasoningParams)
        annotations: dict[str, str] = {protection.ANNOTATION: params.mode}
        if params.mode == "summary":
            annotations[protection.SUMMARY_ANNOTATION] = params.summary
        annotations[protection.LOGPROBS_ANNOTATION] = "drop" if params.drop_logprobs else "keep"
        return {"kind": "annotate", "annotations": annotations}
