"""`make watermark-eval`: how well the watermark audit works, measured on CPU without a GPU.

A real text sample (the docstrings of Python's standard library and the licence texts every
Debian system ships: human prose present on every machine that runs this) trains a byte-level BPE
tokenizer with `tokenizers` (written out as the `tokenizer.json` an operator would provide) and a
trigram teacher (`ngram.NGramModel`). The teacher is driven by the engine's Gumbel sampler
(vLLM's, ported bit for bit) under registry keys; unwatermarked samples of the same teacher and
held-out human text are the negatives. Reported (reports/watermark/watermark.{json,md}):

- true-positive rate at 1% and 0.1% nominal false-positive rate against tokens scored, and the
  realised false-positive rate on unwatermarked and human text at each nominal rate;
- pool identification with 16 and 64 keys: the generating key is the one named, and no other key
  passes Holm's threshold;
- radioactivity: a 5-gram student trained on a campaign's watermarked take, sampled without any
  watermark, tested with the campaign's key against the tokens sampled; a student trained on
  unwatermarked text is the control (its p-values must look uniform);
- where the mark is absent: greedy decoding (the engine does not mark it), token substitution
  (a crude paraphrase), and text re-tokenised by another tokenizer.

An n-gram teacher has less entropy per token than a large model at temperature 1 on open-ended
prompts, and more than one on factual ones; the report gives the teacher's mean entropy so the
figures can be read against it.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime
import math
import sysconfig
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from extractguard.watermark.attribution import holm
from extractguard.watermark.detectors import NumpyDetector
from extractguard.watermark.gumbel import GumbelDetector
from extractguard.watermark.ngram import NGramModel, sample

LICENCES = Path("/usr/share/common-licenses")
TOKEN_BUDGETS = (25, 50, 100, 200, 400)
NOMINAL_FPR = (0.01, 0.001)
CONTEXT_WIDTH = 4  # vLLM's default
COOL_TEMPERATURES = (0.7, 0.4)  # lower-entropy settings: the mark needs more tokens
MAX_HUMAN_TEXTS = 512
STUDENT_ORDERS = (3, 5)
POOL_TEXTS = 128  # texts tested against every key of their pool (64 detections each per budget)


@dataclass(frozen=True, slots=True)
class Scale:
    positives: int  # watermarked texts of max(TOKEN_BUDGETS) tokens, keys cycling over 64
    model_negatives: int  # unwatermarked texts of the same model
    null_keys: int  # keys each negative is tested against (more null tests per text)
    take_texts: int  # the campaign's watermarked take, texts of 200 tokens
    student_texts: int  # texts of 200 tokens sampled from each student
    vocabulary: int


SCALES = {
    "default": Scale(
        positives=256, model_negatives=256, null_keys=8, take_texts=512, student_texts=64, vocabulary=1024
    ),
    "small": Scale(positives=64, model_negatives=64, null_keys=4, take_texts=96, student_texts=24, vocabulary=512),
}


def human_documents() -> list[str]:
    """Paragraphs of human prose: stdlib docstrings and the system's licence texts."""
    documents: list[str] = []
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.rglob("*.py")):
        if "test" in path.parts or "idlelib" in path.parts:
            continue  # test docstrings repeat one another
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                text = ast.get_docstring(node)
                if text and len(text.split()) >= 20:
                    documents.append(" ".join(text.split()))
    if LICENCES.is_dir():
        for path in sorted(LICENCES.iterdir()):
            if path.is_file():
                paragraphs = path.read_text(encoding="utf-8", errors="replace").split("\n\n")
                documents += [" ".join(p.split()) for p in paragraphs if len(p.split()) >= 20]
    return documents


