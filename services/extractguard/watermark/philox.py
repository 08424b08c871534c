"""vLLM's watermark PRF (Philox4x32-10 over the context and the token id), in numpy.

A token's watermark uniform is a keyed function of the `context_width` token ids before it and
of the token id itself; the engine draws its Gumbel noise from it, and the detector re-derives it.
This is a line-by-line port of `vllm/v1/watermarking/prfs/philox.py` and `prfs/base.py` from
vllm 0.33.0 (Apache-2.0, copyright the vLLM project contributors; see `VLLM_LICENSE` beside this
file), which does the same arithmetic on int64 torch tensors (splitting each 32x32 multiply in
16-bit halves because torch has no uint64): here a uint64 product holds it exactly. The same
constants, the same domain separation and the same float32 rounding of the uniform, so the
values are bit-identical (`tests/unit/test_watermark_detector.py` checks them against uniforms
the engine's own code computed).

>>> prf = PhiloxPRF(0x1234_5678_9ABC_DEF0)
>>> u = prf.uniform(np.array([[1, 2, 3, 4]]), np.array([[7, 8]]))
>>> u.shape, u.dtype, bool(((0 < u) & (u < 1)).all())
((1, 2), dtype('float32'), True)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

VERSION = "philox4x32-10-v1"  # vLLM's PhiloxPRF.version
_MASK = np.uint64(2**32 - 1)
_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)
_CONTEXT_DOMAIN = np.uint64(0x574D4358)
_TOKEN_DOMAIN = np.uint64(0x574D544B)
_SHIFT_32, _SHIFT_8, _SHIFT_2, _THREE = np.uint64(32), np.uint64(8), np.uint64(2), np.uint64(3)

U64 = npt.NDArray[np.uint64]
Words = tuple[U64, U64, U64, U64]


def _mulhilo(multiplier: np.uint64, values: U64) -> tuple[U64, U64]:
    product = values * multiplier  # both below 2**32: exact in 64 bits
    return product >> _SHIFT_32, product & _MASK


def philox4x32_10(counter: Words, key: tuple[U64, U64]) -> Words:
    """Ten Philox rounds (Salmon et al., SC'11), elementwise over arrays of 32-bit words."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for round_index in range(10):
        high_0, low_0 = _mulhilo(_M0, c0)
        high_1, low_1 = _mulhilo(_M1, c2)
        c0, c1, c2, c3 = (high_1 ^ c1 ^ k0) & _MASK, low_1, (high_0 ^ c3 ^ k1) & _MASK, low_0
        if round_index != 9:
            k0 = (k0 + _W0) & _MASK
            k1 = (k1 + _W1) & _MASK
    return c0, c1, c2, c3


def uint32_to_uniform(values: U64) -> npt.NDArray[np.float32]:
    """The top 24 bits as a float32 in (0, 1), never 0 or 1 (vLLM's `uint32_to_uniform`)."""
    mantissas = (values & _MASK) >> _SHIFT_8
    return ((mantissas.astype(np.float64) + 1.0) / (2**24 + 1)).astype(np.float32)


def _words(values: npt.ArrayLike) -> U64:
    """Token ids (padding -1 included) as their low 32 bits, as torch's `& 0xFFFFFFFF` on int64."""
    return (np.asarray(values, dtype=np.int64) & 0xFFFFFFFF).astype(np.uint64)


def _context_state(key: int, contexts: npt.ArrayLike) -> tuple[Words, U64, U64, tuple[int, ...]]:
    """The Philox state after absorbing each row's context, with the two key words and the rows'
    shape: what both the per-token uniforms and the whole-vocabulary quads start from."""
    context_words = _words(contexts)
    width = context_words.shape[-1]
    prefix_shape = context_words.shape[:-1]
    key_0 = np.full(prefix_shape, key & 0xFFFFFFFF, dtype=np.uint64)
    key_1 = np.full(prefix_shape, key >> 32, dtype=np.uint64)
    state: Words = (
        np.full(prefix_shape, _CONTEXT_DOMAIN, dtype=np.uint64),
        np.full(prefix_shape, width, dtype=np.uint64),
        np.zeros(prefix_shape, dtype=np.uint64),
        np.zeros(prefix_shape, dtype=np.uint64),
    )
    for offset in range(0, width, 4):
        block = [
            context_words[..., offset + i]
            if offset + i < width
            else np.full(prefix_shape, 0xFFFFFFFF - i, dtype=np.uint64)
            for i in range(4)
        ]
        counter: Words = (state[0] ^ block[0], state[1] ^ block[1], state[2] ^ block[2], state[3] ^ block[3])
        state = philox4x32_10(counter, ((key_0 ^ np.uint64(offset)) & _MASK, key_1))
    return state, key_0, key_1, prefix_shape


def philox_uniform(key: int, contexts: npt.ArrayLike, token_ids: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Uniforms of shape broadcast(contexts.shape[:-1] + (1,), token_ids.shape).

    `contexts` is [..., context_width] token ids (-1 for the padding before the first token).
    """
    state, key_0, key_1, prefix_shape = _context_state(key, contexts)

    token_words = _words(token_ids)
    output_shape = np.broadcast_shapes((*prefix_shape, 1), token_words.shape)
    tokens = np.broadcast_to(token_words, output_shape)
    s0, s1, s2, s3 = (np.broadcast_to(word[..., None], output_shape) for word in state)
    candidate_key_0 = np.broadcast_to(key_0[..., None], output_shape)
    candidate_key_1 = np.broadcast_to(key_1[..., None], output_shape)
    outputs = philox4x32_10(
        (tokens >> _SHIFT_2, s0, s1, s2),
        ((candidate_key_0 ^ s3) & _MASK, (candidate_key_1 ^ _TOKEN_DOMAIN) & _MASK),
    )
    word_index = tokens & _THREE
    output = np.choose(word_index.astype(np.intp), outputs)
    return uint32_to_uniform(output)


class PhiloxPRF:
    """vLLM's `PhiloxPRF`: one 64-bit key."""

    version = VERSION

    def __init__(self, key: int) -> None:
        if not 0 <= key <= 2**64 - 1:
            raise ValueError("Philox keys must fit in 64 bits")
        self.key = key

    def uniform(self, contexts: npt.ArrayLike, token_ids: npt.ArrayLike) -> npt.NDArray[np.float32]:
        return philox_uniform(self.key, contexts, token_ids)


def philox_vocabulary_uniform(key: int, contexts: npt.ArrayLike, vocabulary: int) -> npt.NDArray[np.float32]:
    """`philox_uniform(key, contexts, arange(vocabulary)[None, :])`, four times cheaper.

    The PRF's token counter is `token >> 2` and the token's low two bits pick one of the four
    output words, so one Philox call covers four consecutive tokens: a sampler that needs every
    token's uniform makes a quarter of the calls, with the same values.

    >>> contexts = np.array([[5, 6, 7, 8], [-1, -1, -1, 3]])
    >>> bool((philox_vocabulary_uniform(9, contexts, 10) == philox_uniform(9, contexts, np.arange(10)[None, :])).all())
    True
    """
    rows = np.asarray(contexts).shape[0]
    quads = (vocabulary + 3) // 4
    words = _quad_words(key, contexts, quads)
    return uint32_to_uniform(words.reshape(rows, quads * 4)[:, :vocabulary])


def _quad_words(key: int, contexts: npt.ArrayLike, quads: int) -> U64:
    """The four output words of each token counter 0..quads-1: [rows, quads, 4]."""
    state, key_0, key_1, prefix_shape = _context_state(key, contexts)
    shape = (*prefix_shape, quads)
    counters = np.broadcast_to(np.arange(quads, dtype=np.uint64), shape)
    s0, s1, s2, s3 = (np.broadcast_to(word[..., None], shape) for word in state)
    outputs = philox4x32_10(
        (counters, s0, s1, s2),
        (
            (np.broadcast_to(key_0[..., None], shape) ^ s3) & _MASK,
            (np.broadcast_to(key_1[..., None], shape) ^ _TOKEN_DOMAIN) & _MASK,
        ),
    )
    return np.stack(outputs, axis=-1)
