"""Real public text and real request traces, for scenarios that must not measure our own writing.

`scenarios/corpora/` holds prompt pools cut from public corpora (`infra/corpora/cut.py`; sources,
licences and cuts in its NOTICE.md) — `chat`, `follow_ups`, `instructions`, `reasoning`, `code`,
`math`, `refusal` — and two hours of real LLM-inference arrivals with their token counts (Azure,
2023). A scenario names what its actors draw from as a mix of pools, each optionally narrowed to
some of its sources (`"reasoning/flan_cot"`, `"math/gsm8k+svamp"`):

>>> import random
>>> mix = TextMix.of({"math/svamp": 1.0})
>>> prompt = mix.draw(random.Random(3))
>>> isinstance(prompt, str) and len(prompt) > 20
True
>>> try:
...     TextMix.of({"poetry": 1.0})
... except ValueError as error:
...     print(str(error).split(":")[0])
unknown prompt pool 'poetry'

A campaign's controller walks its datasets in order, item after item, and hands each to the next
account (`Sweep`): every item once before any repeats, as a harvest does, so two actors that
harvest the same public dataset send the same texts.

>>> sweep = Sweep(TextMix.of({"math/svamp": 1.0}), random.Random(1))
>>> len({sweep.next()[1].text for _ in range(500)})
500

Arrivals and sizes come from the traces: `ArrivalShape` is the minute-by-minute rate of the real
hour over its mean (tiled over the scenario), `RequestSizes` the (context, generated) token pairs.

>>> shape = ArrivalShape.traced("azure_conv")
>>> 0.2 < min(shape.factors) < 1 < max(shape.factors) < 2
True
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import random
from dataclasses import dataclass
from pathlib import Path

import orjson

from extractguard.paths import project_root

#: The pools every scenario may draw from.
POOLS = ("chat", "follow_ups", "instructions", "reasoning", "code", "math", "refusal")
#: The request traces: organic sizes and the arrival shape come from these.
TRACES = ("azure_conv", "azure_code")


def corpora_home() -> Path:
    return project_root() / "scenarios" / "corpora"


@dataclass(frozen=True, slots=True)
class Prompt:
    text: str
    source: str
    area: str | None  # a task, harm area or hazard, where the source has one


@functools.cache
def pool(name: str) -> tuple[Prompt, ...]:
    """Every prompt of a pool, in the file's order (read once per process)."""
    if name not in POOLS:
        raise ValueError(f"unknown prompt pool {name!r}: the pools are {', '.join(POOLS)}")
    path = corpora_home() / f"{name}.jsonl.gz"
    if not path.is_file():
        raise ValueError(f"{path}: missing; it ships with the repository (infra/corpora/cut.py makes it)")
    prompts = []
    with gzip.open(path, "rb") as lines:
        for number, line in enumerate(lines, 1):
            try:
                record = orjson.loads(line)
                prompts.append(Prompt(record["text"], record["source"], record.get("area")))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                raise ValueError(f"{path}:{number}: expected a JSON object with 'text' and 'source'") from None
    return tuple(prompts)


def select(spec: str) -> tuple[Prompt, ...]:
    """The prompts of `pool` or `pool/source+source`."""
    name, _, sources = spec.partition("/")
    prompts = pool(name)
    if not sources:
        return prompts
    wanted = set(sources.split("+"))
    chosen = tuple(p for p in prompts if p.source in wanted)
    missing = wanted - {p.source for p in chosen}
    if missing:
        known = sorted({p.source for p in prompts})
        raise ValueError(f"pool {name!r} has no source {sorted(missing)}: it holds {', '.join(known)}")
    return chosen


@dataclass(frozen=True, slots=True)
class TextMix:
    """Weighted selections of pools: where an actor's prompts come from."""

    parts: tuple[tuple[str, tuple[Prompt, ...]], ...]
    weights: tuple[float, ...]

    @classmethod
    def of(cls, weights: dict[str, float]) -> TextMix:
        if not weights or sum(weights.values()) <= 0:
            raise ValueError("a text mix needs at least one pool with a positive weight")
        return _mix(tuple(sorted(weights.items())))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.parts]

    def part(self, rng: random.Random) -> tuple[str, tuple[Prompt, ...]]:
        return rng.choices(self.parts, weights=self.weights)[0]

    def draw(self, rng: random.Random) -> str:
        return rng.choice(self.part(rng)[1]).text

    def only(self, name: str) -> TextMix:
        """The mix narrowed to one of its parts (an org's leaning)."""
        return TextMix(tuple(p for p in self.parts if p[0] == name), (1.0,))


