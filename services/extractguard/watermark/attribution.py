"""Attribution: whose watermark does suspect text carry, and whose responses does it copy?

The batch audit behind `extractguard attribute` (and the module a scheduled job calls):

1. read the suspect texts (JSONL: samples of a suspect model, a leaked dataset), tokenise each
   with the operator's own tokenizer (`tokenizer.json`, the served model's: the watermark lives in
   token ids, so only the serving tokenizer sees it);
2. test the pooled corpus, and each text, against every candidate key of the registry (those
   valid in the audit window whose secret the key ring holds) with the engine's detector;
3. correct for the keys tested (Holm: the family-wise error stays at `alpha` however many keys);
4. sketch each text as the gateway sketches completions and find the landed responses it copies
   (LSH band lookup, then the MinHash similarity);
5. join what was found to who was served: key id -> pool -> the accounts that key served in the
   events, -> the campaigns those accounts belong to, with each campaign's take under that key.

A watermark is evidence that adds to the behavioural linkage, never a gate: greedy decoding and
beam search are unmarked, a paraphrasing or neutralising distiller scrubs marks, so an absent
mark clears nobody. The case file says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from extractguard.investigation.source import Row, Source, literal
from extractguard.watermark.detectors import UnsupportedWatermark, detector_for
from extractguard.watermark.keyring import KeyRing
from extractguard_gateway.sketch import completion_bands, minhash_similarity, sketch_completion
from extractguard_gateway.watermark_pools import KeyEntry, KeyRegistry

MAX_SUSPECTS = 100_000
MAX_TEXT_CHARS = 1_000_000
SKETCH_MATCH_SIMILARITY = 0.5  # estimated Jaccard of word 3-shingles: a copy, lightly edited
MAX_MATCHES_PER_TEXT = 20


class SuspectError(ValueError):
    """A suspect file line that cannot be read (says which line and why)."""


class TokenCounter(Protocol):
    def encode(self, text: str) -> list[int]:
        """The serving tokenizer's ids for `text`, without special tokens."""


@dataclass(frozen=True, slots=True)
class Suspect:
    suspect_id: str
    token_ids: list[int]
    text: str | None  # kept in memory for the sketch only; never written to the case file


class HuggingFaceTokenizer:
    """The operator's `tokenizer.json`, through `tokenizers` (the `watermark` extra)."""

    def __init__(self, path: Path) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as error:  # pragma: no cover - the extra is missing
            raise RuntimeError(
                "attribution tokenises with `tokenizers`: pip install 'extractguard[watermark]'"
            ) from error
        self.tokenizer = Tokenizer.from_file(str(path))

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)


def read_suspects(path: Path, tokenizer: TokenCounter | None) -> list[Suspect]:
    """One JSON object a line: `{"id": ..., "text": ...}` or `{"id": ..., "token_ids": [...]}`."""
    suspects: list[Suspect] = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            if len(suspects) >= MAX_SUSPECTS:
                raise SuspectError(f"{path}: more than {MAX_SUSPECTS} suspect texts; split the file")
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise SuspectError(f"{path}:{number}: not JSON") from None
            if not isinstance(record, dict):
                raise SuspectError(f"{path}:{number}: a JSON object with id and text (or token_ids)")
            suspect_id = str(record.get("id", f"line-{number}"))[:128]
            text, ids = record.get("text"), record.get("token_ids")
            if isinstance(ids, list) and all(isinstance(t, int) and t >= 0 for t in ids):
                suspects.append(Suspect(suspect_id, ids, text if isinstance(text, str) else None))
            elif isinstance(text, str):
                if len(text) > MAX_TEXT_CHARS:
                    raise SuspectError(f"{path}:{number}: text longer than {MAX_TEXT_CHARS} characters")
                if tokenizer is None:
                    raise SuspectError(f"{path}:{number}: text needs --tokenizer (the served model's tokenizer.json)")
                suspects.append(Suspect(suspect_id, tokenizer.encode(text), text))
            else:
                raise SuspectError(f"{path}:{number}: needs text (a string) or token_ids (non-negative integers)")
    if not suspects:
        raise SuspectError(f"{path}: no suspect texts")
    return suspects


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given): reject where adjusted <= alpha.

    >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03, 0.5])]
    [0.04, 0.09, 0.09, 0.5]
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


@dataclass(slots=True)
class KeyTest:
    key_id: str
    pool: str
    pool_kind: str
    engine: str
    algorithm: str
    context_width: int
    valid_from_ms: int
    valid_until_ms: int | None
    tokens_scored: int = 0
    score: float = 0.0
    p_value: float = 1.0
    holm_p_value: float = 1.0
    significant: bool = False
    texts_marked: int = 0  # texts whose own p-value passes the corrected threshold
    untested: str | None = None  # why the key could not be tested


