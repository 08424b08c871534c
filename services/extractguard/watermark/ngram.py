"""A token n-gram language model, for measuring the watermark without a GPU.

The measurement (`measurement.py`) needs a language model whose next-token distributions the
engine's Gumbel sampler can drive, and a *student* that can be trained on a campaign's take: an
n-gram model over a real text sample is enough for the statistics (the watermark's strength
depends on the entropy of the next-token distribution, which the report states). Witten-Bell
interpolation: each context's maximum-likelihood distribution is mixed with the next shorter
context's, weighted by how often the context was seen against how many different tokens followed
it; the unigram is add-one smoothed, so every token has some probability.

Sequences are sampled in batches (one row per sequence), because the keyed Philox uniforms of a
whole vocabulary cost about the same for one row as for a few hundred: the watermarked sampler is
vLLM's Gumbel-max over `PhiloxPRF` uniforms (`gumbel.GumbelSampler`, batched here), with a
repeated context sampled unmarked as vLLM's `single_turn` deduplication does.

>>> model = NGramModel.train([[1, 2, 3, 1, 2, 3, 1, 2]], vocabulary=5, order=3)
>>> int(np.argmax(model.log_probs([(1, 2)])[0]))
3
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from extractguard.watermark.philox import philox_vocabulary_uniform

Context = tuple[int, ...]
_TINY = np.finfo(np.float32).tiny


class NGramModel:
    def __init__(
        self,
        vocabulary: int,
        order: int,
        unigram: npt.NDArray[np.float64],
        tables: list[dict[Context, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], float]]],
    ) -> None:
        self.vocabulary = vocabulary
        self.order = order
        self.unigram = unigram
        self.tables = tables  # tables[k]: context of k tokens -> (next tokens, their ML probabilities, weight)

    @classmethod
    def train(cls, sequences: Sequence[Sequence[int]], *, vocabulary: int, order: int) -> NGramModel:
        if order < 1:
            raise ValueError("order must be at least 1")
        unigram_counts = np.ones(vocabulary, dtype=np.float64)  # add-one
        follow: list[dict[Context, Counter[int]]] = [defaultdict(Counter) for _ in range(order)]
        for sequence in sequences:
            tokens = [int(t) for t in sequence]
            for i, token in enumerate(tokens):
                unigram_counts[token] += 1
                for k in range(1, order):
                    if i - k < 0:
                        break
                    follow[k][tuple(tokens[i - k : i])][token] += 1
        tables: list[dict[Context, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], float]]] = [{}]
        for k in range(1, order):
            table = {}
            for context, counter in follow[k].items():
                nexts = np.fromiter(counter.keys(), dtype=np.int64, count=len(counter))
                counts = np.fromiter(counter.values(), dtype=np.float64, count=len(counter))
                total = counts.sum()
                table[context] = (nexts, counts / total, total / (total + len(counter)))  # Witten-Bell weight
            tables.append(table)
        return cls(vocabulary, order, unigram_counts / unigram_counts.sum(), tables)

    def log_probs(self, contexts: Sequence[Sequence[int]]) -> npt.NDArray[np.float32]:
        """[len(contexts), vocabulary] next-token log probabilities; a context is the tokens so far."""
        out = np.empty((len(contexts), self.vocabulary), dtype=np.float64)
        for row, context in enumerate(contexts):
            p = self.unigram.copy()
            for k in range(1, self.order):
                if len(context) < k:
                    break
                found = self.tables[k].get(tuple(context[-k:]))
                if found is None:
                    break  # a longer context is unseen if a shorter one is
                nexts, ml, weight = found
                p *= 1 - weight
                p[nexts] += weight * ml
            out[row] = p
        return np.log(out).astype(np.float32)


def sample(
    model: NGramModel,
    *,
    sequences: int,
    length: int,
    rng: np.random.Generator,
    key: int | npt.NDArray[np.uint64] | None = None,
    context_width: int = 4,
    greedy: bool = False,
    temperature: float = 1.0,
) -> list[list[int]]:
    """`sequences` texts of `length` tokens: plain sampling (key None), greedy decoding, or
    watermarked with `key` (one key, or one per sequence) as vLLM's Gumbel watermarker samples:
    the logits scaled by `temperature` first, as the engine's logits processors do."""
    generated: list[list[int]] = [[] for _ in range(sequences)]
    seen: list[set[Context]] = [set() for _ in range(sequences)]
    keys = None if key is None else np.broadcast_to(np.asarray(key, dtype=np.uint64), (sequences,))
    for _step in range(length):
        logits = model.log_probs(generated)
        if temperature != 1.0:
            logits = logits / np.float32(temperature)
        if greedy:
            chosen = np.argmax(logits, axis=1)
        else:
            chosen = np.argmax(logits + rng.gumbel(size=logits.shape).astype(np.float32), axis=1)
        if keys is not None:
            contexts = np.array([([-1] * context_width + g)[-context_width:] for g in generated], dtype=np.int64)
            fresh = np.array([tuple(c) not in s for c, s in zip(contexts.tolist(), seen, strict=True)])
            for row in np.flatnonzero(fresh):
                seen[row].add(tuple(contexts[row].tolist()))
            for key_value in np.unique(keys[fresh]):
                rows = np.flatnonzero(fresh & (keys == key_value))
                uniforms = np.maximum(
                    philox_vocabulary_uniform(int(key_value), contexts[rows], model.vocabulary), _TINY
                )
                chosen[rows] = np.argmax(logits[rows] - np.log(-np.log(uniforms)), axis=1)
        for sequence_index, picked in enumerate(chosen.tolist()):
            generated[sequence_index].append(int(picked))
    return generated