@functools.cache
def _mix(items: tuple[tuple[str, float], ...]) -> TextMix:
    parts = tuple((spec, select(spec)) for spec, weight in items if weight > 0)
    return TextMix(parts, tuple(weight for _, weight in items if weight > 0))


class Sweep:
    """A controller's walk through its datasets: each part's items in a shuffled order, one after another.

    Items come from the parts in proportion to their weights; within a part every item is sent once
    before any is sent again. One sweep serves all of a campaign's accounts.
    """

    def __init__(self, mix: TextMix, rng: random.Random) -> None:
        self.mix = mix
        self.rng = rng
        self.orders = [rng.sample(range(len(prompts)), len(prompts)) for _, prompts in mix.parts]
        self.positions = [0] * len(mix.parts)
        self.sent = 0

    def next(self) -> tuple[str, Prompt]:
        """The next item, with the part of the mix (`pool` or `pool/sources`) it came from."""
        index = self.rng.choices(range(len(self.mix.parts)), weights=self.mix.weights)[0]
        prompts = self.mix.parts[index][1]
        order = self.orders[index]
        item = prompts[order[self.positions[index] % len(order)]]
        self.positions[index] += 1
        self.sent += 1
        return self.mix.parts[index][0], item


def _trace_rows(name: str) -> list[tuple[str, int, int]]:
    if name not in TRACES:
        raise ValueError(f"unknown request trace {name!r}: the traces are {', '.join(TRACES)}")
    path = corpora_home() / f"{name}.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8", newline="") as text:
        rows = csv.DictReader(io.StringIO(text.read()))
        return [(r["TIMESTAMP"], int(r["ContextTokens"]), int(r["GeneratedTokens"])) for r in rows]


@dataclass(frozen=True, slots=True)
class RequestSizes:
    """(context tokens, generated tokens) of real requests, drawn as pairs."""

    pairs: tuple[tuple[int, int], ...]

    @classmethod
    def traced(cls, name: str) -> RequestSizes:
        return _sizes(name)

    def draw(self, rng: random.Random) -> tuple[int, int]:
        return rng.choice(self.pairs)


@dataclass(frozen=True, slots=True)
class ArrivalShape:
    """The real hour's arrivals per minute over their mean, repeated: multiplies an organic rate."""

    factors: tuple[float, ...]

    @classmethod
    def traced(cls, name: str) -> ArrivalShape:
        return _shape(name)

    def factor(self, ts_ms: int) -> float:
        return self.factors[(ts_ms // 60_000) % len(self.factors)]

    @property
    def peak(self) -> float:
        return max(self.factors)


@functools.cache
def _sizes(name: str) -> RequestSizes:
    # A request has at least one token each way; the trace holds a few zero-generation rows.
    return RequestSizes(tuple((max(c, 1), max(g, 1)) for _, c, g in _trace_rows(name)))


@functools.cache
def _shape(name: str) -> ArrivalShape:
    per_minute: dict[str, int] = {}
    for stamp, _, _ in _trace_rows(name):
        per_minute[stamp[:16]] = per_minute.get(stamp[:16], 0) + 1
    # The first and last minutes are partial: the hour's edges, not its shape.
    counts = [per_minute[minute] for minute in sorted(per_minute)][1:-1]
    mean = sum(counts) / len(counts)
    return ArrivalShape(tuple(count / mean for count in counts))


#: What evaluation harnesses send: public benchmarks' items, verbatim, in order.
BENCHMARK_MIX = {"reasoning/bbh": 1.0, "math/gsm8k": 1.0, "code/humaneval+mbpp": 0.5}


@dataclass(slots=True)
class RealText:
    """An organic account's real text: its org's leaning pool most of the time, the world's mix otherwise."""

    world: TextMix
    lean: TextMix | None
    follow_ups: TextMix
    probes: TextMix
    benchmarks: Sweep
    lean_share: float = 0.75

    def opening(self, rng: random.Random) -> str:
        mix = self.lean if self.lean is not None and rng.random() < self.lean_share else self.world
        return mix.draw(rng)

    def follow_up(self, rng: random.Random) -> str:
        return self.follow_ups.draw(rng)

    def probe(self, rng: random.Random) -> str:
        return self.probes.draw(rng)

    def benchmark_item(self) -> str:
        return self.benchmarks.next()[1].text
