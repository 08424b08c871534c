"""Prompt sketches, computed at the gateway so that no raw prompt text ever leaves it.

A sketch holds a MinHash signature over word 3-shingles (near-duplicate and paraphrase-family
detection through LSH downstream), the hash of a template skeleton (numbers, quoted strings,
URLs, e-mail addresses and code masked, so slot-filled prompts of one template share it), lengths,
and whether the prompt asks for step-by-step reasoning. MinHash comes from rensa (Rust), about
10x faster than datasketch.

>>> a = sketch_prompt('Translate "good morning" into French, item 12.')
>>> b = sketch_prompt('Translate "see you tomorrow" into French, item 907.')
>>> a.template_hash == b.template_hash
True
>>> len(a.minhash)
64
>>> sketch_prompt("Explain your reasoning step by step: 2+2?").cot_elicitation
True

A completion is sketched the same way (the same shingles, permutations and seed, so a suspect
text sketched later is comparable), plus its LSH band hashes, so that the batch audit can find
the landed responses a suspect text copies with an indexed lookup rather than a scan:

>>> c = sketch_completion("The capital of France is Paris, a city on the Seine.")
>>> len(c.minhash), len(c.bands), c.bands == completion_bands(c.minhash)
(64, 16, True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import rensa
import xxhash

NUM_PERM = 64
# Fixed so that every gateway, everywhere, produces comparable signatures.
MINHASH_SEED = 0x5EED
SHINGLE = 3

_WORD = re.compile(r"\w+", re.UNICODE)
_MASKS = (
    (re.compile(r"```.*?```", re.DOTALL), " <code> "),
    (re.compile(r"https?://\S+"), " <url> "),
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+"), " <email> "),
    (re.compile(r"\"[^\"]*\"|'[^']*'|“[^”]*”"), " <quoted> "),
    (re.compile(r"\d+(?:[.,]\d+)*"), " <num> "),
)
_SPACE = re.compile(r"\s+")
_COT = re.compile(
    r"step[- ]by[- ]step|explain (?:your|the) reasoning|show (?:your|all) (?:work|steps)|"
    r"think (?:it )?through|chain[- ]of[- ]thought|reason(?:ing)? carefully",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class PromptSketch:
    minhash: list[int]
    template_hash: str
    length_chars: int
    length_words: int
    cot_elicitation: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "minhash": self.minhash,
            "template_hash": self.template_hash,
            "length_chars": self.length_chars,
            "length_words": self.length_words,
            "cot_elicitation": self.cot_elicitation,
        }


def template_skeleton(prompt: str) -> str:
    """The prompt with its variable parts masked, lowercased, whitespace collapsed."""
    skeleton = prompt
    for pattern, mask in _MASKS:
        skeleton = pattern.sub(mask, skeleton)
    return _SPACE.sub(" ", skeleton).strip().lower()


def shingles(words: list[str]) -> list[str]:
    if len(words) <= SHINGLE:
        return [" ".join(words)] if words else [""]
    return [" ".join(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)]


def elicits_reasoning(prompt: str) -> bool:
    """Whether a prompt asks for step-by-step reasoning (`cot_elicitation`)."""
    return _COT.search(prompt) is not None


def sketch_prompt(prompt: str) -> PromptSketch:
    words = _WORD.findall(prompt.lower())
    minhash = rensa.RMinHash(num_perm=NUM_PERM, seed=MINHASH_SEED)
    minhash.update(shingles(words))
    return PromptSketch(
        minhash=[int(v) for v in minhash.digest()],
        template_hash=xxhash.xxh64_hexdigest(template_skeleton(prompt).encode()),
        length_chars=len(prompt),
        length_words=len(words),
        cot_elicitation=elicits_reasoning(prompt),
    )


def minhash_similarity(a: list[int], b: list[int]) -> float:
    """Estimated Jaccard similarity of the shingle sets behind two signatures."""
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


#: LSH banding of a completion's signature: 16 bands of 4 rows, so two completions whose shingle
#: sets have Jaccard similarity 0.5 share a band with probability 1 - (1 - 0.5**4)**16 = 0.64, and
#: at 0.8 with probability 0.9996 (the prompt bands of detection use 4-row bands too).
BAND_ROWS = 4


@dataclass(frozen=True, slots=True)
class CompletionSketch:
    minhash: list[int]
    bands: list[int]
    length_chars: int
    length_words: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "minhash": self.minhash,
            "bands": self.bands,
            "length_chars": self.length_chars,
            "length_words": self.length_words,
        }


def completion_bands(minhash: list[int]) -> list[int]:
    """The 32-bit hash of each band of BAND_ROWS rows (the band's index is hashed in, so equal
    rows in different bands do not collide)."""
    return [
        xxhash.xxh32_intdigest(
            b"".join(v.to_bytes(4, "little") for v in minhash[start : start + BAND_ROWS]), seed=start // BAND_ROWS
        )
        for start in range(0, len(minhash) - BAND_ROWS + 1, BAND_ROWS)
    ]


def sketch_completion(completion: str) -> CompletionSketch:
    words = _WORD.findall(completion.lower())
    minhash = rensa.RMinHash(num_perm=NUM_PERM, seed=MINHASH_SEED)
    minhash.update(shingles(words))
    signature = [int(v) for v in minhash.digest()]
    return CompletionSketch(signature, completion_bands(signature), len(completion), len(words))