@dataclass(slots=True)
class Served:
    """Who a significant key served, from the landed events: the pool's take by account and campaign."""

    key_id: str
    accounts: int
    responses: int
    output_tokens: int
    first_ms: int | None
    last_ms: int | None
    campaigns: list[Row] = field(default_factory=list)  # campaign_id, members_total, members_served, responses, tokens


@dataclass(slots=True)
class SketchMatch:
    suspect_id: str
    event_id: str
    account_id: str
    key_id: str
    similarity: float
    campaign_id: str | None = None


@dataclass(slots=True)
class Attribution:
    suspects: int
    tokens: int
    alpha: float
    backend: str
    window_start_ms: int
    window_end_ms: int
    keys: list[KeyTest]
    served: list[Served]
    matches: list[SketchMatch]
    named_campaign: str | None
    assumptions: list[str]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


ASSUMPTIONS = [
    "Suspect text was tokenised with the served model's tokenizer; another tokenizer's ids carry no mark.",
    "Each key's p-value is exact under the null (text not generated under that key): Gumbel-max scores are "
    "Exp(1) per scored (context, token) pair, so their sum over n pairs is Gamma(n, 1); each pair is scored "
    "once across the corpus.",
    "Holm's correction holds the chance of naming any wrong key at alpha, over every key tested.",
    "An absent mark clears nobody: greedy decoding and beam search are not marked, a paraphrasing or "
    "neutralising distiller removes marks (Pan et al., ACL 2025), and a student trained on other text "
    "dilutes them (Gu et al., ICLR 2024).",
    "A key points at the accounts its pool served while the key was valid; a cohort key at 1/K of all "
    "accounts, a canary key at one campaign alone. It is evidence added to the behavioural linkage, not a verdict.",
    "Sketch matches compare word 3-shingle MinHash signatures (64 permutations): similarity is an estimate "
    "(standard error about 0.06 at 0.5).",
]


def candidate_keys(registry: KeyRegistry, ring: KeyRing, start_ms: int, end_ms: int) -> list[KeyEntry]:
    return [k for k in registry.keys_between(start_ms, end_ms)]


def score_keys(
    suspects: Sequence[Suspect],
    registry: KeyRegistry,
    ring: KeyRing,
    *,
    start_ms: int,
    end_ms: int,
    alpha: float = 0.01,
    backend: str = "numpy",
) -> list[KeyTest]:
    """Every candidate key against the pooled corpus, Holm-corrected; sorted by p-value."""
    texts = [s.token_ids for s in suspects]
    tests: list[KeyTest] = []
    per_text: dict[str, list[float]] = {}
    for entry in candidate_keys(registry, ring, start_ms, end_ms):
        pool = registry.pool(entry.pool)
        test = KeyTest(
            entry.key_id,
            pool.name,
            pool.kind,
            entry.engine,
            entry.algorithm,
            entry.context_width,
            entry.valid_from_ms,
            entry.valid_until_ms,
        )
        tests.append(test)
        if entry.key_id not in ring:
            test.untested = "the key ring does not hold this key"
            continue
        try:
            detector = detector_for(entry, ring.secret(entry.key_id), backend=backend, threshold=alpha)
        except UnsupportedWatermark as error:
            test.untested = str(error)
            continue
        pooled = detector.detect_corpus(texts)
        test.tokens_scored, test.score, test.p_value = pooled.num_scored_tokens, pooled.score, pooled.p_value
        per_text[entry.key_id] = [detector.detect(t).p_value for t in texts]
    tested = [t for t in tests if t.untested is None]
    for test, adjusted in zip(tested, holm([t.p_value for t in tested]), strict=True):
        test.holm_p_value = adjusted
        test.significant = adjusted <= alpha
        # Per text, the family is every (text, key) pair: Bonferroni over both.
        family = max(1, len(tested) * len(texts))
        test.texts_marked = sum(p * family <= alpha for p in per_text[test.key_id])
    return sorted(tests, key=lambda t: (t.untested is not None, t.p_value))


