"""What watermark served a response, as the gateway records it, and the client's opt-out.

The serving engine embeds the watermark (vLLM `--watermark-config`, SGLang, TensorRT-LLM); the
gateway knows which pool, so which key id, served the request, and whether the engine could mark
this response at all: Gumbel-max watermarking leaves greedy decoding (temperature 0) and beam
search unmarked, a request may opt out (vLLM's `watermarking: false`), and an engine may have no
watermark configured. The event carries the key *id*, never the key: the key stays in the key
registry's secret store, and only the batch audit reads it.

A client must not switch its own watermark off: `strip_watermark_opt_out` removes the opt-out
from a request body unless the caller is trusted (the operator's own evaluation jobs, say).

>>> body = {"model": "m", "messages": [], "watermarking": False, "extra_body": {"watermarking": False}}
>>> strip_watermark_opt_out(body, trusted=False)
({'model': 'm', 'messages': []}, True)
>>> strip_watermark_opt_out({"model": "m", "watermarking": False}, trusted=True)
({'model': 'm', 'watermarking': False}, False)
>>> unmarked_reason(temperature=0.0, beam_search=False, opted_out=False, engine_watermarks=True)
'greedy'
>>> AppliedWatermark("vllm", "gumbel", "philox", 4, "wm-c03-2026-12").as_dict()["key_id"]
'wm-c03-2026-12'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

UnmarkedReason = Literal["greedy", "beam_search", "opted_out", "engine_without"]
#: Where an OpenAI-compatible client can put the engine's opt-out: top level (vLLM's extra
#: sampling parameters are accepted there) or inside `extra_body` / `vllm_xargs`.
OPT_OUT_FIELD = "watermarking"
_NESTED = ("extra_body", "vllm_xargs")


@dataclass(frozen=True, slots=True)
class AppliedWatermark:
    """The watermark an engine applied to one response. `key_id` names a key in the registry."""

    engine: str  # vllm, sglang, tensorrt_llm
    algorithm: str  # gumbel, dual_key_gumbel, aaronson, synthid
    prf: str  # philox
    context_width: int
    key_id: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "applied": True,
            "engine": self.engine,
            "algorithm": self.algorithm,
            "prf": self.prf,
            "context_width": self.context_width,
            "key_id": self.key_id,
        }


@dataclass(frozen=True, slots=True)
class NoWatermark:
    """No mark on this response, and why (absent evidence is not evidence of absence)."""

    reason: UnmarkedReason
    engine: str | None = None

    def as_dict(self) -> dict[str, Any]:
        unmarked: dict[str, Any] = {"applied": False, "unmarked_reason": self.reason}
        return unmarked if self.engine is None else {**unmarked, "engine": self.engine}


Watermark = AppliedWatermark | NoWatermark


def strip_watermark_opt_out(body: dict[str, Any], *, trusted: bool) -> tuple[dict[str, Any], bool]:
    """The request body with a client's `watermarking: false` removed unless `trusted`; and
    whether one was removed (for the gateway's counter). The body passed in is not changed."""
    if trusted:
        return body, False
    stripped = False
    cleaned = dict(body)
    if cleaned.get(OPT_OUT_FIELD) is False:
        del cleaned[OPT_OUT_FIELD]
        stripped = True
    for name in _NESTED:
        nested = cleaned.get(name)
        if isinstance(nested, dict) and nested.get(OPT_OUT_FIELD) is False:
            nested = {k: v for k, v in nested.items() if k != OPT_OUT_FIELD}
            if nested:
                cleaned[name] = nested
            else:
                del cleaned[name]
            stripped = True
    return cleaned, stripped


def unmarked_reason(
    *, temperature: float | None, beam_search: bool, opted_out: bool, engine_watermarks: bool
) -> UnmarkedReason | None:
    """Why a response carries no mark, or None if the engine marked it. Order matters: an engine
    without a watermark marks nothing whatever the request asked."""
    if not engine_watermarks:
        return "engine_without"
    if opted_out:
        return "opted_out"
    if beam_search:
        return "beam_search"
    if temperature is not None and temperature == 0:
        return "greedy"
    return None
