"""The Gumbel-max watermark (Aaronson): vLLM's sampler and detector, in numpy, for the batch audit.

The engine samples token t as argmax(logit + Gumbel noise), the noise drawn from a keyed uniform
r_t of the previous `context_width` token ids (`philox`): the output distribution is unchanged,
but the chosen token's r_t is biased towards 1. The detector recomputes r_t for every token of a
suspect text and sums -log(1 - r_t): Exp(1) per token without the key's mark, so the sum over n
scored tokens is Gamma(n, 1) and its survival function is the p-value. A repeated context reuses
one keyed uniform (not independent evidence), so it is scored once (`deduplicate_contexts`), and
the sampler samples it without the mark, as vLLM's `single_turn` scope does.

Ported from `vllm/v1/watermarking/{detector,gumbel}.py` of vllm 0.33.0 (Apache-2.0, the vLLM
project contributors; `VLLM_LICENSE`): the same input preparation (padding -1 before the first
token), score, p-value (the engine's own log-space Gamma survival for an integer shape) and the
dual-key variant's key derivation and weighting. No torch: the stream services never need this,
and the audit runs where there is no GPU.

>>> detector = GumbelDetector(key=42, context_width=4)
>>> detector.detect([]).p_value
1.0
>>> round(gamma_survival_integer_shape(10.0, 10), 6)  # P(Gamma(10, 1) > 10)
0.45793
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import gammaincc

from extractguard.watermark.philox import PhiloxPRF

Context = tuple[int, ...]
_TINY = np.finfo(np.float32).tiny


@dataclass(frozen=True, slots=True)
class Detection:
    """vLLM's `WatermarkDetection`."""

    score: float
    p_value: float
    num_scored_tokens: int
    is_watermarked: bool


def derive_watermark_key(key: int, domain: bytes) -> int:
    """vLLM's `derive_watermark_key`: the dual-key variant's keys A and B from its one key."""
    digest = hashlib.sha256(domain + key.to_bytes(8, "big")).digest()
    return int.from_bytes(digest[:8], "big")


def gamma_survival_integer_shape(score: float, shape: int) -> float:
    """P(Gamma(shape, 1) > score), summed in log space (vLLM's `_gamma_survival_integer_shape`)."""
    if shape <= 0 or score <= 0:
        return 1.0
    log_score = math.log(score)
    log_term = 0.0
    max_log_term = 0.0
    log_terms = [log_term]
    for index in range(1, shape):
        log_term += log_score - math.log(index)
        log_terms.append(log_term)
        max_log_term = max(max_log_term, log_term)
    log_sum = max_log_term + math.log(sum(math.exp(term - max_log_term) for term in log_terms))
    return min(1.0, math.exp(min(0.0, -score + log_sum)))


