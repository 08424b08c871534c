"""Detector backends: the engine's detector for one registry key, behind one small protocol.

`numpy` (the default) is vLLM's Gumbel and dual-key Gumbel detectors ported line by line
(`gumbel.py`, checked bit for bit against vLLM 0.33.0's own values); `vllm` calls the engine's
`GumbelWatermarkDetector` itself, where vllm is installed (`extractguard[watermark-vllm]`: torch and
CUDA's libraries; it runs on CPU). Configuration names the backend; an algorithm a backend does not
know (SynthID, say) raises `UnsupportedWatermark`, and the audit reports that key as untested
rather than as clean.

Scoring a corpus (many samples of one suspect model) pools the evidence: every text's tokens are
scored and the scores summed, each (context, token) pair once across the corpus, since a context
seen twice reuses one keyed uniform and is no new evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from extractguard.watermark.gumbel import Context, Detection, DualKeyGumbelDetector, GumbelDetector
from extractguard.watermark.keyring import WatermarkSecret
from extractguard_gateway.watermark_pools import KeyEntry

#: vLLM's default dual-key weight of key B (WatermarkConfig.alpha); the registry has no field for it yet.
DUAL_KEY_ALPHA = 0.1


class UnsupportedWatermark(ValueError):
    """No detector of this backend for the key's engine, algorithm or PRF."""


class CorpusDetector(Protocol):
    def detect(self, token_ids: Sequence[int]) -> Detection:
        """One text's detection (the engine's own `detect`). Must not raise on any token ids."""

    def detect_corpus(self, texts: Sequence[Sequence[int]]) -> Detection:
        """The pooled detection over many texts of one suspect source."""


class NumpyDetector:
    def __init__(self, detector: GumbelDetector) -> None:
        self.detector = detector

    def detect(self, token_ids: Sequence[int]) -> Detection:
        return self.detector.detect(token_ids)

    def detect_corpus(self, texts: Sequence[Sequence[int]]) -> Detection:
        width = self.detector.context_width
        seen: set[tuple[Context, int]] = set()
        contexts: list[Context] = []
        targets: list[int] = []
        for tokens in texts:
            prefix = [-1] * width
            for token in tokens:
                context = tuple(prefix[-width:])
                pair = (context, int(token))
                if pair not in seen:
                    seen.add(pair)
                    contexts.append(context)
                    targets.append(int(token))
                prefix.append(int(token))
        if not targets:
            return Detection(0.0, 1.0, 0, False)
        scores = self.detector.token_scores(
            np.asarray(contexts, dtype=np.int64).reshape(-1, width), np.asarray(targets, dtype=np.int64)
        )
        score = float(scores.sum())
        p_value = self.detector.p_value(score, len(targets))
        return Detection(score, p_value, len(targets), p_value <= self.detector.p_value_threshold)


def _numpy(entry: KeyEntry, secret: WatermarkSecret, threshold: float) -> CorpusDetector:
    if entry.prf != "philox":
        raise UnsupportedWatermark(f"key {entry.key_id}: PRF {entry.prf} (the numpy backend knows philox)")
    if entry.algorithm == "gumbel":
        return NumpyDetector(GumbelDetector(secret.reveal(), entry.context_width, threshold))
    if entry.algorithm == "dual_key_gumbel":
        return NumpyDetector(
            DualKeyGumbelDetector(secret.reveal(), entry.context_width, threshold, alpha=DUAL_KEY_ALPHA)
        )
    raise UnsupportedWatermark(
        f"key {entry.key_id}: algorithm {entry.algorithm} (numpy backend: gumbel, dual_key_gumbel)"
    )


class VllmDetector:
    """The engine's own detector; a corpus is the sum of its per-text scores (Gamma of the summed count)."""

    def __init__(self, detector: Any, threshold: float) -> None:
        self.detector = detector
        self.threshold = threshold

    def detect(self, token_ids: Sequence[int]) -> Detection:
        found = self.detector.detect(list(token_ids))
        return Detection(
            float(found.score), float(found.p_value), int(found.num_scored_tokens), bool(found.is_watermarked)
        )

    def detect_corpus(self, texts: Sequence[Sequence[int]]) -> Detection:
        found = [self.detect(t) for t in texts]
        scored = sum(f.num_scored_tokens for f in found)
        score = sum(f.score for f in found)
        p_value = float(self.detector._get_p_value(score, scored)) if scored else 1.0
        return Detection(score, p_value, scored, p_value <= self.threshold)


def _vllm(entry: KeyEntry, secret: WatermarkSecret, threshold: float) -> CorpusDetector:
    try:
        from vllm.v1.watermarking import DualKeyGumbelWatermarkDetector, GumbelWatermarkDetector
    except ImportError as error:
        raise UnsupportedWatermark("the vllm backend needs vllm: pip install 'extractguard[watermark-vllm]'") from error
    if entry.algorithm == "gumbel":
        return VllmDetector(
            GumbelWatermarkDetector(secret.reveal(), entry.context_width, threshold, entry.prf), threshold
        )
    if entry.algorithm == "dual_key_gumbel":
        detector = DualKeyGumbelWatermarkDetector(
            secret.reveal(), entry.context_width, threshold, entry.prf, True, DUAL_KEY_ALPHA
        )
        return VllmDetector(detector, threshold)
    raise UnsupportedWatermark(f"key {entry.key_id}: algorithm {entry.algorithm} (vllm: gumbel, dual_key_gumbel)")


BACKENDS: dict[str, Callable[[KeyEntry, WatermarkSecret, float], CorpusDetector]] = {"numpy": _numpy, "vllm": _vllm}


def detector_for(
    entry: KeyEntry, secret: WatermarkSecret, *, backend: str = "numpy", threshold: float = 0.01
) -> CorpusDetector:
    try:
        make = BACKENDS[backend]
    except KeyError:
        raise UnsupportedWatermark(f"no detector backend {backend!r} (known: {', '.join(BACKENDS)})") from None
    return make(entry, secret, threshold)
