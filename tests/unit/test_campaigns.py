"""Campaign linking: the weighting of shared fingerprints and the resolver's merge, split and decay."""

from __future__ import annotations

from extractguard.campaigns.linking import Evidence, FingerprintLinker
from extractguard.campaigns.resolver import FAMILY_CONCENTRATION, CampaignResolver
from extractguard.contracts.link_activity import Sharer

W = 60_000


def sharers(prefix: str, count: int, shaped: bool, own_orgs: bool = True) -> list[Sharer]:
    return [(f"{prefix}{i}", f"org-{prefix}{i}" if own_orgs else f"org-{prefix}", shaped) for i in range(count)]


def weigh(shares: dict[str, list[Sharer]]) -> list[Evidence]:
    linker = FingerprintLinker(window_ms=W)
    linker.add(0, 0, W, [(fp, len(s), s) for fp, s in shares.items()])
    return linker.add(0, W, 2 * W, [])


def test_a_fingerprint_shared_by_thousands_of_organic_accounts_links_nobody() -> None:
    campaign = sharers("c", 40, shaped=True)
    evidence = weigh({
        "template:popular-sdk": campaign + sharers("o", 5000, shaped=False),
        "ip_prefix:big-cloud": campaign + sharers("p", 400, shaped=False),
        "tls_ja4:proxy": campaign + sharers("q", 10, shaped=False),
    })  # fmt: skip
    assert [e.fingerprint for e in evidence] == ["tls_ja4:proxy"]
    assert set(evidence[0].shaped) == {a for a, _, _ in campaign} and len(evidence[0].accounts) == 50


def test_one_org_alike_is_not_a_campaign_but_a_router_full_of_them_is() -> None:
    enterprise = sharers("e", 10, shaped=True, own_orgs=False)
    reseller = sharers("r", 30, shaped=True, own_orgs=False)
    evidence = weigh({"template:batch-job": enterprise, "template:reseller-sweep": reseller})
    assert [e.fingerprint for e in evidence] == ["template:reseller-sweep"]
    assert evidence[0].fronting_org == "org-r"  # the reseller whose downstream harvests is named
    r = CampaignResolver()
    r.add_many(evidence)
    (campaign,) = r.resolve(2 * W)
    assert campaign.fronting_orgs == ["org-r"] and campaign.to_record()["fronting_orgs"] == ["org-r"]


def test_chance_does_not_link_and_weight_grows_with_surprise() -> None:
    few = weigh({"sdk:x": sharers("c", 2, True) + sharers("o", 2, False)})
    many = weigh({"sdk:x": sharers("c", 30, True) + sharers("o", 30, False)})
    strong = weigh({"sdk:x": sharers("c", 60, True)})
    assert few == [] and many and strong and strong[0].weight > many[0].weight


def test_a_window_waits_for_every_detection_partition() -> None:
    linker = FingerprintLinker(window_ms=W, sources=2)
    half = sharers("c", 4, True)
    assert linker.add(0, 0, W, [("tls_ja4:j", 4, half)]) == []
    assert linker.add(0, W, 2 * W, []) == []  # partition 1 has not reported window 0 yet
    linker.add(1, 0, W, [("tls_ja4:j", 4, sharers("d", 4, True))])
    (evidence,) = linker.add(1, W, 2 * W, [])
    assert evidence.sharers_total == 8


def ev(fp: str, accounts: list[str], end_ms: int, shaped: bool = True) -> Evidence:
    """Evidence naming `accounts`, shaped or not; unshaped ones stand beside a fingerprint's shaped
    sharers (left out here), so the fingerprint is as concentrated as the linker's evidence is."""
    shaped_total = None if shaped else len(accounts)
    named = accounts if shaped else []
    return Evidence(fp, end_ms - W, end_ms, 10.0, accounts, named, len(accounts), len(accounts), None, shaped_total)


def test_resolver_grows_one_campaign_with_a_stable_id() -> None:
    r = CampaignResolver()
    r.add(ev("ip_prefix:p1", ["a", "b", "c"], W))
    (first,) = r.resolve(W)
    r.add(ev("ip_prefix:p2", ["c", "d", "e", "f"], 2 * W))  # shares c: the same actor, grown
    (grown,) = r.resolve(2 * W)
    assert grown.campaign_id == first.campaign_id and grown.status == "growing"
    assert grown.members == ["a", "b", "c", "d", "e", "f"]
    assert r.resolve(3 * W) == []  # nothing new: nothing published


