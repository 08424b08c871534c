"""Scenarios on real text: the shipped corpora, what the simulator draws from them, and the
real-text evaluation set's promises (no signup dates, commodity clients, real request traces)."""

from __future__ import annotations

import gzip
import re
import statistics
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path

import pytest

from extractguard.simulator.corpora import POOLS, TRACES, ArrivalShape, RequestSizes, Sweep, TextMix, corpora_home, pool
from extractguard.simulator.population import SimAccount
from extractguard.simulator.prompts import PUBLIC_COT
from extractguard.simulator.scenario import Scenario
from extractguard.simulator.traffic import generate

START_MS = 1_795_000_020_000 - 1_795_000_020_000 % 86_400_000
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
WORLD = {
    "name": "real", "seed": 5, "duration_s": 4 * 3600, "gateway": {"account_created": False},
    "organic": {"accounts": 400, "rate_median_per_min": 0.02, "text": {"chat": 0.5, "instructions": 0.2,
                "code": 0.15, "math": 0.15}, "traced": True, "session_requests": 3, "clients": "commodity",
                "client_zipf": 1.0},
    "lookalikes": {"researchers": {"accounts": 3}, "eval_harness": {"accounts": 1, "at_s": 600, "run_s": 300},
                   "synthetic_data": {"accounts": 2, "rate_per_min": 1, "first_run_s": 600, "run_s": 3600},
                   "students": {"accounts": 30, "rate_per_min": 0.2, "first_run_s": 3600, "run_s": 3600}},
    "campaigns": [{"name": "fleet", "accounts": 80, "start_s": 1800, "rate_per_min": 0.05, "dispatch": "round_robin",
                   "text": {"reasoning/flan_cot": 1.0, "math/gsm8k": 1.0}, "proxy": {"residential": True},
                   "fingerprint": {"clients": ["httpx", "openai-python"]}, "strategies": {"self_instruct": 1.0}}],
}  # fmt: skip


def _without_recipe(prompt: str) -> str:
    for recipe in PUBLIC_COT:
        if prompt.endswith(recipe):
            return prompt[: -len(recipe)]
    return prompt


@pytest.fixture(scope="module")
def stream() -> list[tuple[SimAccount, object]]:
    return list(generate(Scenario.model_validate(WORLD), START_MS))


def test_every_pool_and_trace_ships_with_the_repository_and_the_notice_names_each_source() -> None:
    notice = (corpora_home() / "NOTICE.md").read_text()
    for name in POOLS:
        prompts = pool(name)
        assert prompts, name
        for source in {p.source for p in prompts}:
            assert f"| `{name}.jsonl.gz` | {source} |" in notice, (name, source)
    for trace in TRACES:
        assert (corpora_home() / f"{trace}.csv.gz").is_file() and f"`{trace}.csv.gz`" in notice
    # What may not be redistributed stays out: research-use sets and AILuminate's CSE hazard.
    shipped = {p.source for name in POOLS for p in pool(name)}
    assert not shipped & {"trec_qc", "natural_instructions", "loghub"}
    assert all(p.area != "cse" for p in pool("refusal"))
    for path in corpora_home().glob("*.gz"):
        with gzip.open(path) as packed:
            assert packed.read(1), path


def test_a_mix_names_pools_and_sources_and_refuses_unknown_ones() -> None:
    assert {p.source for p in TextMix.of({"math/gsm8k+svamp": 1.0}).parts[0][1]} == {"gsm8k", "svamp"}
    with pytest.raises(ValueError, match="unknown prompt pool 'poems'"):
        TextMix.of({"poems": 1.0})
    with pytest.raises(ValueError, match=r"pool 'math' has no source \['limericks'\]"):
        TextMix.of({"math/limericks": 1.0})
    with pytest.raises(ValueError, match="unknown clients"):
        Scenario.model_validate(
            {**WORLD, "campaigns": [{"name": "c", "accounts": 1, "fingerprint": {"clients": ["x"]}}]}
        )


def test_a_harvest_walks_its_datasets_without_repeats_until_each_is_done() -> None:
    import random

    sweep = Sweep(TextMix.of({"math/svamp": 1.0, "code/humaneval": 1.0}), random.Random(2))
    sent = [sweep.next() for _ in range(600)]
    humaneval = [item.text for part, item in sent if part == "code/humaneval"]
    # HumanEval has 164 items: the walk goes through all of them before the first repeats.
    assert len(set(humaneval[:164])) == 164 and humaneval[164] == humaneval[0]
    assert 0.35 < len(humaneval) / len(sent) < 0.65


def test_request_sizes_and_the_arrival_shape_come_from_the_real_traces() -> None:
    sizes = RequestSizes.traced("azure_conv")
    contexts = sorted(c for c, _ in sizes.pairs)
    assert len(sizes.pairs) == 19_366 and 900 < statistics.median(contexts) < 1_200
    shape = ArrivalShape.traced("azure_conv")
    assert len(shape.factors) == 58 and abs(statistics.mean(shape.factors) - 1) < 1e-9
    assert statistics.pstdev(shape.factors) > 0.1  # real traffic swings minute to minute