def served_by(source: Source, key_id: str, start_ms: int, end_ms: int) -> Served:
    window = f"event_time BETWEEN fromUnixTimestamp64Milli({start_ms}) AND fromUnixTimestamp64Milli({end_ms})"
    where = f"watermark_key_id = {literal(key_id)} AND watermark_applied AND {window}"
    total = (
        source.one(
            "SELECT uniqExact(account_id) AS accounts, count() AS responses, sum(output_tokens) AS output_tokens, "
            "toUnixTimestamp64Milli(min(event_time)) AS first_ms, toUnixTimestamp64Milli(max(event_time)) AS last_ms "
            f"FROM events WHERE {where}"
        )
        or {}
    )
    campaigns = source.rows(
        "SELECT c.campaign_id AS campaign_id, any(c.members_total) AS members_total, "
        "uniqExact(e.account_id) AS members_served, count() AS responses, sum(e.output_tokens) AS output_tokens "
        f"FROM (SELECT account_id, output_tokens FROM events WHERE {where}) AS e "
        "INNER JOIN (SELECT campaign_id, members_total, arrayJoin(members) AS account_id "
        "FROM campaigns FINAL WHERE status != 'merged') AS c ON e.account_id = c.account_id "
        "GROUP BY c.campaign_id ORDER BY responses DESC LIMIT 20"
    )
    responses = int(total.get("responses") or 0)
    return Served(
        key_id,
        int(total.get("accounts") or 0),
        responses,
        int(total.get("output_tokens") or 0),
        int(total["first_ms"]) if responses else None,
        int(total["last_ms"]) if responses else None,
        campaigns,
    )


def sketch_matches(source: Source, suspects: Sequence[Suspect], start_ms: int, end_ms: int) -> list[SketchMatch]:
    """Landed responses each suspect text copies (a shared LSH band, then similarity >= SKETCH_MATCH_SIMILARITY)."""
    window = f"event_time BETWEEN fromUnixTimestamp64Milli({start_ms}) AND fromUnixTimestamp64Milli({end_ms})"
    found: list[SketchMatch] = []
    for suspect in suspects:
        if suspect.text is None:
            continue
        sketch = sketch_completion(suspect.text)
        if sketch.length_words < 3:
            continue
        rows = source.rows(
            "SELECT event_id, account_id, watermark_key_id AS key_id, completion_minhash AS minhash FROM events "
            f"WHERE hasAny(completion_bands, {literal(completion_bands(sketch.minhash))}) AND {window} LIMIT 500"
        )
        scored = [
            (minhash_similarity(sketch.minhash, list(r["minhash"])), r)
            for r in rows
            if len(r["minhash"]) == len(sketch.minhash)
        ]
        scored = sorted((s for s in scored if s[0] >= SKETCH_MATCH_SIMILARITY), key=lambda s: -s[0])
        found += [
            SketchMatch(suspect.suspect_id, str(r["event_id"]), str(r["account_id"]), str(r["key_id"]), sim)
            for sim, r in scored[:MAX_MATCHES_PER_TEXT]
        ]
    if found:
        accounts = literal(sorted({m.account_id for m in found}))
        membership = {
            str(r["account_id"]): str(r["campaign_id"])
            for r in source.rows(
                "SELECT account_id, campaign_id FROM (SELECT campaign_id, arrayJoin(members) AS account_id "
                f"FROM campaigns FINAL WHERE status != 'merged') WHERE account_id IN {accounts}"
            )
        }
        for match in found:
            match.campaign_id = membership.get(match.account_id)
    return found


def name_campaign(served: Sequence[Served], matches: Sequence[SketchMatch]) -> str | None:
    """The campaign the evidence points at: the one holding most of the significant keys' take
    (a canary key's take is one campaign's alone), else the one whose responses are copied most."""
    weight: dict[str, float] = {}
    for s in served:
        for c in s.campaigns:
            if s.responses:
                weight[str(c["campaign_id"])] = (
                    weight.get(str(c["campaign_id"]), 0.0) + int(c["responses"]) / s.responses
                )
    if not weight:
        for m in matches:
            if m.campaign_id is not None:
                weight[m.campaign_id] = weight.get(m.campaign_id, 0.0) + 1
    return max(weight, key=lambda c: weight[c]) if weight else None


def attribute(
    suspects: Sequence[Suspect],
    registry: KeyRegistry,
    ring: KeyRing,
    source: Source | None,
    *,
    start_ms: int,
    end_ms: int,
    alpha: float = 0.01,
    backend: str = "numpy",
) -> Attribution:
    keys = score_keys(suspects, registry, ring, start_ms=start_ms, end_ms=end_ms, alpha=alpha, backend=backend)
    served = [served_by(source, k.key_id, start_ms, end_ms) for k in keys if k.significant] if source else []
    matches = sketch_matches(source, suspects, start_ms, end_ms) if source else []
    return Attribution(
        suspects=len(suspects),
        tokens=sum(len(s.token_ids) for s in suspects),
        alpha=alpha,
        backend=backend,
        window_start_ms=start_ms,
        window_end_ms=end_ms,
        keys=keys,
        served=served,
        matches=matches,
        named_campaign=name_campaign(served, matches),
        assumptions=ASSUMPTIONS,
    )


def minus_log10(p: float) -> float:
    return 300.0 if p <= 0 else -math.log10(p)