def test_resolver_merges_two_campaigns_into_the_larger() -> None:
    r = CampaignResolver()
    r.add(ev("ip_prefix:p1", ["a", "b", "c", "d"], W))
    r.add(ev("ip_prefix:p2", ["x", "y", "z"], W))
    big, small = sorted(r.resolve(W), key=lambda c: -len(c.members))
    r.add(ev("template:t", ["d", "x"], 2 * W))  # the same template bridges them
    published = {c.campaign_id: c for c in r.resolve(2 * W)}
    assert published[small.campaign_id].status == "merged"
    assert published[small.campaign_id].merged_into == big.campaign_id
    assert len(published[big.campaign_id].members) == 7


def test_resolver_splits_when_the_bridge_decays_and_closes_what_is_forgotten() -> None:
    r = CampaignResolver(close_after_s=600)
    r.add(ev("ip_prefix:p1", ["a", "b", "c", "d"], W))
    r.add(ev("ip_prefix:p2", ["x", "y", "z"], W))
    r.add(ev("template:bridge", ["d", "x"], W))
    (whole,) = r.resolve(W)
    for minute in range(2, 10):  # both halves keep giving evidence; the bridge does not
        r.add(ev("ip_prefix:p1", ["a", "b", "c", "d"], minute * W))
        r.add(ev("ip_prefix:p2", ["x", "y", "z"], minute * W))
    r.resolve(9 * W)
    parts = {c.campaign_id: c for c in r.resolve(12 * W)}  # the bridge is past the close horizon
    assert parts[whole.campaign_id].members == ["a", "b", "c", "d"]
    (other,) = [c for c in parts.values() if c.campaign_id != whole.campaign_id]
    assert other.members == ["x", "y", "z"] and other.split_from == whole.campaign_id
    closing = r.resolve(30 * W)
    assert {c.status for c in closing} == {"closed"} and len(closing) == 2
    assert r.campaigns == {}


def test_infrastructure_alone_does_not_make_an_honest_customer_a_member() -> None:
    r = CampaignResolver()
    campaign, honest = ["c1", "c2", "c3", "c4"], ["h1", "h2"]
    r.add(ev("ip_prefix:reseller", campaign + honest, W, shaped=False))
    r.add(ev("tls_ja4:reseller-client", campaign + honest, W, shaped=False))
    r.add(ev("template:sweep", campaign, W, shaped=False))
    (found,) = r.resolve(W)
    assert found.members == campaign


def test_dormant_after_two_quiet_hours() -> None:
    r = CampaignResolver()
    r.add(ev("ip_prefix:p1", ["a", "b", "c"], W))
    r.resolve(W)
    assert r.resolve(W + 3_600_000) == []  # an hour without evidence is not yet dormant
    (quiet,) = r.resolve(W + 7_200_000)
    assert quiet.status == "dormant"


def test_the_slow_horizon_finds_accounts_that_never_meet_in_one_window() -> None:
    linker = FingerprintLinker(window_ms=W)
    found: list[Evidence] = []
    for minute in range(60):
        slow = [(f"c{minute}", f"org-c{minute}", True)]  # one new campaign account a minute
        popular = [*slow, *sharers(f"o{minute}-", 40, shaped=False)]  # the same, among many others
        shares = [("tls_ja4:slow", 1, slow), ("sdk:popular", 41, popular)]
        found += linker.add(0, minute * W, (minute + 1) * W, shares)
    assert {e.fingerprint for e in found} == {"tls_ja4:slow"}  # never 3 in a window, dozens in an hour
    slow_evidence = [e for e in found if e.fingerprint == "tls_ja4:slow"]
    last = slow_evidence[-1]
    assert last.window_end_ms - last.window_start_ms == 3_600_000 and last.sharers_total >= 40
    named = {a for e in slow_evidence for a in e.accounts}
    assert len(named) >= 40 and all(a.startswith("c") for a in named)  # names the shaped sharers only
    # Each account is named once, when first seen after the book last spoke: messages stay small.
    assert sum(len(e.accounts) for e in slow_evidence) == len(named)


