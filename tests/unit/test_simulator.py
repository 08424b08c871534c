"""The simulator's promises: reproducible, labelled, heavy-tailed, campaigns under the limit, and no
prompt text in what it emits."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import replace
from itertools import islice
from pathlib import Path

import orjson
import pytest

from extractguard.gateway.events import build_event
from extractguard.simulator.stream_file import write_stream
from extractguard.simulator.traffic import Scenario, generate

START_MS = 1_795_000_020_000
SMALL = Scenario(name="t", organic_accounts=200, campaign_accounts=80, duration_s=1800, campaign_start_s=300, seed=3)
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def test_the_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    a = write_stream(SMALL, START_MS, tmp_path / "a")
    b = write_stream(SMALL, START_MS, tmp_path / "b")
    c = write_stream(replace(SMALL, seed=4), START_MS, tmp_path / "c")
    assert a.events.read_bytes() == b.events.read_bytes()
    assert a.labels.read_bytes() == b.labels.read_bytes()
    assert a.events.read_bytes() != c.events.read_bytes()


def test_labels_cover_every_account_in_the_stream(tmp_path: Path) -> None:
    files = write_stream(SMALL, START_MS, tmp_path)
    labels = {row["account_id"]: row["label"] for row in map(orjson.loads, files.labels.read_bytes().splitlines())}
    seen = {orjson.loads(line)["account_id"] for line in files.events.read_bytes().splitlines()}
    assert seen == set(labels)
    assert Counter(labels.values()) == {
        "campaign": SMALL.campaign_accounts,
        "organic": len(seen) - SMALL.campaign_accounts,
    }


def test_campaign_accounts_stay_under_the_per_account_limit() -> None:
    times: dict[str, list[int]] = defaultdict(list)
    for account, request in generate(SMALL, START_MS):
        if account.label == "campaign":
            times[account.account_id].append(request.event_time_ms)
    assert len(times) == SMALL.campaign_accounts
    worst = 0
    for stamps in times.values():
        left = 0
        for right, ts in enumerate(stamps):  # sliding 60 s window
            while ts - stamps[left] >= 60_000:
                left += 1
            worst = max(worst, right - left + 1)
    assert worst <= SMALL.rate_limit_per_min


def test_organic_activity_is_heavy_tailed() -> None:
    per_account = Counter(a.account_id for a, _ in generate(SMALL, START_MS) if a.label == "organic")
    counts = sorted(per_account.values(), reverse=True)
    top_decile = sum(counts[: len(counts) // 10])
    assert top_decile >= 0.35 * sum(counts)  # a tenth of the accounts send over a third of the traffic
    assert counts[len(counts) // 2] < sum(counts) / len(counts)  # median below mean


def test_no_prompt_text_reaches_the_events() -> None:
    word = re.compile(r"[A-Za-z]{5,}")
    for _account, request in islice(generate(SMALL, START_MS), 2000):
        encoded = orjson.dumps(build_event(request, b"k")).decode()
        words = set(word.findall(request.prompt))
        leaked = {w for w in words if re.search(rf"\b{re.escape(w)}\b", encoded)}
        assert not leaked, leaked


def test_scenario_files_load_and_reject_unknown_settings(tmp_path: Path) -> None:
    demo = Scenario.from_yaml(SCENARIOS / "demo.yaml")
    assert demo.name == "demo" and demo.campaign_accounts > 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncampaign_acounts: 5\n")
    with pytest.raises(ValueError, match="campaign_acounts"):
        Scenario.from_yaml(bad)