def test_organic_and_campaign_prompts_are_real_text_and_share_public_datasets(stream: list) -> None:
    texts = {name: {p.text for p in pool(name)} for name in POOLS}
    every = set().union(*texts.values())
    organic = [r.prompt for a, r in stream if a.label == "organic"]
    campaign = [r.prompt for a, r in stream if a.label == "campaign"]
    assert organic and campaign
    # Organic openings and follow-ups are corpus text, some with a public CoT recipe appended.
    plain = [p for p in organic if _without_recipe(p) in every]
    assert len(plain) == len(organic)
    # The fleet's prompts are its datasets' items, whole, a public CoT recipe appended to some.
    assert all(_without_recipe(p) in texts["reasoning"] | texts["math"] for p in campaign)
    assert 0 < sum(p not in every for p in campaign) < len(campaign)
    # Harness and researchers draw real benchmarks and real safety probes.
    harness = [r.prompt for a, r in stream if a.klass == "eval_harness"]
    assert harness and all(p in texts["reasoning"] | texts["math"] | texts["code"] for p in harness)
    probes = [r.prompt for a, r in stream if a.klass == "researcher"]
    assert probes and all(p in texts["refusal"] for p in probes)


def test_the_gateway_passes_no_signup_time_and_campaign_clients_are_organic_ones(stream: list) -> None:
    assert all(r.account_created_ms is None for _, r in stream)
    organic_clients = {(r.user_agent, r.tls_ja4) for a, r in stream if a.label == "organic"}
    campaign_clients = {(r.user_agent, r.tls_ja4) for a, r in stream if a.label == "campaign"}
    assert campaign_clients and campaign_clients <= organic_clients
    # Residential: about one /24 per account.
    prefixes = {re.sub(r"\.\d+$", "", r.client_ip) for a, r in stream if a.label == "campaign"}
    assert len(prefixes) >= 0.9 * len({a.account_id for a, _ in stream if a.label == "campaign"})


def test_people_send_in_sittings_at_their_account_rate(stream: list) -> None:
    times: defaultdict[str, list[int]] = defaultdict(list)
    for account, request in stream:
        if account.klass == "regular":
            times[account.account_id].append(request.event_time_ms)
    gaps = [b - a for ts in times.values() for a, b in pairwise(ts)]
    within = [g for g in gaps if g < 600_000]
    # Most gaps are a think time (~45 s median), the rest the hours between sittings.
    assert len(within) > len(gaps) / 2 and 20_000 < statistics.median(within) < 120_000
    # The total stays the accounts' rates: sittings do not multiply requests.
    regular = [a for a, _ in stream if a.klass == "regular"]
    expected = sum({a.account_id: a.rate_per_min for a in regular}.values())  # lower bound: senders only
    assert len(regular) < 3 * expected * WORLD["duration_s"] / 60  # type: ignore[operator]
    turns = Counter(r.turn_index > 0 for a, r in stream if a.klass == "regular")
    assert 0.2 < turns[True] / sum(turns.values()) < 0.6


def test_the_real_text_evaluation_set_is_the_world_as_gateways_give_it() -> None:
    paths = sorted((SCENARIOS / "eval").glob("*.yaml"))
    assert {p.stem for p in paths} >= {"control", "fleet", "fleet_small", "shared_tooling", "refusal_mapping", "slow",
                                       "reseller_harvest"}  # fmt: skip
    kinds: Counter[str] = Counter()
    for path in paths:
        scenario = Scenario.from_yaml(path)
        assert not scenario.gateway.account_created, path
        assert scenario.organic.text and scenario.organic.traced and scenario.organic.clients == "commodity", path
        assert scenario.organic.accounts >= 30_000 and scenario.launch is not None, path
        for campaign in scenario.campaigns:
            assert campaign.text, (path, campaign.name)
            assert campaign.rate_per_min <= 1 / 60 + 1e-6, path
            if not campaign.proxy.residential and not campaign.evasion.via_reseller:
                assert campaign.proxy.prefixes >= campaign.accounts, (path, campaign.name)  # sparse as residential
            kinds[campaign.judged_as] += 1
    assert kinds["actor"] >= 2 and kinds["small_fleet"] and kinds["hydra"] and kinds["low_and_slow"]


def test_real_worlds_have_programmatic_apps_and_honest_look_alikes_of_a_harvest(stream: list) -> None:
    by_class: defaultdict[str, list] = defaultdict(list)
    for account, request in stream:
        by_class[account.klass].append((account, request))
    # An app's backend calls once per request: single-turn, as most real API traffic is.
    app = [r for _, r in by_class["app_backend"]]
    people = [r for _, r in by_class["regular"]]
    assert app and people
    assert sum(r.turn_index == 0 for r in app) / len(app) > 0.9 > sum(r.turn_index == 0 for r in people) / len(people)
    # The synthetic-data job: long, single-turn answers to public instructions from one subnet.
    job = [r for _, r in by_class["synthetic_data"]]
    assert job and all(r.turn_index == 0 and r.output_tokens >= 800 for r in job)
    assert len({re.sub(r"\.\d+$", "", r.client_ip) for r in job}) == 1
    # The class: one campus ASN, one browser, everyone first seen within the class's first hour.
    students = by_class["student"]
    firsts: dict[str, int] = {}
    for account, request in students:
        firsts.setdefault(account.account_id, request.event_time_ms)
    assert len({r.client_asn for _, r in students}) == 1 and len({r.user_agent for _, r in students}) == 1
    assert len(firsts) >= 25 and max(firsts.values()) - min(firsts.values()) < 3_600_000