def prepare_inputs(
    token_ids: Sequence[int], context_width: int, deduplicate_contexts: bool
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(contexts [n, context_width], targets [n]) of the tokens to score."""
    contexts: list[Context] = []
    targets: list[int] = []
    seen: set[Context] = set()
    prefix = [-1] * context_width
    for token_id in token_ids:
        context = tuple(prefix[-context_width:])
        if not deduplicate_contexts or context not in seen:
            seen.add(context)
            contexts.append(context)
            targets.append(int(token_id))
        prefix.append(int(token_id))
    if not contexts:
        return np.empty((0, context_width), dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.asarray(contexts, dtype=np.int64).reshape(-1, context_width), np.asarray(targets, dtype=np.int64)


def _validate(context_width: int, p_value_threshold: float) -> None:
    if context_width < 1:
        raise ValueError("context_width must be positive")
    if not 0 < p_value_threshold < 1:
        raise ValueError("p_value_threshold must be between 0 and 1")


class GumbelDetector:
    """vLLM's `GumbelWatermarkDetector(key, context_width, p_value_threshold, prf, deduplicate_contexts)`."""

    def __init__(
        self,
        key: int,
        context_width: int = 4,
        p_value_threshold: float = 0.01,
        deduplicate_contexts: bool = True,
    ) -> None:
        _validate(context_width, p_value_threshold)
        self.prf = PhiloxPRF(key)
        self.context_width = context_width
        self.p_value_threshold = p_value_threshold
        self.deduplicate_contexts = deduplicate_contexts

    def token_scores(self, contexts: npt.NDArray[np.int64], targets: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        uniforms = self.prf.uniform(contexts, targets[:, None])[:, 0]
        return -np.log1p(-uniforms.astype(np.float64))

    def p_value(self, score: float, num_scored_tokens: int) -> float:
        return gamma_survival_integer_shape(score, num_scored_tokens)

    def detect(self, token_ids: Sequence[int]) -> Detection:
        contexts, targets = prepare_inputs(token_ids, self.context_width, self.deduplicate_contexts)
        scored = len(targets)
        if scored == 0:
            return Detection(0.0, 1.0, 0, False)
        score = float(self.token_scores(contexts, targets).sum())
        p_value = self.p_value(score, scored)
        return Detection(score, p_value, scored, p_value <= self.p_value_threshold)


class DualKeyGumbelDetector(GumbelDetector):
    """vLLM's `DualKeyGumbelWatermarkDetector`: keys A and B derived from one key, weights 1-alpha, alpha."""

    def __init__(
        self,
        key: int,
        context_width: int = 4,
        p_value_threshold: float = 0.01,
        deduplicate_contexts: bool = True,
        alpha: float = 0.1,
    ) -> None:
        if not 0 <= alpha <= 1:
            raise ValueError("alpha must be between 0 and 1")
        super().__init__(derive_watermark_key(key, b"key_a"), context_width, p_value_threshold, deduplicate_contexts)
        self.key_b_prf = PhiloxPRF(derive_watermark_key(key, b"key_b"))
        self.alpha = alpha

    def token_scores(self, contexts: npt.NDArray[np.int64], targets: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        scores = np.stack(
            [
                -np.log1p(-prf.uniform(contexts, targets[:, None])[:, 0].astype(np.float64))
                for prf in (self.prf, self.key_b_prf)
            ],
            axis=-1,
        )
        return scores @ np.array([1 - self.alpha, self.alpha])

    def p_value(self, score: float, num_scored_tokens: int) -> float:
        variance = (1 - self.alpha) ** 2 + self.alpha**2
        if self.alpha in (0, 0.5, 1):
            return gamma_survival_integer_shape(score / variance, round(num_scored_tokens / variance))
        return float(gammaincc(num_scored_tokens / variance, score / variance))


class GumbelSampler:
    """vLLM's `GumbelWatermarker` for one sequence, on CPU: argmax(logits + keyed Gumbel noise).

    A context already used in this sequence is sampled without the mark (`rng`), as vLLM does
    with `deduplicate_contexts="single_turn"`; `temperature` scales the logits first.
    """

    def __init__(self, key: int, context_width: int = 4) -> None:
        if context_width < 1:
            raise ValueError("context_width must be positive")
        self.prf = PhiloxPRF(key)
        self.context_width = context_width

    def next_token(
        self, logits: npt.NDArray[np.float32], generated: Sequence[int], seen: set[Context], rng: np.random.Generator
    ) -> int:
        prefix = [-1] * self.context_width + list(generated[-self.context_width :])
        context = tuple(prefix[-self.context_width :])
        logits = np.asarray(logits, dtype=np.float32)
        if context in seen:
            return int(np.argmax(logits + rng.gumbel(size=logits.shape).astype(np.float32)))
        seen.add(context)
        vocabulary = np.arange(logits.shape[-1])
        uniforms = np.maximum(self.prf.uniform(np.asarray([context]), vocabulary[None, :])[0], _TINY)
        noise = -np.log(-np.log(uniforms))
        return int(np.argmax(logits + noise))