def test_a_day_horizon_links_accounts_that_send_once_every_few_hours() -> None:
    linker = FingerprintLinker(window_ms=W)
    found: list[Evidence] = []
    for window in range(16 * 60):  # 16 hours: a campaign account every 40 minutes, another every 20
        shaped = [(f"c{window}", f"org-c{window}", True)] if window % 40 == 0 else []
        others = sharers(f"o{window}-", 1, shaped=False) if window % 20 == 5 else []
        share = ("template:sweep", len(shaped) + len(others), [*shaped, *others])
        found += linker.add(0, window * W, (window + 1) * W, [share], census=(1000, 1))
    day = [e for e in found if e.window_end_ms - e.window_start_ms == 86_400_000]
    assert not [e for e in found if e.window_end_ms - e.window_start_ms < 86_400_000]  # never 3 in an hour
    assert day and len({a for e in day for a in e.accounts}) >= 15
    assert all(a.startswith("c") for e in day for a in e.accounts)


def test_a_handful_of_linked_accounts_is_recorded_and_pages_once_it_grows() -> None:
    r = CampaignResolver()
    r.add(ev("ip_prefix:p1", [f"a{i}" for i in range(4)], W))
    (small,) = r.resolve(W)
    r.add(ev("ip_prefix:p1", [f"a{i}" for i in range(12)], 2 * W))
    (grown,) = r.resolve(2 * W)
    assert r.resolve(3 * W) == []  # nothing new to say
    r.add(ev("ip_prefix:p1", [f"a{i}" for i in range(12)], 61 * W))
    assert r.resolve(61 * W) == []  # an hour on, but held by one fingerprint alone: still recorded only
    r.add(ev("template:t1", [f"a{i}" for i in range(12)], 62 * W))
    (held,) = r.resolve(62 * W)  # a second fingerprint corroborates it: it pages now
    r.add(ev("ip_prefix:p1", [f"a{i}" for i in range(60)], 63 * W))
    (large,) = r.resolve(63 * W)
    assert (small.severity, grown.severity, held.severity, large.severity) == ("info", "info", "warning", "critical")
    assert small.campaign_id == grown.campaign_id == held.campaign_id == large.campaign_id
    r2 = CampaignResolver()
    r2.add(ev("ip_prefix:p2", [f"b{i}" for i in range(60)], W))
    (at_once,) = r2.resolve(W)
    assert at_once.severity == "critical"  # a large campaign does not wait


def test_a_window_lists_the_sharers_only_of_fingerprints_a_shaped_account_used() -> None:
    from extractguard.detection.link_activity import LinkActivity
    from extractguard.detection.windows import EntityWindows

    windows, activity = EntityWindows(W, 0), LinkActivity(W)
    base = {"org_id": "o", "input_tokens": 1, "output_tokens": 1, "request_logprobs": False,
            "prompt_sketch": {"template_hash": "t"}}  # fmt: skip
    events = [
        {**base, "account_id": f"a{i}", "client_ip_prefix": "10.0.0.0/24" if i < 5 else "198.51.100.0/24",
         "event_time_ms": 1_000 + i}
        for i in range(8)
    ] + [{**base, "account_id": "late", "client_ip_prefix": "10.9.9.0/24", "event_time_ms": W + 1}]  # fmt: skip
    closed = []
    for event in events:
        activity.add(event, windows.closed_until_ms)
        closed += windows.add(event)
    shares, census = activity.shares(closed[0], shaped=lambda account, _request_shape: account == "a6")
    listed = {fp: (n, sorted(a for a, _o, _s in s)) for fp, n, s in shares}
    assert listed["ip_prefix:10.0.0.0/24"] == (5, [])  # no shaped sharer: its count only
    assert listed["ip_prefix:198.51.100.0/24"] == (3, ["a5", "a6", "a7"])
    assert listed["template:t"] == (8, [f"a{i}" for i in range(8)])
    assert census == (8, 1)


def test_the_base_rate_comes_from_every_partitions_census_of_accounts() -> None:
    linker = FingerprintLinker(window_ms=W, sources=2, min_base_rate=0.0)
    linker.add(0, 0, W, [("tls_ja4:j", 4, sharers("c", 4, True))], census=(1000, 4))
    linker.add(1, 0, W, [("tls_ja4:j", 2, [])], census=(3000, 0))
    linker.add(0, W, 2 * W, [], census=(0, 0))
    linker.add(1, W, 2 * W, [], census=(0, 0))
    assert abs(linker.base_rate - 4 / 4000) < 1e-12  # accounts counted once, not per fingerprint


