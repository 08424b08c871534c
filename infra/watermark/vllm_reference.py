"""Compute reference values with vLLM's own watermark code, for the port's equivalence test.

Run with a Python that has torch and vllm (`pip install torch==2.14.0` from PyPI, which brings
CUDA's runtime libraries but runs on CPU, then `pip install --no-deps vllm==0.33.0` and the few
pure-Python packages its import asks for: packaging regex cbor2 psutil pyzmq urllib3 transformers
aiohttp requests openai-harmony openai pydantic). That is how the committed values were made:

    python infra/watermark/vllm_reference.py > tests/unit/watermark_reference/vllm_0_33_0.json

Without vllm importable, give the unpacked wheel's directory as the argument, and this loads the
watermarking modules from their files as they are and stands in only for what they import
that is not watermarking: the `@config` decorator and logger of
`vllm/config/watermarking.py`, and the GPU sampler `vllm/v1/watermarking/watermarker.py`
imports for its random (unmarked) path, which none of the values below use. Every value here
is computed by the engine's files unchanged: Philox uniforms, Gumbel-max sampling on CPU, the
detector's score and p-value, and the dual-key detector.
"""

from __future__ import annotations

import importlib
import json
import sys
import types
from pathlib import Path
from typing import Any

import torch

KEYS = [0, 1, 0x1234_5678_9ABC_DEF0, 2**64 - 1, 987654321987654321]
CONTEXT_WIDTHS = [1, 3, 4, 5, 8]


def _package(name: str, path: Path | None) -> None:
    module = types.ModuleType(name)
    module.__path__ = [str(path)] if path is not None else []
    sys.modules[name] = module


def load_vllm_watermarking(root: Path) -> Any:
    """vllm.v1.watermarking from its files, without executing vllm's package __init__s."""
    vllm = root / "vllm"
    for name, path in [
        ("vllm", vllm),
        ("vllm.config", vllm / "config"),
        ("vllm.v1", vllm / "v1"),
        ("vllm.v1.worker", None),
        ("vllm.v1.worker.gpu", None),
        ("vllm.v1.worker.gpu.sample", None),
    ]:
        _package(name, path)
    utils = types.ModuleType("vllm.config.utils")
    utils.config = lambda cls: cls  # type: ignore[attr-defined]  # pydantic dataclass wrapper, unused here
    sys.modules["vllm.config.utils"] = utils
    logger = types.ModuleType("vllm.logger")
    logger.init_logger = lambda name: types.SimpleNamespace(warning_once=lambda *a, **k: None)  # type: ignore[attr-defined]
    sys.modules["vllm.logger"] = logger
    gumbel = types.ModuleType("vllm.v1.worker.gpu.sample.gumbel")
    gumbel.gumbel_sample = None  # type: ignore[attr-defined]  # the GPU sampler; the marked CPU path never calls it
    sys.modules["vllm.v1.worker.gpu.sample.gumbel"] = gumbel
    return importlib.import_module("vllm.v1.watermarking")


def marked_logits(step: int, vocabulary: int) -> list[float]:
    """Logits exact in float32 on any library (the test rebuilds them rather than storing them)."""
    return [((step * 7919 + v * 104729) % 1000) / 250 for v in range(vocabulary)]


def engine_watermarking(root: Path | None) -> Any:
    """The installed vllm's watermarking package if it imports, else the files under `root`."""
    try:
        return importlib.import_module("vllm.v1.watermarking")
    except ImportError:
        if root is None:
            raise
        return load_vllm_watermarking(root)


def main(root: Path | None) -> dict[str, Any]:
    wm = engine_watermarking(root)
    generator = torch.Generator().manual_seed(18)
    uniforms = []
    for key in KEYS:
        for width in CONTEXT_WIDTHS:
            contexts = torch.randint(-1, 50_000, (6, width), generator=generator)
            tokens = torch.randint(0, 200_000, (6, 3), generator=generator)
            values = wm.PhiloxPRF(key).uniform(contexts, tokens)
            uniforms.append({"key": key, "contexts": contexts.tolist(), "tokens": tokens.tolist(),
                             "uniforms": values.tolist()})  # fmt: skip
    detections = []
    for key in KEYS[:3]:
        for width in (1, 4, 6):
            for length in (0, 1, 7, 60):
                tokens = torch.randint(0, 300, (length,), generator=generator).tolist()
                tokens += tokens[: length // 3]  # repeated contexts, which the detector scores once
                for dedup in (True, False):
                    found = wm.GumbelWatermarkDetector(key, width, 0.01, "philox", dedup).detect(tokens)
                    detections.append({"key": key, "context_width": width, "deduplicate": dedup, "tokens": tokens,
                                       "score": found.score, "p_value": found.p_value,
                                       "scored": found.num_scored_tokens})  # fmt: skip
    dual = []
    for alpha in (0.1, 0.5):
        tokens = torch.randint(0, 300, (40,), generator=generator).tolist()
        found = wm.DualKeyGumbelWatermarkDetector(77, 4, 0.01, "philox", True, alpha).detect(tokens)
        dual.append({"key": 77, "context_width": 4, "alpha": alpha, "tokens": tokens, "score": found.score,
                     "p_value": found.p_value, "scored": found.num_scored_tokens})  # fmt: skip
    samples = []
    for key in KEYS[:3]:
        watermarker = wm.GumbelWatermarker(key, 4, "philox")
        logits = torch.randn((5, 64), generator=generator)
        contexts = torch.randint(-1, 64, (5, 4), generator=generator)
        chosen = watermarker.sample(logits, contexts).token_ids
        samples.append({"key": key, "context_width": 4, "logits": logits.tolist(), "contexts": contexts.tolist(),
                        "token_ids": chosen.tolist()})  # fmt: skip
    # A marked sequence sampled by the engine's watermarker and scored by its detector.
    key, width, vocabulary = 0xC0FFEE, 4, 200
    watermarker = wm.GumbelWatermarker(key, width, "philox")
    sequence: list[int] = []
    for step in range(120):
        logits = torch.tensor([marked_logits(step, vocabulary)], dtype=torch.float32)
        context = torch.tensor([([-1] * width + sequence)[-width:]])
        sequence.append(int(watermarker.sample(logits, context).token_ids[0]))
    found = wm.GumbelWatermarkDetector(key, width, 0.01, "philox", False).detect(sequence)
    marked = {"key": key, "context_width": width, "vocabulary": vocabulary, "token_ids": sequence,
              "score": found.score, "p_value": found.p_value, "scored": found.num_scored_tokens}  # fmt: skip
    return {
        "vllm_version": getattr(sys.modules.get("vllm"), "__version__", "0.33.0 (files)"),
        "loaded_from": str(Path(wm.__file__).parent),
        "torch_version": torch.__version__,
        "uniforms": uniforms,
        "detections": detections,
        "dual_key_detections": dual,
        "samples": samples,
        "marked_sequence": marked,
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)))