def train_tokenizer(documents: Sequence[str], vocabulary: int, path: Path) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocabulary, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(documents, trainer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return tokenizer


def keys_of(count: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return [int(k) for k in rng.integers(0, 2**63, count, dtype=np.int64)]


def p_value(key: int, tokens: Sequence[int]) -> float:
    return GumbelDetector(key, CONTEXT_WIDTH).detect(tokens).p_value


def _rate(values: Sequence[bool]) -> float:
    return float(np.mean(values)) if values else float("nan")


NullPValues = dict[int, dict[str, list[float]]]  # tokens -> null set -> p-values


def null_p_values(nulls: dict[str, list[list[int]]], null_keys: list[int]) -> NullPValues:
    """Every null text under every key that generated nothing, at each token budget (once, for
    every temperature's table)."""
    return {
        budget: {name: [p_value(k, t[:budget]) for t in texts for k in null_keys] for name, texts in nulls.items()}
        for budget in TOKEN_BUDGETS
    }


def tpr_table(
    positives: list[list[int]], positive_keys: list[int], nulls: NullPValues, temperature: float
) -> list[dict[str, Any]]:
    rows = []
    for budget in TOKEN_BUDGETS:
        marked = [p_value(k, t[:budget]) for t, k in zip(positives, positive_keys, strict=True)]
        null_p = nulls[budget]
        row: dict[str, Any] = {"temperature": temperature, "tokens": budget, "positives": len(marked)}
        for alpha in NOMINAL_FPR:
            row[f"tpr_at_{alpha:g}"] = _rate([p <= alpha for p in marked])
            for name, values in null_p.items():
                row[f"fpr_{name}_at_{alpha:g}"] = _rate([p <= alpha for p in values])
                row[f"null_tests_{name}"] = len(values)
        all_null = sorted(p for values in null_p.values() for p in values)
        threshold = all_null[max(0, int(0.01 * len(all_null)) - 1)]  # the realised 1% point of the nulls
        row["tpr_at_realised_1pct"] = _rate([p <= threshold for p in marked])
        rows.append(row)
    return rows


def pool_identification(positives: list[list[int]], key_index: list[int], keys: list[int]) -> list[dict[str, Any]]:
    rows = []
    for pools in [size for size in (16, 64) if size <= len(keys)]:
        for budget in (100, 200, 400):
            right, wrong_named, found = 0, 0, 0
            for tokens, index in zip(positives, key_index, strict=True):
                block = (index // pools) * pools
                candidates = list(range(block, block + pools)) if block + pools <= len(keys) else list(range(pools))
                if index not in candidates:
                    candidates[0] = index
                ps = [p_value(keys[c], tokens[:budget]) for c in candidates]
                adjusted = holm(ps)
                named = [c for c, a in zip(candidates, adjusted, strict=True) if a <= 0.01]
                found += index in named
                right += named == [index]
                wrong_named += any(c != index for c in named)
            rows.append(
                {
                    "pools": pools,
                    "tokens": budget,
                    "texts": len(positives),
                    "identified": right / len(positives),
                    "true_key_significant": found / len(positives),
                    "other_key_named": wrong_named / len(positives),
                }
            )
    return rows


def radioactivity(teacher: NGramModel, scale: Scale, canary_key: int, rng: np.random.Generator) -> dict[str, Any]:
    """Students of order 3 and 5 trained on the campaign's watermarked take and, as the control, on
    as much unwatermarked text of the same teacher; each sampled without any watermark."""
    take = sample(teacher, sequences=scale.take_texts, length=200, rng=rng, key=canary_key)
    plain = sample(teacher, sequences=scale.take_texts, length=200, rng=rng)
    out: dict[str, Any] = {"take_tokens": sum(map(len, take)), "students": []}
    canary = NumpyDetector(GumbelDetector(canary_key, CONTEXT_WIDTH))
    others = [NumpyDetector(GumbelDetector(k, CONTEXT_WIDTH)) for k in keys_of(20, 99)]
    total = scale.student_texts * 200
    for order in STUDENT_ORDERS:
        students = {
            "watermarked_take": NGramModel.train(take, vocabulary=teacher.vocabulary, order=order),
            "unwatermarked_text": NGramModel.train(plain, vocabulary=teacher.vocabulary, order=order),
        }
        samples = {name: sample(m, sequences=scale.student_texts, length=200, rng=rng) for name, m in students.items()}
        budgets = []
        for budget in sorted({1000, 2000, 5000, total} & set(range(total + 1))):
            texts_needed = math.ceil(budget / 200)
            row: dict[str, Any] = {"tokens_sampled": texts_needed * 200}
            for name, texts in samples.items():
                found = canary.detect_corpus(texts[:texts_needed])
                row[f"{name}_p_value"] = found.p_value
                row[f"{name}_tokens_scored"] = found.num_scored_tokens
                if budget == total:
                    row[f"{name}_other_keys_p_values"] = [
                        round(d.detect_corpus(texts[:texts_needed]).p_value, 4) for d in others
                    ]
            budgets.append(row)
        out["students"].append({"order": order, "budgets": budgets})
    return out


def substitute(tokens: list[int], fraction: float, vocabulary: int, rng: np.random.Generator) -> list[int]:
    edited = list(tokens)
    for i in np.flatnonzero(rng.random(len(tokens)) < fraction):
        edited[i] = int(rng.integers(0, vocabulary))
    return edited


def absent_cases(
    teacher: NGramModel,
    positives: list[list[int]],
    keys: list[int],
    tokenizer: Any,
    other_tokenizer: Any,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    cases = []
    greedy_key = keys[0]
    greedy = sample(teacher, sequences=32, length=200, rng=rng, greedy=True)
    cases.append(
        {
            "case": "greedy decoding (the engine leaves it unmarked)",
            "texts": len(greedy),
            "tokens": 200,
            "detected_at_0.01": _rate([p_value(greedy_key, t) <= 0.01 for t in greedy]),
        }
    )
    for fraction in (0.1, 0.3, 0.5):
        edited = [substitute(t[:200], fraction, teacher.vocabulary, rng) for t in positives]
        cases.append(
            {
                "case": f"{fraction:.0%} of tokens substituted (a crude paraphrase)",
                "texts": len(edited),
                "tokens": 200,
                "detected_at_0.01": _rate([p_value(k, t) <= 0.01 for t, k in zip(edited, keys, strict=True)]),
            }
        )
    retokenised = [other_tokenizer.encode(tokenizer.decode(t[:200])).ids for t in positives]
    cases.append(
        {
            "case": "decoded and re-tokenised by another tokenizer",
            "texts": len(retokenised),
            "tokens": "~200",
            "detected_at_0.01": _rate([p_value(k, t) <= 0.01 for t, k in zip(retokenised, keys, strict=True)]),
        }
    )
    return cases


def mean_entropy_bits(model: NGramModel, texts: list[list[int]], temperature: float = 1.0) -> float:
    contexts = [t[:i] for t in texts[:16] for i in range(0, 200, 10)]
    scaled = model.log_probs(contexts).astype(np.float64) / temperature
    log_p = scaled - np.logaddexp.reduce(scaled, axis=1, keepdims=True)
    return float(np.mean(-(np.exp(log_p) * log_p).sum(axis=1)) / math.log(2))


def measure(scale: Scale, out_dir: Path, seed: int = 18) -> dict[str, Any]:
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    documents = human_documents()
    held_out = [d for i, d in enumerate(documents) if i % 5 == 0]
    training = [d for i, d in enumerate(documents) if i % 5 != 0]
    tokenizer = train_tokenizer(training, scale.vocabulary, out_dir / "tokenizer.json")
    other_tokenizer = train_tokenizer(training[::2], scale.vocabulary * 2, out_dir / "other_tokenizer.json")
    train_ids = [e.ids for e in tokenizer.encode_batch(training)]
    teacher = NGramModel.train(train_ids, vocabulary=tokenizer.get_vocab_size(), order=3)
    keys = keys_of(64, seed)
    longest = max(TOKEN_BUDGETS)
    key_index = [i % len(keys) for i in range(scale.positives)]
    positive_keys = [keys[i] for i in key_index]
    positives = sample(
        teacher,
        sequences=scale.positives,
        length=longest,
        rng=rng,
        key=np.array(positive_keys, dtype=np.uint64),
        context_width=CONTEXT_WIDTH,
    )
    cool = {
        temperature: sample(teacher, sequences=scale.positives, length=longest, rng=rng,
                            key=np.array(positive_keys, dtype=np.uint64), context_width=CONTEXT_WIDTH,
                            temperature=temperature)
        for temperature in COOL_TEMPERATURES
    }  # fmt: skip
    model_negatives = sample(teacher, sequences=scale.model_negatives, length=longest, rng=rng)
    stream = [t for d in tokenizer.encode_batch(held_out) for t in d.ids]
    human = [stream[i : i + longest] for i in range(0, len(stream) - longest, longest)][:MAX_HUMAN_TEXTS]
    null_keys = keys_of(scale.null_keys, seed + 1)  # keys that generated nothing here
    nulls = null_p_values({"unwatermarked": model_negatives, "human": human}, null_keys)
    report: dict[str, Any] = {
        "written_at": datetime.datetime.now(tz=datetime.UTC).isoformat(timespec="seconds"),
        "scale": dataclasses.asdict(scale),
        "setup": {
            "detector": "vLLM 0.33.0 GumbelWatermarkDetector (numpy port, bit-identical), philox, context width 4, "
            "contexts deduplicated",
            "teacher": "trigram, Witten-Bell, over a BPE tokenizer trained on the same text",
            "vocabulary": tokenizer.get_vocab_size(),
            "corpus_documents": len(documents),
            "training_tokens": sum(map(len, train_ids)),
            "human_texts": len(human),
            "teacher_mean_entropy_bits": round(mean_entropy_bits(teacher, positives), 2),
            "teacher_mean_entropy_bits_by_temperature": {
                str(t): round(mean_entropy_bits(teacher, texts, t), 2) for t, texts in cool.items()
            },
        },
        "tpr_vs_tokens": [
            row
            for temperature, texts in [(1.0, positives), *cool.items()]
            for row in tpr_table(texts, positive_keys, nulls, temperature)
        ],
        "pool_identification": pool_identification(positives[:POOL_TEXTS], key_index[:POOL_TEXTS], keys),
        "radioactivity": radioactivity(teacher, scale, keys_of(1, seed + 2)[0], rng),
        "absent_mark": absent_cases(teacher, positives, positive_keys, tokenizer, other_tokenizer, rng),
    }
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def _f(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if value < 0.001 and value != 0 else f"{value:.3f}"
    return str(value)


def markdown(report: dict[str, Any]) -> str:
    s = report["setup"]
    lines = [
        "# Watermark audit: measured on CPU",
        "",
        f"Detector: {s['detector']}. Teacher: {s['teacher']} (vocabulary {s['vocabulary']}, "
        f"{s['training_tokens']:,} training tokens from {s['corpus_documents']:,} human documents, mean next-token "
        f"entropy {s['teacher_mean_entropy_bits']} bits at temperature 1, "
        + ", ".join(f"{bits} at {t}" for t, bits in s["teacher_mean_entropy_bits_by_temperature"].items())
        + "). "
        f"Written {report['written_at']} in {report['seconds']} s.",
        "",
        "## True-positive rate against tokens scored",
        "",
        "| temperature | tokens | TPR at 1% | TPR at 0.1% | FPR unwatermarked at 1% / 0.1% | FPR human at 1% / 0.1% "
        "| TPR at the realised 1% point |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["tpr_vs_tokens"]:
        lines.append(
            f"| {r['temperature']} | {r['tokens']} | {_f(r['tpr_at_0.01'])} | {_f(r['tpr_at_0.001'])} | "
            f"{_f(r['fpr_unwatermarked_at_0.01'])} / {_f(r['fpr_unwatermarked_at_0.001'])} | "
            f"{_f(r['fpr_human_at_0.01'])} / {_f(r['fpr_human_at_0.001'])} | {_f(r['tpr_at_realised_1pct'])} |"
        )
    first = report["tpr_vs_tokens"][0]
    lines += [
        "",
        f"{first['positives']} watermarked texts; null tests: {first['null_tests_unwatermarked']} unwatermarked "
        f"and {first['null_tests_human']} human (each text against several keys that generated nothing).",
        "",
        "## Pool identification (Holm at 0.01 over the pool's keys)",
        "",
        "| keys | tokens | identified (only the right key) | right key significant | another key named |",
        "|---|---|---|---|---|",
    ]
    for r in report["pool_identification"]:
        lines.append(
            f"| {r['pools']} | {r['tokens']} | {_f(r['identified'])} | {_f(r['true_key_significant'])} | "
            f"{_f(r['other_key_named'])} |"
        )
    radio = report["radioactivity"]
    lines += [
        "",
        f"## Radioactivity: n-gram students of the take ({radio['take_tokens']:,} watermarked tokens)",
        "",
        "| student order | tokens sampled from the student | p (student of the watermarked take) "
        "| p (student of unwatermarked text) |",
        "|---|---|---|---|",
    ]
    for student in radio["students"]:
        for r in student["budgets"]:
            lines.append(
                f"| {student['order']} | {r['tokens_sampled']} | {_f(r['watermarked_take_p_value'])} | "
                f"{_f(r['unwatermarked_text_p_value'])} |"
            )
    for student in radio["students"]:
        last = student["budgets"][-1]
        lines.append(
            f"\nControl, order {student['order']}: p-values of the largest sample under 20 keys that served "
            f"nothing: watermarked-take student {last.get('watermarked_take_other_keys_p_values')}, "
            f"unwatermarked-text student {last.get('unwatermarked_text_other_keys_p_values')}."
        )
    lines += [
        "",
        "## Where the mark is absent (reported, not hidden)",
        "",
        "| case | texts | tokens | detected at 1% |",
        "|---|---|---|---|",
    ]
    for c in report["absent_mark"]:
        lines.append(f"| {c['case']} | {c['texts']} | {c['tokens']} | {_f(c['detected_at_0.01'])} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="default")
    parser.add_argument("--out", type=Path, default=Path("reports/watermark"))
    args = parser.parse_args(argv)
    report = measure(SCALES[args.scale], args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "watermark.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    (args.out / "watermark.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))


if __name__ == "__main__":
    main()