def test_a_partition_that_is_behind_is_waited_for_and_one_gone_quiet_is_not() -> None:
    linker = FingerprintLinker(window_ms=W, sources=2, max_wait_windows=3, quiet_s=30)
    mine, theirs = ("tls_ja4:j", 3, sharers("c", 3, True)), ("tls_ja4:j", 3, sharers("d", 3, True))
    census = (1000, 3)  # a thousand accounts a window, a few of them shaped: a low base rate
    linker.add(0, 0, W, [], census, now_s=0)
    linker.add(1, 0, W, [], census, now_s=0)
    for minute in range(1, 10):  # partition 0 runs nine windows ahead; partition 1 is slower but sending
        assert linker.add(0, minute * W, (minute + 1) * W, [mine] if minute == 1 else [], census, now_s=minute) == []
    linker.add(1, W, 2 * W, [theirs], census, now_s=10)  # its shares of window 1, late but counted
    evidence = linker.add(1, 2 * W, 3 * W, [], census, now_s=11)
    (window_1,) = [e for e in evidence if e.window_start_ms == W]
    assert len(window_1.shaped) == 6  # both partitions' sharers: none dropped as late
    # Partition 1 goes quiet: after 30 s of silence partition 0's windows are weighed without it.
    linker.add(0, 10 * W, 11 * W, [], census, now_s=20)
    assert linker.weighed_until_ms == 2 * W  # still waiting: 20 - 11 s is not quiet
    linker.add(0, 11 * W, 12 * W, [], census, now_s=45)
    assert linker.weighed_until_ms == 9 * W  # up to max_wait_windows behind the newest


def test_faint_accounts_at_one_request_an_hour_are_linked_as_a_population() -> None:
    """No account of the fleet is ever judgeable in the hour it is seen, yet their requests, shaped,
    concentrate on the fleet's prefixes; organic faint accounts (plain requests) link nobody, even
    on the prefix they share with the fleet or on the one client fingerprint everybody uses."""
    import random

    import orjson

    from extractguard.detection.engine import DetectionEngine
    from extractguard.paths import schemas_dir
    from extractguard.settings import DetectionSettings

    base = orjson.loads((schemas_dir() / "examples" / "gateway_event" / "chat_organic.json").read_bytes())
    rng = random.Random(11)
    start = 1_795_000_000_000 - 1_795_000_000_000 % 3_600_000
    events = []
    for i in range(400):  # the fleet: one request each in the hour, from 8 prefixes, shaped requests
        events.append({
            **base, "account_id": f"fleet{i}", "org_id": f"org-f{i}", "client_ip_prefix": f"185.1.{i % 8}.0/24",
            "event_time_ms": start + rng.randrange(3_600_000), "turn_index": 0, "output_tokens": 3000,
            "request_logprobs": True, "account_created_ms": start - 400 * 86_400_000,
        })  # fmt: skip
    for i in range(4000):  # organic: one or two plain requests, some on the fleet's prefixes
        prefix = f"185.1.{i % 8}.0/24" if i % 50 == 0 else f"203.{i % 200}.0.0/24"
        for _ in range(rng.choice((1, 2))):
            events.append({
                **base, "account_id": f"person{i}", "org_id": f"org-p{i // 10}", "client_ip_prefix": prefix,
                "event_time_ms": start + rng.randrange(3_600_000), "turn_index": rng.choice((0, 1, 2)),
            })  # fmt: skip
    events.sort(key=lambda e: e["event_time_ms"])
    events.append({**base, "account_id": "clock", "event_time_ms": start + 3_700_000})  # closes the last window
    engine = DetectionEngine(DetectionSettings())
    linker = FingerprintLinker(window_ms=W, quiet_s=0)
    evidence: list[Evidence] = []
    for event in events:
        engine.process([event], 0)
        for window_start, window_end, shares, census in engine.take_link_shares():
            evidence += linker.add(0, window_start, window_end, shares, census, now_s=0.0)
    assert all(engine.behaviour.leans(f"fleet{i}", 0.8) is None for i in range(400))  # none judgeable alone
    linked = {a for e in evidence for a in e.shaped}
    assert len({a for a in linked if a.startswith("fleet")}) >= 300
    assert not {a for a in linked if a.startswith("person")}
    # Everybody's client: at most the evidence of a population on it, below the bar of a family.
    assert all(e.concentration < FAMILY_CONCENTRATION for e in evidence if e.kind == "tls_ja4")


