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


def _hourly(b: AccountBehaviour, account: str, hours: int, **extra: Any) -> None:
    for hour in range(hours):
        b.learn_event(event(account, START_MS + hour * 3_600_000 + 17_000, f"{hour:016x}", **extra))


def test_an_account_at_one_request_an_hour_is_judged_within_hours_not_never() -> None:
    """At the public case's rate an hour's horizon never holds five requests; the day's does by hour five."""
    harvest = {"turn_index": 0, "output_tokens": 4000, "request_logprobs": True}
    b = AccountBehaviour()
    _hourly(b, "harvester", 6, **harvest)
    _hourly(b, "person", 6)
    assert not b.scoreable("harvester", horizon=0)
    assert b.scoreable("harvester", horizon=1)
    judged = b.evaluate("harvester", START_MS + 6 * 3_600_000)
    assert judged is not None and judged[1] > 0
    assert b.is_shaped("harvester")
    assert not b.is_shaped("person")
    one_horizon = AccountBehaviour(horizons_s=(3600.0,))
    _hourly(one_horizon, "harvester", 6, **harvest)
    assert one_horizon.evaluate("harvester", START_MS + 6 * 3_600_000) is None  # the old blind spot


def test_each_horizon_is_calibrated_on_its_own_reference() -> None:
    b = AccountBehaviour()
    rng = random.Random(5)
    for i in range(400):  # established accounts, a request every ~20 minutes for a day
        account = f"ref{i}"
        ts = START_MS
        for _ in range(60):
            ts += int(rng.expovariate(1 / 1_200_000))
            b.learn_event(event(account, ts, f"{rng.getrandbits(64):016x}", turn_index=rng.choice((0, 1, 1))))
        b.evaluate(account, ts)
    assert all(r.weight > 0 for r in b.references)
    # Each threshold stays within its bounds and reports false alarms from the reference.
    assert all(b.min_threshold <= b.threshold(h) <= b.max_threshold for h in range(b.horizons))
    assert b.expected_false_alarms_per_day() >= 0


def test_a_request_shape_counts_only_what_one_request_shows() -> None:
    b = AccountBehaviour()
    full = b.learn_event(
        event("a", START_MS, "00000000000000a0", turn_index=0, output_tokens=4000, request_logprobs=True,
              prompt_sketch={"cot_elicitation": True})
    )  # fmt: skip
    plain = b.learn_event(event("b", START_MS, "00000000000000b1", turn_index=0))
    follow_up = b.learn_event(event("c", START_MS, "00000000000000c2"))
    assert full == 1.0
    assert 0 < plain < 0.5
    assert follow_up == 0.0


def test_a_bought_aged_account_at_a_few_requests_a_day_leans_for_linking_but_is_not_flagged_alone() -> None:
    """Months old and paced irregularly, it lacks the young-account and pacing tells however shaped
    its requests are: six in a day (single turn, half of them 3,500-token answers, half chain of
    thought) score about 0.30 over the day, under the old bar of 0.36 and the 0.45 threshold. Linking
    must count it as leaning, or a fleet of such accounts joins no campaign; alone it is not flagged."""
    from extractguard.detection.engine import DetectionEngine
    from extractguard.settings import DetectionSettings

    engine = DetectionEngine(DetectionSettings())
    b = engine.behaviour
    heavy, cot, logprobs = (1, 1, 0, 1, 0, 0), (1, 0, 1, 0, 0, 1), (0, 1, 0, 0, 0, 0)
    ts = START_MS
    for i, gap_h in enumerate((0, 3, 5, 2, 6, 4)):
        ts += gap_h * 3_600_000 + 137_000 * i
        sketch = {"template_hash": f"{i + 1:016x}", "cot_elicitation": bool(cot[i])}
        b.learn_event(
            event("bought", ts, "", turn_index=0, output_tokens=3500 if heavy[i] else 700,
                  request_logprobs=bool(logprobs[i]), prompt_sketch=sketch)
        )  # fmt: skip
        b.learn_event(event("backend", ts + 999, f"{i + 7:016x}", turn_index=0, output_tokens=900))
        b.learn_event(event("person", ts + 1999, f"{i + 17:016x}", turn_index=i % 2, output_tokens=400))
    assert engine.leaning("bought", 0.0)
    assert not b.is_shaped("bought")
    assert not b.leans("bought", 0.8, 2)  # the old bar: it never leaned
    assert not engine.leaning("backend", 0.0) and not engine.leaning("person", 0.0)


def test_a_refused_cold_request_is_probe_shaped_for_linking_and_a_refused_follow_up_is_not() -> None:
    b = AccountBehaviour()
    plain = {"request_logprobs": False, "output_tokens": 60}
    probe = b.learn_event(event("mapper", 0, "00000000000000a1", turn_index=0, refusal=True, **plain))
    asked = b.learn_event(event("mapper-2", 0, "00000000000000a1", turn_index=0, refusal=False, **plain))
    follow_up = b.learn_event(event("person", 0, "00000000000000a2", turn_index=3, refusal=True, **plain))
    behind = b.learn_event(event("r/eu:x", 0, "00000000000000a1", turn_index=0, refusal=True, end_user_id="x", **plain))
    assert probe == 1.0 and asked < 0.5 and follow_up < 0.5 and behind < 0.5
    # It shapes linking's vote only: the account's score gives refusals no weight (red-teamers refuse too).
    assert b.tells("mapper")["refusals"] > 0 and b.score("mapper") == b.score("mapper-2")
