"""Which evidence carried each detection: every scenario replayed again with one family withheld.

A detection that rests on one family of evidence is one the attacker switches off by changing that
one thing. Each family is withheld from the events themselves, as a gateway that cannot see it would
send them, so every detector and the linker lose it together:

- `account_age`     no account creation time (most gateways pass none)
- `client`          no user agent, SDK or TLS fingerprint
- `infrastructure`  each account its own made-up address prefix and ASN, no country: the network
                    ties nothing together
- `content`         each prompt's sketch replaced by one no other prompt shares (MinHash, template)
                    and no chain-of-thought flag: the text ties nothing together
- `timing`          every request moved by up to 15 minutes either way, at random: no cadence, no
                    pacing, no synchronised starts finer than that

>>> event = {"event_id": "e1", "account_id": "a", "event_time_ms": 0, "user_agent": "x", "tls_ja4": "j",
...          "sdk_name": "s", "client_ip_prefix": "185.1.2.0/24", "client_asn": 9009, "client_country": "DE",
...          "account_created_ms": 5, "prompt_sketch": {"minhash": [1] * 16, "template_hash": "0" * 16,
...          "length_chars": 40, "cot_elicitation": True}}
>>> withheld = WITHHELD["client"](event)
>>> (withheld["user_agent"], withheld["tls_ja4"], event["user_agent"])
(None, None, 'x')
>>> sketch = WITHHELD["content"](event)["prompt_sketch"]
>>> sketch["minhash"] != [1] * 16, sketch["cot_elicitation"], sketch["length_chars"]
(True, False, 40)
>>> WITHHELD["infrastructure"](event)["client_ip_prefix"] == WITHHELD["infrastructure"](event)["client_ip_prefix"]
True
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import xxhash

from extractguard.evaluation.scoring import ScenarioScore
from extractguard.evaluation.sources import LabelledEvent, Replay

Event = dict[str, Any]
#: How far `timing` moves each request, either way.
TIMING_JITTER_MS = 15 * 60_000


def _hash(*parts: str) -> int:
    return xxhash.xxh64_intdigest("\x1f".join(parts).encode())


def _no_account_age(event: Event) -> Event:
    return {**event, "account_created_ms": None}


def _no_client(event: Event) -> Event:
    return {**event, "user_agent": None, "tls_ja4": None, "sdk_name": None}


def _no_infrastructure(event: Event) -> Event:
    # Per account, stable: an account's own requests still come from one place, as a home user's do.
    h = _hash("infrastructure", event["account_id"])
    prefix = f"10.{h >> 8 & 255}.{h >> 16 & 255}.0/24"
    return {**event, "client_ip_prefix": prefix, "client_asn": 4_200_000_000 + h % 90_000_000, "client_country": None}


def _no_content(event: Event) -> Event:
    sketch = dict(event["prompt_sketch"])
    rng = random.Random(_hash("content", str(event["event_id"])))
    sketch["minhash"] = [rng.getrandbits(32) for _ in sketch["minhash"]]
    sketch["template_hash"] = f"{rng.getrandbits(64):016x}"
    sketch["cot_elicitation"] = False
    return {**event, "prompt_sketch": sketch}


#: Each family of evidence and how it is withheld from one event (timing is a re-timing of the stream).
WITHHELD: dict[str, Callable[[Event], Event]] = {
    "account_age": _no_account_age,
    "client": _no_client,
    "infrastructure": _no_infrastructure,
    "content": _no_content,
}
FAMILIES: tuple[str, ...] = (*WITHHELD, "timing")


def retimed(rows: Iterator[LabelledEvent], jitter_ms: int = TIMING_JITTER_MS) -> Iterator[LabelledEvent]:
    """The stream with every event moved by up to `jitter_ms` either way, still in event-time order.

    An event at t lands in [t - jitter, t + jitter]: once the input has passed t, nothing later can
    land before t - jitter, so a heap releases in order holding only that much of the stream.

    >>> rows = [LabelledEvent("a", "organic", "regular", None, {"event_id": str(i), "event_time_ms": i * 1000})
    ...         for i in range(200)]
    >>> out = [r.event["event_time_ms"] for r in retimed(iter(rows), jitter_ms=5_000)]
    >>> out == sorted(out), len(out), out != [r.event["event_time_ms"] for r in rows]
    (True, 200, True)
    """
    heap: list[tuple[int, int, LabelledEvent]] = []
    for sequence, row in enumerate(rows):
        ts = int(row.event["event_time_ms"])
        shift = _hash("timing", str(row.event["event_id"])) % (2 * jitter_ms + 1) - jitter_ms
        moved = row._replace(event={**row.event, "event_time_ms": ts + shift})
        heapq.heappush(heap, (ts + shift, sequence, moved))
        while heap and heap[0][0] <= ts - jitter_ms:
            yield heapq.heappop(heap)[2]
    while heap:
        yield heapq.heappop(heap)[2]


@dataclass
class Withheld:
    """A replay with one family of evidence withheld from every event (a `Replay` itself)."""

    replay: Replay
    family: str
    name: str = ""
    description: str = ""
    duration_s: float = 0.0
    start_ms: int = 0
    seed: int | None = None
    launches: list[dict[str, Any]] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family of evidence {self.family!r}: the families are {', '.join(FAMILIES)}")
        r = self.replay
        self.name, self.duration_s, self.start_ms, self.seed = r.name, r.duration_s, r.start_ms, r.seed
        self.description = f"{r.description} [{self.family} withheld]"
        self.launches, self.kinds = r.launches, r.kinds

    def events(self) -> Iterator[LabelledEvent]:
        if self.family == "timing":
            yield from retimed(self.replay.events())
            return
        withhold = WITHHELD[self.family]
        for row in self.replay.events():
            yield row._replace(event=withhold(row.event))

    def label_records(self) -> list[dict[str, Any]]:
        return self.replay.label_records()


def ablation_rows(result_score: ScenarioScore, family: str | None) -> list[dict[str, Any]]:
    """One row per campaign of a scored replay: what was found with `family` withheld (None: nothing)."""
    return [
        {
            "scenario": result_score.name,
            "campaign": c.name,
            "withheld": family,
            "detected": c.detected,
            "seconds_to_detect": c.seconds_to_detect,
            "member_recall": c.member_recall,
            "organic_accounts_flagged": result_score.organic_accounts_flagged,
        }
        for c in result_score.campaigns
    ]


def ablation_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """The ablation view: each campaign's time to detect and recall, with each family withheld in turn.

    >>> rows = [{"scenario": "s", "campaign": "c", "withheld": None, "detected": True, "seconds_to_detect": 60.0,
    ...          "member_recall": 0.9, "organic_accounts_flagged": 0},
    ...         {"scenario": "s", "campaign": "c", "withheld": "client", "detected": False,
    ...          "seconds_to_detect": None, "member_recall": 0.0, "organic_accounts_flagged": 2}]
    >>> ablation_markdown(rows)[-2]
    '| s | c | 60 s, 90.0% | — | **missed** (2 organic) | — | — | — |'
    """
    if not rows:
        return []
    families: list[str | None] = [None, *FAMILIES]
    cells: dict[tuple[str, str], dict[str | None, str]] = {}
    for row in rows:
        cell = f"{row['seconds_to_detect']:,.0f} s, {row['member_recall']:.1%}" if row["detected"] else "**missed**"
        if row["organic_accounts_flagged"]:
            cell += f" ({row['organic_accounts_flagged']} organic)"
        cells.setdefault((row["scenario"], row["campaign"]), {})[row["withheld"]] = cell
    lines = [
        "## Ablation: one family of evidence withheld",
        "",
        "Each scenario replayed in process again with one family withheld from every event (see "
        "`evaluation.ablation`): time to detect and member recall, and organic accounts flagged when any. A "
        "campaign found only with every family is one an attacker switches off by changing one thing.",
        "",
        "| scenario | campaign | all evidence | "
        + " | ".join(f"without {f.replace('_', ' ')}" for f in FAMILIES)
        + " |",
        "|---|---|" + "---|" * len(families),
    ]
    for (scenario, campaign), by_family in cells.items():
        lines.append(f"| {scenario} | {campaign} | " + " | ".join(by_family.get(f, "—") for f in families) + " |")
    return [*lines, ""]