def test_campaigns_are_rebuilt_at_most_once_per_interval_and_nothing_added_meanwhile_is_lost() -> None:
    r = CampaignResolver(resolve_interval_s=120)
    r.add(ev("ip_prefix:p1", ["a", "b", "c"], W))
    (first,) = r.resolve(W)
    r.add(ev("ip_prefix:p1", ["a", "b", "c", "d", "e", "f", "g"], 2 * W))
    assert r.resolve(2 * W) == []  # a minute later: too soon to rebuild
    (grown,) = r.resolve(3 * W)
    assert grown.campaign_id == first.campaign_id and len(grown.members) == 7


def test_actors_that_share_only_commodity_tooling_are_found_as_related_actors_not_one() -> None:
    r = CampaignResolver()
    lab_a = [f"a{i}" for i in range(12)]  # residential, a controller sending hourly
    lab_b = [f"b{i}" for i in range(10)]  # a hosting ASN it fills, Poisson-paced (no period)
    lab_c = [f"c{i}" for i in range(8)]  # residential, every 75 minutes
    r.add(ev("tls_ja4:python-openssl", lab_a + lab_b + lab_c, W))  # one TLS stack for every Python client
    r.add(ev("template:public-cot-recipe", lab_a[:6] + lab_b[:6] + lab_c[:4], W))  # a public wrapper
    r.add(ev("cadence:168", lab_a[:7], W))  # an hour, as each account's estimate puts it
    r.add(ev("cadence:167", lab_a[7:], W))
    r.add(ev("asn:63949", lab_b, W))
    r.add(ev("cadence:172", lab_c, W))  # 75 minutes
    actors = {tuple(c.members): c for c in r.resolve(W)}
    assert set(actors) == {tuple(sorted(lab_a)), tuple(sorted(lab_b)), tuple(sorted(lab_c))}
    for members, campaign in actors.items():
        others = {c.campaign_id for m, c in actors.items() if m != members}
        assert set(campaign.related) == others
        assert "tls_ja4:python-openssl" in campaign.shared_with_related
        assert not {"cadence:167", "cadence:168", "cadence:172", "asn:63949"} & set(campaign.shared_with_related)
    record = actors[tuple(sorted(lab_b))].to_record()
    assert record["related"] and set(record["shared_with_related"]) == {
        "tls_ja4:python-openssl",
        "template:public-cot-recipe",
    }


def test_one_controller_over_several_subnets_stays_one_actor() -> None:
    r = CampaignResolver()
    pool = [f"p{i}" for i in range(20)]
    r.add(ev("ip_prefix:185.1.1.0/24", pool[:10], W))
    r.add(ev("ip_prefix:185.1.2.0/24", pool[10:], W))
    r.add(ev("cadence:168", pool, W))  # the same schedule on both: one controller
    (campaign,) = r.resolve(W)
    assert campaign.members == sorted(pool) and campaign.related == []
    # Two subnets with no timing to tell them apart are not two actors either.
    r2 = CampaignResolver()
    r2.add(ev("ip_prefix:185.1.1.0/24", pool[:10], W))
    r2.add(ev("ip_prefix:185.1.2.0/24", pool[10:], W))
    r2.add(ev("template:t", pool[9:11], W))
    assert [len(c.members) for c in r2.resolve(W)] == [20]


def test_a_shaped_account_that_shares_only_a_client_stack_with_a_campaign_is_not_a_member() -> None:
    r = CampaignResolver()
    fleet = [f"f{i}" for i in range(10)]
    job = ["synthetic-data-1", "synthetic-data-2"]  # shaped itself; one org's honest data job
    r.add(ev("ip_prefix:185.9.9.0/24", fleet, W))
    r.add(ev("tls_ja4:python-openssl", fleet + job, W))
    r.add(ev("sdk:openai-python", fleet + job, W))
    (campaign,) = r.resolve(W)
    assert campaign.members == sorted(fleet)


def test_public_text_alone_does_not_join_an_honest_program_to_a_campaign() -> None:
    r = CampaignResolver()
    fleet = [f"f{i}" for i in range(10)]
    harness = ["harness-1", "harness-2"]  # runs the public benchmark the fleet also harvests
    r.add(ev("cadence:168", fleet, W))
    r.add(ev("template:bbh-navigate", fleet[:5] + harness, W))
    r.add(ev("prompt_band:lets-think-step-by-step", fleet[5:] + harness, W))
    (campaign,) = r.resolve(W)
    assert campaign.members == sorted(fleet)


