"""The watermark measurement's pieces at a tiny scale: marked text is found, unmarked is not, a
student of a watermarked take carries the mark, and a student of unwatermarked text does not."""

from __future__ import annotations

import numpy as np

from extractguard.watermark.measurement import (
    Scale,
    keys_of,
    null_p_values,
    pool_identification,
    radioactivity,
    tpr_table,
)
from extractguard.watermark.ngram import NGramModel, sample


def _teacher(vocabulary: int = 200) -> NGramModel:
    rng = np.random.default_rng(1)
    follow = rng.integers(0, vocabulary, (vocabulary, 10))
    sequences, token = [], 0
    for _ in range(40):
        sequence = []
        for _ in range(200):
            token = int(follow[token, rng.integers(0, 10)])
            sequence.append(token)
        sequences.append(sequence)
    return NGramModel.train(sequences, vocabulary=vocabulary, order=3)


def test_marked_text_is_found_and_unmarked_text_is_not() -> None:
    teacher, rng = _teacher(), np.random.default_rng(2)
    keys = keys_of(16, 3)
    key_index = [i % 16 for i in range(32)]
    marked = sample(
        teacher, sequences=32, length=400, rng=rng, key=np.array([keys[i] for i in key_index], dtype=np.uint64)
    )
    plain = sample(teacher, sequences=32, length=400, rng=rng)
    nulls = null_p_values({"unwatermarked": plain}, keys_of(4, 4))
    rows = tpr_table(marked, [keys[i] for i in key_index], nulls, 1.0)
    by_tokens = {r["tokens"]: r for r in rows}
    assert by_tokens[200]["tpr_at_0.01"] >= 0.9 and by_tokens[400]["tpr_at_0.001"] >= 0.9
    assert all(r["fpr_unwatermarked_at_0.01"] <= 0.05 for r in rows)
    identified = {(r["pools"], r["tokens"]): r for r in pool_identification(marked[:16], key_index[:16], keys)}
    assert identified[(16, 400)]["identified"] >= 0.9


def test_a_student_of_the_watermarked_take_is_radioactive_and_a_control_student_is_not() -> None:
    scale = Scale(positives=0, model_negatives=0, null_keys=0, take_texts=64, student_texts=10, vocabulary=200)
    found = radioactivity(_teacher(), scale, keys_of(1, 7)[0], np.random.default_rng(5))
    five = next(s for s in found["students"] if s["order"] == 5)["budgets"][-1]
    assert five["watermarked_take_p_value"] < 1e-4
    assert five["unwatermarked_text_p_value"] > 1e-3
