"""The per-account behaviour view: each tell tells what it claims, on hand-made accounts."""

from __future__ import annotations

import random
from typing import Any

from extractguard.detection.behaviour import AccountBehaviour

DAY_MS = 86_400_000
START_MS = 1_795_000_000_000 - 1_795_000_000_000 % DAY_MS


def signature(template: str) -> list[int]:
    rng = random.Random(template)
    return [rng.getrandbits(32) for _ in range(8)]


def event(account: str, ts: int, template: str, **extra: Any) -> dict[str, Any]:
    return {
        "account_id": account, "event_time_ms": ts, "account_created_ms": START_MS - 400 * DAY_MS,
        "turn_index": 1, "input_tokens": 200, "output_tokens": 300, "request_logprobs": False,
        "prompt_sketch": {"template_hash": template, "minhash": signature(template)},
        **extra,
    }  # fmt: skip


def test_template_diversity_tells_a_batch_job_from_a_sweep() -> None:
    b = AccountBehaviour()
    for i in range(200):
        ts = START_MS + i * 10_000
        b.learn_event(event("batch", ts, "aaaa0000aaaa0000"))
        b.learn_event(event("sweep", ts, f"{random.Random(i).getrandbits(64):016x}"))
    assert b.tells("batch")["template_diversity"] < 0.05
    assert b.tells("sweep")["template_diversity"] > 0.5
    assert b.tells("sweep")["topic_coverage"] > 0.5 > b.tells("batch")["topic_coverage"]


def test_template_repeats_and_near_duplicates() -> None:
    b = AccountBehaviour()
    rng = random.Random(7)
    family = [rng.getrandbits(32) for _ in range(64)]
    for i in range(200):
        ts = START_MS + i * 10_000
        b.learn_event(event("batch", ts, f"{i % 3:016x}"))  # three templates, round and round
        b.learn_event(event("sweep", ts, f"{rng.getrandbits(64):016x}"))
        # Paraphrases: new templates, but each prompt keeps most of the family's MinHash values.
        words = [v if rng.random() < 0.9 else rng.getrandbits(32) for v in family]
        sketch = {"template_hash": f"{rng.getrandbits(64):016x}", "minhash": words}
        b.learn_event(event("paraphrase", ts, "", prompt_sketch=sketch))
    batch, sweep, paraphrase = b.tells("batch"), b.tells("sweep"), b.tells("paraphrase")
    assert batch["template_repeat"] > 0.9 and sweep["template_repeat"] < 0.1
    assert paraphrase["template_repeat"] < 0.1 and paraphrase["near_duplicate"] > 0.8
    assert sweep["near_duplicate"] < 0.1


def test_around_the_clock_and_age_at_first_heavy_use() -> None:
    b = AccountBehaviour()
    young_created = START_MS - 2 * DAY_MS
    for i in range(1440):  # a heavy user every minute of the day, vs. the same hour each day
        b.learn_event(event("bot", START_MS + i * 60_000, f"{i:016x}", account_created_ms=young_created))
    for i in range(96):
        b.learn_event(event("office", START_MS + (i // 24) * DAY_MS + 9 * 3_600_000 + (i % 24) * 60_000, f"{i:016x}"))
    assert b.tells("bot")["around_the_clock"] > 0.5  # (the 12 h half-life weighs the latest hours more)
    assert b.tells("office")["around_the_clock"] < 0.1
    assert b.tells("bot")["young_at_heavy_use"] == 1.0 and b.tells("office")["young_at_heavy_use"] == 0.0


def test_few_requests_cannot_look_extreme() -> None:
    b = AccountBehaviour()
    harvest = {"turn_index": 0, "output_tokens": 4000, "request_logprobs": True}
    for i in range(2):
        b.learn_event(event("new", START_MS + i * 60_000, f"{i:016x}", **harvest))
    for i in range(40):
        b.learn_event(event("busy", START_MS + i * 60_000, f"{i:016x}", **harvest))
    assert not b.scoreable("new")
    assert b.tells("new")["output_heavy"] < 0.5 < b.tells("busy")["output_heavy"]
    assert b.score("new") < b.score("busy")
