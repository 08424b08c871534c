"""The simulator's promises: reproducible, labelled, heavy-tailed, look-alikes that look alike,
campaigns under the limit whatever their knobs, and no prompt text in what it emits."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from itertools import islice, pairwise
from pathlib import Path

import orjson
import pytest

from extractguard.gateway.events import ObservedRequest, build_event, client_ip_prefix
from extractguard.gateway.sketch import sketch_prompt
from extractguard.simulator.population import SimAccount, residential_asns
from extractguard.simulator.scenario import (
    CampaignSpec,
    EnterpriseBatch,
    EvalHarness,
    Evasion,
    Fingerprint,
    Gateway,
    LookAlikes,
    OrganicSpec,
    Pivot,
    ProxyPool,
    Researchers,
    Reseller,
    Scenario,
    Strategies,
    ViralLaunch,
)
from extractguard.simulator.stream_file import write_stream
from extractguard.simulator.traffic import generate, population, scenario_start_ms

START_MS = 1_795_000_020_000 - 1_795_000_020_000 % 86_400_000  # midnight UTC
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
LOOKALIKES = LookAlikes(
    viral_launch=ViralLaunch(accounts=5, rate_per_min=0.5, at_s=3600, ramp_s=1200, factor=20),
    enterprise_batch=EnterpriseBatch(accounts=2, rate_per_min=20, first_run_s=1800, every_s=3600, run_s=600),
    eval_harness=EvalHarness(accounts=1, rate_per_min=30, at_s=2400, run_s=600),
    researchers=Researchers(accounts=3),
    reseller=Reseller(accounts=40),
)
SMALL = Scenario(
    name="t", seed=3, duration_s=7200, organic=OrganicSpec(accounts=300), lookalikes=LOOKALIKES,
    campaigns=[
        CampaignSpec(name="fast", accounts=60, start_s=600, rate_per_min=9.5, signup_waves=3, wave_interval_s=900,
                     evasion=Evasion(pacing_jitter=1.0)),
        CampaignSpec(name="hidden", accounts=30, start_s=1200, rate_per_min=1.0,
                     evasion=Evasion(via_reseller=True, camouflage=0.3, paraphrase_rate=0.5),
                     pivot=Pivot(at_s=3600, model="guard-large-3", share=0.5)),
    ],
)  # fmt: skip


@pytest.fixture(scope="module")
def stream() -> list[tuple[SimAccount, object]]:
    return list(generate(SMALL, START_MS))


def test_the_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    short = SMALL.model_copy(update={"duration_s": 1500})
    a = write_stream(short, START_MS, tmp_path / "a")
    b = write_stream(short, START_MS, tmp_path / "b")
    c = write_stream(short.model_copy(update={"seed": 4}), START_MS, tmp_path / "c")
    assert a.events.read_bytes() == b.events.read_bytes()
    assert a.labels.read_bytes() == b.labels.read_bytes()
    assert a.events.read_bytes() != c.events.read_bytes()


def test_labels_cover_every_account_with_its_class_and_campaign(tmp_path: Path) -> None:
    files = write_stream(SMALL.model_copy(update={"duration_s": 2700}), START_MS, tmp_path)
    labels = {row["account_id"]: row for row in map(orjson.loads, files.labels.read_bytes().splitlines())}
    seen = {orjson.loads(line)["account_id"] for line in files.events.read_bytes().splitlines()}
    assert seen == set(labels)
    classes = Counter(row["class"] for row in labels.values())
    assert {"regular", "viral_launch", "enterprise_batch", "eval_harness", "researcher", "reseller"} <= set(classes)
    campaigns = Counter(row["campaign"] for row in labels.values() if row["label"] == "campaign")
    assert campaigns == {"fast": 60, "hidden": 30}
    assert all(row["campaign"] is None for row in labels.values() if row["label"] == "organic")


def test_campaign_accounts_stay_under_the_per_account_limit(stream: list[tuple[SimAccount, object]]) -> None:
    times: dict[str, list[int]] = defaultdict(list)
    for account, request in stream:
        if account.label == "campaign":
            times[account.account_id].append(request.event_time_ms)  # type: ignore[attr-defined]
    assert len(times) == 90
    worst = 0
    for stamps in times.values():
        left = 0
        for right, ts in enumerate(stamps):  # every sliding 60 s window
            while ts - stamps[left] >= 60_000:
                left += 1
            worst = max(worst, right - left + 1)
    # Poisson pacing at 9.5/min would burst past 10 in some minute; the limiter must hold it.
    assert worst == SMALL.rate_limit_per_min


def test_organic_activity_is_heavy_tailed(stream: list[tuple[SimAccount, object]]) -> None:
    per_account = Counter(a.account_id for a, _ in stream if a.klass == "regular")
    counts = sorted(per_account.values(), reverse=True)
    top_decile = sum(counts[: len(counts) // 10])
    assert top_decile >= 0.35 * sum(counts)  # a tenth of the accounts send over a third of the traffic
    assert counts[len(counts) // 2] < sum(counts) / len(counts)  # median below mean


def test_campaigns_arrive_in_signup_waves_and_pivot_to_the_new_model(stream: list[tuple[SimAccount, object]]) -> None:
    first: dict[str, int] = {}
    hidden_models: dict[bool, Counter[str]] = {False: Counter(), True: Counter()}
    for account, request in stream:
        ts = request.event_time_ms  # type: ignore[attr-defined]
        if account.campaign == "fast":
            first.setdefault(account.account_id, ts)
        if account.campaign == "hidden":
            hidden_models[ts >= START_MS + 3_600_000][request.request_model] += 1  # type: ignore[attr-defined]
    waves = Counter((ts - START_MS - 600_000) // 900_000 for ts in first.values())
    assert waves == {0: 20, 1: 20, 2: 20}
    assert hidden_models[False]["guard-large-3"] == 0
    after = hidden_models[True]
    assert 0.35 < after["guard-large-3"] / after.total() < 0.65


def test_look_alikes_look_alike(stream: list[tuple[SimAccount, object]]) -> None:
    by_class: dict[str, list[tuple[SimAccount, object]]] = defaultdict(list)
    for account, request in stream:
        by_class[account.klass].append((account, request))

    def minutes(klass: str) -> Counter[int]:
        return Counter((r.event_time_ms - START_MS) // 60_000 for _, r in by_class[klass])  # type: ignore[attr-defined]

    viral = minutes("viral_launch")
    before = sum(viral[m] for m in range(0, 60)) / 60
    after = sum(viral[m] for m in range(90, 120)) / 30
    assert after > 10 * before  # the launch: ~20x within the hour

    batch = minutes("enterprise_batch")
    assert set(batch) <= {m for start in (30, 90) for m in range(start, start + 10)}  # only inside its runs

    harness = [r for _, r in by_class["eval_harness"]]
    assert all(r.temperature == 0.0 and r.logprobs and r.conversation_id is None for r in harness)  # type: ignore[attr-defined]

    resold = {client_ip_prefix(a.ip) for a, _ in by_class["reseller"]}
    hidden = {client_ip_prefix(a.ip) for a, _ in by_class["campaign"] if a.campaign == "hidden"}
    assert len(resold) <= 2 and hidden <= resold  # the campaign hides behind the reseller's egress
    assert {a.org_id for a, _ in by_class["campaign"] if a.campaign == "hidden"} == {
        a.org_id for a, _ in by_class["reseller"]
    }
    assert any(r.refusal for _, r in by_class["researcher"])  # type: ignore[attr-defined]


def test_proxy_rotation_moves_accounts_between_addresses_of_the_pool() -> None:
    def addresses(rotate: float, residential: bool = False) -> dict[str, set[str]]:
        campaign = CampaignSpec(
            name="r", accounts=20, start_s=0, rate_per_min=5,
            proxy=ProxyPool(prefixes=3, rotate_probability=rotate, residential=residential),
        )  # fmt: skip
        scenario = Scenario(duration_s=900, organic=OrganicSpec(accounts=1), campaigns=[campaign])
        seen: dict[str, set[str]] = defaultdict(set)
        for account, request in generate(scenario, START_MS):
            if account.campaign:
                seen[account.account_id].add(request.client_ip)
        return seen

    assert all(len(ips) == 1 for ips in addresses(0.0).values())
    rotating = addresses(0.5)
    assert all(len(ips) > 5 for ips in rotating.values())
    assert len({client_ip_prefix(ip) for ips in rotating.values() for ip in ips}) == 3  # within the pool
    residential = addresses(0.5, residential=True)
    assert len({client_ip_prefix(ip) for ips in residential.values() for ip in ips}) > 100


def test_batch_jobs_repeat_one_template(stream: list[tuple[SimAccount, object]]) -> None:
    templates = Counter(
        sketch_prompt(r.prompt).template_hash  # type: ignore[attr-defined]
        for a, r in stream
        if a.klass == "enterprise_batch"
    )
    assert len(templates) <= 2


def test_no_prompt_text_reaches_the_events(stream: list[tuple[SimAccount, object]]) -> None:
    word = re.compile(r"[a-z]+")
    for _account, request in islice(stream, 0, None, 7):
        encoded = orjson.dumps(build_event(request, b"k")).decode().lower()  # type: ignore[arg-type]
        words = word.findall(request.prompt.lower())  # type: ignore[attr-defined]
        for i in range(len(words) - 1):
            pair = f"{words[i]} {words[i + 1]}"
            assert pair not in encoded, pair


def test_a_corpus_supplies_the_prompts_and_bad_corpora_are_named(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    texts = [f"Corpus prompt number {i} about tide pools and {i % 7} starfish" for i in range(50)]
    corpus.write_bytes(b"\n".join(orjson.dumps({"text": t}) for t in texts))
    scenario = SMALL.model_copy(
        update={"organic": OrganicSpec(accounts=50, corpus=corpus, follow_up_probability=0.0), "campaigns": []}
    )
    sketches = {sketch_prompt(t).template_hash for t in texts}
    regular = [build_event(r, b"k") for a, r in generate(scenario, START_MS) if a.klass == "regular"]
    assert regular and all(e["prompt_sketch"]["template_hash"] in sketches for e in regular)

    corpus.write_text('{"text": "fine"}\n{"prompt": "wrong field"}\n')
    with pytest.raises(ValueError, match=r"corpus.jsonl:2: expected a JSON object with a 'text' field"):
        list(islice(generate(scenario, START_MS), 1))


def test_replays_start_at_the_scenario_time_of_day_and_end_in_the_past() -> None:
    now = START_MS + 5 * 3_600_000  # 05:00 UTC
    scenario = Scenario(start_hour_utc=9, duration_s=6 * 3600)
    start = scenario_start_ms(scenario, now)
    assert start % 86_400_000 == 9 * 3_600_000
    assert start + 6 * 3_600_000 <= now < start + 86_400_000 + 6 * 3_600_000


def test_every_scenario_file_loads_and_unknown_settings_are_named(tmp_path: Path) -> None:
    files = sorted(SCENARIOS.rglob("*.yaml"))
    assert {f.stem for f in files} >= {"demo", "control", "hydra", "low_and_slow", "pivot", "camouflage_reseller"}
    for path in files:
        scenario = Scenario.from_yaml(path)
        assert population(scenario.model_copy(update={"organic": OrganicSpec(accounts=1)}), START_MS)
    full = Scenario.from_yaml(SCENARIOS / "eval-full" / "hydra.yaml")
    assert full.campaign_accounts >= 20_000 and full.organic.accounts >= 200_000
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncampaigns: [{name: c, accounts: 5, acounts: 6}]\n")
    with pytest.raises(ValueError, match="acounts"):
        Scenario.from_yaml(bad)


# --- the world at the public case's rates -------------------------------------------------------


def _campaign_stream(campaign: CampaignSpec, **scenario: object) -> list[tuple[SimAccount, ObservedRequest]]:
    world = Scenario(
        **{"duration_s": 6 * 3600, "organic": OrganicSpec(accounts=200, rate_median_per_min=0.05), **scenario},  # type: ignore[arg-type]
        campaigns=[campaign],
    )
    return list(generate(world, START_MS))


def test_a_round_robin_controller_sends_each_account_once_a_period_at_its_own_phase() -> None:
    campaign = CampaignSpec(
        name="rr", accounts=60, start_s=0, rate_per_min=1 / 60, dispatch="round_robin",
        evasion=Evasion(pacing_jitter=0.1),
    )  # fmt: skip
    times: dict[str, list[int]] = defaultdict(list)
    for account, request in _campaign_stream(campaign):
        if account.campaign == "rr":
            times[account.account_id].append(request.event_time_ms)
    assert len(times) == 60
    for stamps in times.values():
        assert len(stamps) in (5, 6, 7)  # one an hour for six hours (jitter may fit one more in)
        gaps = [b - a for a, b in pairwise(stamps)]
        assert all(0.85 * 3_600_000 <= g <= 1.15 * 3_600_000 for g in gaps)
    # The controller spreads its accounts over the hour: one starts every minute, in turn.
    phases = sorted(stamps[0] - START_MS for stamps in times.values())
    assert phases[0] < 4 * 60_000 and phases[-1] > 55 * 60_000
    assert max(b - a for a, b in pairwise(phases)) < 8 * 60_000


def test_an_adaptive_campaign_wears_the_most_common_organic_client_and_no_gateway_gives_signup_dates() -> None:
    campaign = CampaignSpec(
        name="mimic", accounts=40, start_s=0, rate_per_min=0.2, fingerprint=Fingerprint(mimic_top_organic=True),
        proxy=ProxyPool(residential=True), evasion=Evasion(paraphrase_rate=1.0, camouflage=0.5, aged_accounts=1.0),
    )  # fmt: skip
    stream = _campaign_stream(
        campaign, gateway=Gateway(account_created=False), residential_asns=64,
        organic=OrganicSpec(accounts=400, rate_median_per_min=0.05, client_zipf=1.0),
    )  # fmt: skip
    organic = Counter(
        (a.user_agent, a.sdk, a.ja4) for a in {a.account_id: a for a, _ in stream}.values() if a.label == "organic"
    )
    top, count = organic.most_common(1)[0]
    assert count > 0.15 * organic.total()  # Zipf: one client dominates, as openai-python does
    mimics = {(r.user_agent, r.sdk_name, r.tls_ja4) for a, r in stream if a.campaign == "mimic"}
    assert mimics == {top}
    assert all(r.account_created_ms is None for _, r in stream)  # organic or not
    asns = {r.client_asn for a, r in stream if a.campaign == "mimic"}
    organic_asns = {r.client_asn for a, r in stream if a.label == "organic"}
    assert len(asns) > 20 and asns <= organic_asns | set(residential_asns(64))
    assert len(asns - set(residential_asns(10))) > 10  # spread beyond the historical ten


def test_refusal_mapping_is_refused_half_the_time_and_rubric_harvests_ask_for_reasoning() -> None:
    mapping = CampaignSpec(
        name="map", accounts=30, start_s=0, rate_per_min=0.5,
        strategies=Strategies(self_instruct=0, templated=0, paraphrase=0, refusal_probe=0, refusal_map=1.0,
                              refusal_rate=0.5),
    )  # fmt: skip
    probes = [r for a, r in _campaign_stream(mapping, duration_s=3600) if a.campaign == "map"]
    refused = [r for r in probes if r.refusal]
    assert 0.35 < len(refused) / len(probes) < 0.65
    assert all(r.output_tokens <= 120 for r in refused)
    assert len({sketch_prompt(r.prompt).template_hash for r in probes}) > 5  # a sweep, not one probe
    rubric = CampaignSpec(
        name="rubric", accounts=30, start_s=0, rate_per_min=0.5,
        strategies=Strategies(self_instruct=0, templated=0, paraphrase=0, refusal_probe=0, rubric=1.0),
    )  # fmt: skip
    harvested = [r for a, r in _campaign_stream(rubric, duration_s=3600) if a.campaign == "rubric"]
    assert harvested and not any(r.refusal for r in harvested)
    assert all(any(w in r.prompt for w in ("rubric", "chain of thought", "step by step")) for r in harvested)


def test_a_scenario_extends_another_and_loops_are_named(tmp_path: Path) -> None:
    (tmp_path / "world.yaml").write_text(
        "name: world\nseed: 1\nduration_s: 7200\norganic: {accounts: 50, corpus: prompts.jsonl}\ncampaigns: []\n"
    )
    (tmp_path / "prompts.jsonl").write_text('{"text": "hello there"}\n')
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "attack.yaml").write_text("extends: ../world.yaml\nname: attack\ncampaigns: [{name: c, accounts: 5}]\n")
    attack = Scenario.from_yaml(sub / "attack.yaml")
    assert (attack.name, attack.seed, attack.duration_s, attack.organic.accounts) == ("attack", 1, 7200, 50)
    assert attack.organic.corpus is not None and attack.organic.corpus.read_text().startswith('{"text"')
    assert [c.name for c in attack.campaigns] == ["c"]
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nname: b\n")
    with pytest.raises(ValueError, match="loops back"):
        Scenario.from_yaml(tmp_path / "a.yaml")


def test_the_default_scenarios_are_at_the_public_case_rates() -> None:
    for path in sorted((SCENARIOS / "eval-synthetic").glob("*.yaml")):
        scenario = Scenario.from_yaml(path)
        assert scenario.duration_s >= 3 * 86_400 and scenario.launch is not None, path
        assert scenario.organic.accounts >= 30_000, path
        for campaign in scenario.campaigns:
            assert campaign.accounts >= 1_000 and 10 * campaign.accounts <= scenario.organic_accounts, path
            assert campaign.rate_per_min <= 1 / 60 + 1e-6, path  # at most one request per account per hour
    adaptive = Scenario.from_yaml(SCENARIOS / "eval-synthetic" / "adaptive.yaml")
    assert not adaptive.gateway.account_created
    assert Scenario.from_yaml(SCENARIOS / "eval-fast" / "hydra.yaml").campaigns[0].rate_per_min == 0.8


def test_a_resellers_customers_can_be_end_users_of_its_accounts() -> None:
    campaign = CampaignSpec(name="hidden", accounts=30, start_s=0, rate_per_min=0.5, evasion=Evasion(via_reseller=True))
    reseller = Reseller(accounts=60, rate_median_per_min=0.2, egress_prefixes=2, end_user_accounts=3)
    stream = _campaign_stream(campaign, lookalikes=LookAlikes(reseller=reseller))
    behind = [(a, r) for a, r in stream if a.klass in ("reseller", "campaign")]
    # The gateway sees three accounts and their keys, and each customer as an end-user id.
    assert len({r.account_id for _, r in behind}) == 3 and len({r.api_key for _, r in behind}) == 3
    assert all(r.end_user_id == a.account_id for a, r in behind)
    assert {a.klass for a, _ in behind} == {"reseller", "campaign"}
    hashed = build_event(behind[0][1], b"k")["end_user_id"]
    assert hashed not in (None, behind[0][0].account_id)  # hashed at the gateway
    # Without end-user accounts each customer is an account of its own, as before.
    plain = _campaign_stream(
        campaign, lookalikes=LookAlikes(reseller=reseller.model_copy(update={"end_user_accounts": 0}))
    )
    assert all(r.end_user_id is None and r.account_id == a.account_id for a, r in plain)
