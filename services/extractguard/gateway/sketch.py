"""Prompt sketches: the gateway distribution's (`extractguard_gateway.sketch`), one implementation
for every gateway and for the simulator."""

from extractguard_gateway.sketch import (
    MINHASH_SEED,
    NUM_PERM,
    SHINGLE,
    PromptSketch,
    elicits_reasoning,
    minhash_similarity,
    shingles,
    sketch_prompt,
    template_skeleton,
)

__all__ = [
    "MINHASH_SEED",
    "NUM_PERM",
    "SHINGLE",
    "PromptSketch",
    "elicits_reasoning",
    "minhash_similarity",
    "shingles",
    "sketch_prompt",
    "template_skeleton",
]