def population(fp: str, accounts: list[str], end_ms: int, sharers_total: int) -> Evidence:
    """Slow-horizon evidence of a population: shaped `accounts` among many more sharers."""
    return Evidence(
        fp, end_ms - 86_400_000, end_ms, 50.0, accounts, accounts, sharers_total, len(accounts), None, len(accounts)
    )


def test_a_population_on_what_many_use_is_a_campaign_once_its_accounts_keep_looking_shaped() -> None:
    r = CampaignResolver()
    crowd = [f"s{i}" for i in range(30)]  # a slow actor: organic clients, residential addresses, no period
    few = [f"h{i}" for i in range(10)]  # a class of students on another popular client
    once = [f"o{i}" for i in range(30)]  # ordinary accounts, each with one shaped request
    for end in (W, 2 * W):  # shaped in two windows: they keep looking it
        r.add(population("tls_ja4:browser", crowd, end, sharers_total=3000))
        r.add(population("sdk:python", few, end, sharers_total=2000))
    r.add(population("tls_ja4:node", once, W, sharers_total=3000))
    job = ["synthetic-data-1", "synthetic-data-2"]  # an honest data job on the dataset the crowd sweeps
    for end in (W, 2 * W):
        r.add(population("prompt_band:dataset-item", crowd + job, end, sharers_total=40))
    (campaign,) = r.resolve(2 * W)
    assert campaign.members == sorted(crowd) and campaign.related == []


def test_loose_accounts_join_an_actor_only_through_what_is_its_own() -> None:
    r = CampaignResolver()
    actor = [f"a{i}" for i in range(20)]  # held together by its controller's schedule
    with_it = ["l1", "l2"]  # shaped, on an ASN the actor's accounts are nearly all the shaped of
    reader = ["r1", "r2"]  # shaped, sending items of the dataset the actor sweeps, nothing else
    other = [f"b{i}" for i in range(8)]  # another actor's accounts, on the same Python TLS stack only
    for end in (W, 2 * W):
        r.add(ev("cadence:168", actor, end))
        r.add(Evidence("asn:64500", end - W, end, 8.0, actor + with_it, actor + with_it, 44, 22, None, None))
        r.add(ev("template:sweep-item", actor + reader, end))
        r.add(ev("tls_ja4:python-openssl", actor + other, end))
    (campaign,) = r.resolve(2 * W)
    assert campaign.members == sorted(actor + with_it)


def test_a_day_horizon_names_a_population_on_a_popular_fingerprint() -> None:
    linker = FingerprintLinker(window_ms=W)
    found: list[Evidence] = []
    for window in range(8 * 60):  # eight hours: a shaped account every 4 minutes among 60 others a window
        shaped = [(f"c{window}", f"org-c{window}", True)] if window % 4 == 0 else []
        share = ("sdk:openai-python", len(shaped) + 60, [*shaped, *sharers(f"o{window}-", 60, shaped=False)])
        found += linker.add(0, window * W, (window + 1) * W, [share], census=(3000, 2))
    assert found and all(
        e.concentration < FAMILY_CONCENTRATION for e in found
    )  # a small part of the fingerprint's users...
    named = {a for e in found for a in e.shaped}
    assert len(named) >= 50 and all(a.startswith("c") for a in named)


def test_an_actor_on_its_own_infrastructure_without_a_period_is_told_from_one_with_a_schedule() -> None:
    r = CampaignResolver()
    lab_a = [f"a{i}" for i in range(40)]  # a controller's schedule
    lab_b = [f"b{i}" for i in range(25)]  # Poisson-paced, on a hosting ASN organic apps use too
    r.add(ev("cadence:168", lab_a, W))
    r.add(ev("template:public-cot-recipe", lab_a + lab_b, W))  # public text both use
    half = Evidence("asn:14061", 0, W, 10.0, lab_b, lab_b, 2 * len(lab_b), len(lab_b), None, None)
    r.add(half)  # the shaped are half its sharers: theirs among the shaped, but not a tie
    assert {tuple(c.members) for c in r.resolve(W)} == {tuple(sorted(lab_a)), tuple(sorted(lab_b))}
