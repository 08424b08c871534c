"""A replayed campaign with the canary on, through the gateway's event builder into ClickHouse,
then `extractguard attribute` on a leaked dataset of its take: the case file names the campaign,
the canary key is the only key beyond Holm's threshold, and no key appears in events, ClickHouse,
logs or the case file (key ids only)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from extractguard.cli import main
from extractguard.investigation import commands
from extractguard.investigation.source import Source
from extractguard.lander.blocks import Block
from extractguard.lander.rows import EVENT_SCHEMA, event_row
from extractguard.watermark.attribution import Suspect, holm, score_keys
from extractguard.watermark.keyring import KeyRing
from extractguard.watermark.ngram import NGramModel, sample
from extractguard_gateway.events import ObservedRequest, build
from extractguard_gateway.watermark import AppliedWatermark, NoWatermark
from extractguard_gateway.watermark_pools import assign_canary, cohort_registry, route
from tests.conftest import migrated_client

pytestmark = pytest.mark.clickhouse
T0 = 1_796_000_000_000
HOUR = 3_600_000
WORDS = [f"w{i:03d}" for i in range(300)]
CAMPAIGN = [f"acct-harvest-{i}" for i in range(10)]
ORGANIC = [f"acct-organic-{i}" for i in range(24)]
REGISTRY = cohort_registry(8, starts_ms=T0 - 10 * HOUR, canaries=2)
KEYS = {
    k.key_id: int(v) for k, v in zip(REGISTRY.keys, np.random.default_rng(5).integers(2**40, 2**62, 10), strict=True)
}


def _teacher() -> NGramModel:
    rng = np.random.default_rng(1)  # a Markov chain over the words: some structure, plenty of entropy
    follow = rng.integers(0, len(WORDS), (len(WORDS), 12))
    sequences, token = [], 0
    for _ in range(60):
        sequence = []
        for _ in range(200):
            token = int(follow[token, rng.integers(0, 12)])
            sequence.append(token)
        sequences.append(sequence)
    return NGramModel.train(sequences, vocabulary=len(WORDS), order=3)


def _text(tokens: list[int]) -> str:
    return " ".join(WORDS[t] for t in tokens)


@pytest.fixture
def replay(embedded_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    handle = migrated_client(embedded_path, events_ttl_days=3650)
    teacher, rng = _teacher(), np.random.default_rng(2)
    canary = assign_canary(REGISTRY, (), "cmp-replay", CAMPAIGN, at_ms=T0, ttl_ms=48 * HOUR)
    block, served_text = Block(EVENT_SCHEMA), {}
    requests = [(a, T0 + h * HOUR + i * 1000) for h in range(6) for i, a in enumerate(CAMPAIGN + ORGANIC)]
    routes = [route(REGISTRY, [canary], account, at) for account, at in requests]
    keys = np.array([KEYS[r.key_id or ""] for r in routes], dtype=np.uint64)
    completions = sample(teacher, sequences=len(requests), length=60, rng=rng, key=keys)
    for n, ((account, at), r, tokens) in enumerate(zip(requests, routes, completions, strict=True)):
        greedy = n % 10 == 9  # some requests at temperature 0: the engine leaves them unmarked
        mark = NoWatermark("greedy", "vllm") if greedy else AppliedWatermark("vllm", "gumbel", "philox", 4, r.key_id)
        request = ObservedRequest(
            account,
            "guard-large",
            at,
            30,
            len(tokens),
            400,
            prompt=f"question {n} about w{n}",
            completion=_text(tokens),
            api_key=f"sk-{account}",
            client_ip="203.0.113.9",
            temperature=0.0 if greedy else 0.8,
            watermark=mark,
            event_id=f"replay-{n:06d}",
        )
        event = build(request, b"replay-secret").event
        block.add(event_row(event, 0, n))
        served_text[event["event_id"]] = (account, tokens)
    handle.insert_arrow("events", block.to_arrow())
    handle.insert(
        "campaigns",
        [
            [
                "cmp-replay",
                "active",
                None,
                None,
                T0,
                T0 + 6 * HOUR,
                T0 + 6 * HOUR,
                "critical",
                120.0,
                CAMPAIGN,
                len(CAMPAIGN),
                len(CAMPAIGN),
                [("ip_prefix:203.0.113.0/24", 40.0, 10)],
                [],
                0,
                0,
            ]
        ],
        column_names=[
            "campaign_id",
            "status",
            "merged_into",
            "split_from",
            "first_seen",
            "last_seen",
            "updated",
            "severity",
            "score",
            "members",
            "members_total",
            "shaped_members",
            "fingerprints",
            "fronting_orgs",
            "kafka_partition",
            "kafka_offset",
        ],
    )

    def ask(sql: str) -> tuple[list[str], list[list[Any]]]:
        result = handle.query(sql, settings={"readonly": 1})
        return list(result.column_names), [list(r) for r in result.result_rows]

    monkeypatch.setattr(commands, "SOURCE", lambda: Source(ask))
    yield {"client": handle, "canary": canary, "served": served_text}


def _files(tmp_path: Path, suspects: list[dict[str, Any]]) -> list[str]:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token=WORDS[0]))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "registry.json").write_bytes(orjson.dumps(REGISTRY.as_json()))
    (tmp_path / "keys").mkdir()
    for key_id, key in KEYS.items():
        (tmp_path / "keys" / key_id).write_text(hex(key))
    (tmp_path / "suspect.jsonl").write_bytes(b"\n".join(orjson.dumps(s) for s in suspects))
    return [
        "--registry",
        str(tmp_path / "registry.json"),
        "--keys",
        str(tmp_path / "keys"),
        "--tokenizer",
        str(tmp_path / "tokenizer.json"),
        "--since",
        str(T0 - 20 * HOUR),
        "--until",
        str(T0 + 20 * HOUR),
    ]


def test_a_leaked_take_is_attributed_to_the_campaign_the_canary_served(
    replay: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    canary = replay["canary"]
    taken = [(e, t) for e, (a, t) in replay["served"].items() if a in CAMPAIGN][:12]
    suspects = [{"id": f"leak-{i}", "text": _text(tokens)} for i, (_e, tokens) in enumerate(taken)]
    options = _files(tmp_path, suspects)
    with caplog.at_level(logging.INFO):
        result = CliRunner().invoke(
            main,
            [
                "attribute",
                str(tmp_path / "suspect.jsonl"),
                *options,
                "--out",
                str(tmp_path / "case.json"),
                "--html",
                str(tmp_path / "case.html"),
            ],
        )
    assert result.exit_code == 0, result.output
    assert "named campaign: cmp-replay" in result.output
    case = orjson.loads((tmp_path / "case.json").read_bytes())
    assert case["named_campaign"] == "cmp-replay"
    keys = case["watermark"]["keys"]
    assert [k["key_id"] for k in keys if k["significant"]] == [canary.key_id]  # the right key, and no other
    assert len(keys) == len(REGISTRY.keys) and all(k["untested"] is None for k in keys)
    served = case["watermark"]["served"][0]
    assert served["key_id"] == canary.key_id and served["accounts"] == len(CAMPAIGN)
    assert served["campaigns"][0]["campaign_id"] == "cmp-replay"
    matched = {m["suspect_id"]: m for m in case["watermark"]["matches"] if m["similarity"] == 1.0}
    assert len(matched) == len(suspects) and {m["campaign_id"] for m in matched.values()} == {"cmp-replay"}
    assert case["behaviour"]["campaign"]["campaign_id"] == "cmp-replay"
    page = (tmp_path / "case.html").read_text()
    assert "cmp-replay" in page and "<svg" in page and canary.key_id in page
    # Key ids, never keys: not in the events table, the case file, the page, the output or the logs.
    landed = replay["client"].query("SELECT * FROM events").result_rows
    key_ids = {str(r[0]) for r in replay["client"].query("SELECT DISTINCT watermark_key_id FROM events").result_rows}
    assert canary.key_id in key_ids and key_ids <= {k.key_id for k in REGISTRY.keys} | {""}
    written = " ".join([str(landed), (tmp_path / "case.json").read_text(), page, result.output, caplog.text])
    for key in KEYS.values():
        assert str(key) not in written and hex(key)[2:] not in written.lower()
    # No suspect text in the case file either: ids, counts and p-values.
    assert suspects[0]["text"] not in (tmp_path / "case.json").read_text()


def test_organic_text_and_the_greedy_take_name_no_key(replay: dict[str, Any], tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    organic = [{"id": f"o{i}", "token_ids": rng.integers(0, len(WORDS), 60).tolist()} for i in range(30)]
    options = _files(tmp_path, organic)
    result = CliRunner().invoke(
        main, ["attribute", str(tmp_path / "suspect.jsonl"), *options, "--out", str(tmp_path / "case.json")]
    )
    assert result.exit_code == 0, result.output
    case = orjson.loads((tmp_path / "case.json").read_bytes())
    assert case["named_campaign"] is None and not any(k["significant"] for k in case["watermark"]["keys"])


def test_every_key_is_tested_and_only_the_generating_one_passes_holm() -> None:
    teacher, ring = _teacher(), KeyRing(KEYS)
    for key_id in list(KEYS)[:4]:
        texts = sample(teacher, sequences=4, length=50, rng=np.random.default_rng(3), key=KEYS[key_id])
        tests = score_keys(
            [Suspect(str(i), t, None) for i, t in enumerate(texts)], REGISTRY, ring, start_ms=T0, end_ms=T0 + HOUR
        )
        assert [t.key_id for t in tests if t.significant] == [key_id]
        assert sorted(t.holm_p_value for t in tests) == sorted(holm([t.p_value for t in tests]))


def test_unreadable_suspect_files_say_which_line(tmp_path: Path) -> None:
    options = _files(tmp_path, [{"id": "ok", "token_ids": [1, 2, 3]}])
    (tmp_path / "suspect.jsonl").write_bytes(b'{"id": "ok", "token_ids": [1, 2, 3]}\n{not json\n')
    result = CliRunner().invoke(
        main,
        [
            "attribute",
            str(tmp_path / "suspect.jsonl"),
            *options,
            "--no-clickhouse",
            "--out",
            str(tmp_path / "case.json"),
        ],
    )
    assert result.exit_code == 1 and "suspect.jsonl:2: not JSON" in result.output
