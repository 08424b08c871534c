"""The measuring stick without Kafka: labelled files replay as their scenario does, the scorecard's
red-team and done-when figures, and the in-process replay finding a plain campaign."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from extractguard.cli import main
from extractguard.evaluation.done_when import done_when
from extractguard.evaluation.in_process import replay_in_process, run_in_process
from extractguard.evaluation.scorecard import Scorecard
from extractguard.evaluation.scoring import Truth, score_scenario
from extractguard.evaluation.sources import UNLABELLED, SimulatedReplay, StreamReplay
from extractguard.simulator.scenario import (
    CampaignSpec,
    Evasion,
    LookAlikes,
    OrganicSpec,
    ProxyPool,
    Reseller,
    Scenario,
)
from extractguard.simulator.stream_file import write_stream

START_MS = 1_795_000_020_000 - 1_795_000_020_000 % 86_400_000 + 9 * 3_600_000
MINI = Scenario(
    name="mini", seed=9, duration_s=1500, organic=OrganicSpec(accounts=250),
    campaigns=[CampaignSpec(name="swarm", kind="hydra", accounts=150, start_s=600, rate_per_min=4,
                            proxy=ProxyPool(prefixes=2))],
)  # fmt: skip


def test_a_simulated_files_replay_gives_the_scenario_events_and_truth(tmp_path: Path) -> None:
    short = MINI.model_copy(update={"duration_s": 900})
    files = write_stream(short, START_MS, tmp_path)
    simulated = list(SimulatedReplay(short, START_MS).events())
    stream = StreamReplay(files.events, files.labels, "mini")
    replayed = list(stream.events())
    assert [r.event for r in replayed] == [r.event for r in simulated]
    assert [r[:4] for r in replayed] == [r[:4] for r in simulated]
    assert stream.start_ms == simulated[0].event["event_time_ms"] and stream.kinds == {"swarm": "swarm"}
    records = stream.label_records()
    assert len(records) == files.accounts and {r["scenario"] for r in records} == {"mini"}


def test_an_export_out_of_order_is_sorted_and_unlabelled_accounts_count_as_organic(tmp_path: Path) -> None:
    files = write_stream(MINI.model_copy(update={"duration_s": 700}), START_MS, tmp_path)
    lines = files.events.read_bytes().splitlines()
    files.events.write_bytes(b"\n".join(reversed(lines)) + b"\n")
    labels = [orjson.loads(line) for line in files.labels.read_bytes().splitlines()]
    dropped = next(r for r in labels if r["label"] == "organic")["account_id"]
    files.labels.write_bytes(b"\n".join(orjson.dumps(r) for r in labels if r["account_id"] != dropped))
    rows = list(StreamReplay(files.events, files.labels, "export").events())
    times = [r.event["event_time_ms"] for r in rows]
    assert times == sorted(times) and len(rows) == len(lines)
    assert {r.klass for r in rows if r.account_id == dropped} == {UNLABELLED}

    bad = '{"schema_version": 1, "account_id": "a%d", "label": "bot", "source": "analyst"}\n'
    files.labels.write_text("".join(bad % n for n in range(3)))
    with pytest.raises(ValueError, match=r"labels.jsonl: 3 of 3 account_label records would be refused") as refused:
        StreamReplay(files.events, files.labels, "export")
    assert "line 1: (record): missing_field" in str(refused.value) and "labelled_at_ms" in str(refused.value)
    assert "-- 3 lines" in str(refused.value)


def test_the_red_team_view_counts_the_harvest_before_detection_and_the_accounts_burned() -> None:
    truth = Truth(kinds={"c": "hydra"})
    for minute in range(10):  # two members, 100 output tokens a request; c1 never named
        truth.observe("c0", "campaign", "campaign", "c", minute * 60_000, 100)
        truth.observe("c1", "campaign", "campaign", "c", minute * 60_000 + 1, 100)
    truth.observe("o0", "organic", "eval_harness", None, 5)
    alerts = [{"dedup_key": "k", "accounts": ["c0"], "last_seen_ms": 180_000, "rule": "r"}]
    score = score_scenario("s", 86_400, truth, alerts)
    [c] = score.campaigns
    assert (c.requests_before_detection, c.output_tokens_before_detection, c.output_tokens) == (6, 600, 2000)
    assert (c.accounts_burned, c.accounts_burned_fraction) == (1, 0.5)
    assert (c.requests_by_unburned_accounts, c.output_tokens_by_unburned_accounts) == (10, 1000)
    assert c.detected_within_1h and c.kind == "hydra" and c.requests_before_detection_fraction == 0.3
    verdict = done_when([score])
    assert verdict["criteria"]["hydra"][0]["passed"] is False  # 30% served first, half the members
    assert verdict["every_campaign_detected"] and not verdict["lookalike_classes_paged"]
    markdown = Scorecard("t", "now", [score]).markdown()
    assert "| s | c | 20 | 2,000 | 6 | 600 | 1 of 2 (50.0%) | 10 | 1,000 |" in markdown
    assert "## Done when" in markdown and "All criteria met: **no**" in markdown
    assert Scorecard("t", "now", [score]).as_dict()["complete"] is True and "Incomplete" not in markdown
    partial = Scorecard("t", "now", [score], scenarios_pending=["hydra", "pivot"])
    assert partial.as_dict()["complete"] is False
    assert "**Incomplete**: still to run when written: hydra, pivot." in partial.markdown()


def test_in_process_a_plain_campaign_is_found_and_its_files_score_the_same(tmp_path: Path) -> None:
    simulated = replay_in_process(SimulatedReplay(MINI, START_MS))
    [swarm] = simulated.score.campaigns
    assert swarm.detected and swarm.seconds_to_detect is not None and swarm.seconds_to_detect < 900
    assert swarm.resolved_as == 1 and swarm.resolved_member_recall > 0.8 and swarm.resolved_cluster_precision == 1.0
    assert simulated.score.organic_accounts_flagged == 0

    files = write_stream(MINI, START_MS, tmp_path / "files")
    replayed = replay_in_process(StreamReplay(files.events, files.labels, "mini", duration_s=MINI.duration_s))
    # The labels carry no kind: a file's campaign is judged by its name.
    assert replayed.score.campaigns == [replace(c, kind=c.name) for c in simulated.score.campaigns]
    assert replayed.score.organic_classes == simulated.score.organic_classes

    card = run_in_process([SimulatedReplay(MINI, START_MS)], tmp_path / "out", "test", lambda _line: None)
    written = orjson.loads((tmp_path / "out" / "scorecard.json").read_bytes())
    assert written["scenarios"][0]["campaigns"][0]["detected"] is True
    assert written["overall"]["done_when"]["every_campaign_detected"] is True
    assert card.scenarios[0].extra["in_process"] is True


def test_end_users_behind_a_reseller_are_judged_apart_and_the_reseller_is_named() -> None:
    # The reseller's 200 customers and a 150-account campaign all come through two reseller accounts;
    # the gateway passes a hashed end-user id. Judged per end user, the campaign is found and the
    # reseller's org named as fronting it, and none of its honest customers is a member.
    behind = MINI.model_copy(
        update={
            "lookalikes": LookAlikes(reseller=Reseller(accounts=200, rate_median_per_min=0.5, end_user_accounts=2)),
            "campaigns": [CampaignSpec(name="downstream", accounts=150, start_s=600, rate_per_min=4,
                                       evasion=Evasion(via_reseller=True))],
        }
    )  # fmt: skip
    result = replay_in_process(SimulatedReplay(behind, START_MS))
    [downstream] = result.score.campaigns
    assert downstream.detected and downstream.resolved_as == 1
    assert downstream.resolved_member_recall > 0.8 and downstream.resolved_cluster_precision == 1.0
    assert result.score.organic_accounts_flagged == 0 and not result.score.organic_in_campaigns
    [campaign] = [c for c in result.campaigns.values() if c["status"] != "merged"]
    assert all("/eu:" in member for member in campaign["members"])
    assert len(campaign["fronting_orgs"]) == 1  # the reseller's org, the one org they all share


def test_eval_stream_needs_its_labels_and_a_name_fit_for_topics(tmp_path: Path) -> None:
    events = tmp_path / "events.ndjson"
    events.write_text("")
    runner = CliRunner()
    result = runner.invoke(main, ["eval", "--stream", str(events)])
    assert result.exit_code == 2 and "--stream needs --labels" in result.output
    result = runner.invoke(main, ["eval", "--stream", str(events), "--labels", str(events), "--name", "Bad Name"])
    assert result.exit_code == 2 and "--name 'Bad Name'" in result.output
    result = runner.invoke(main, ["eval", "--labels", str(events)])
    assert result.exit_code == 2 and "go with --stream" in result.output


@pytest.mark.parametrize("in_process", [False, True], ids=["pipeline", "in-process"])
def test_eval_stream_refuses_a_file_the_pipeline_would_refuse_before_anything_starts(
    tmp_path: Path, in_process: bool
) -> None:
    """Short event ids on every line: one fault, its first line, its field, how many lines share
    it; and no broker touched (this test has no `kafka` marker, so reaching for one fails it)."""
    files = write_stream(MINI.model_copy(update={"duration_s": 300}), START_MS, tmp_path)
    events = [orjson.loads(line) for line in files.events.read_bytes().splitlines()]
    short = [{**e, "event_id": e["event_id"][:5]} for e in events]
    short[3] = {**events[3], "input_tokens": -1}  # a second fault, on line 4 alone
    files.events.write_bytes(b"\n".join(orjson.dumps(e) for e in short) + b"\n")
    command = ["eval", "--stream", str(files.events), "--labels", str(files.labels)]
    result = CliRunner().invoke(main, command + (["--in-process"] if in_process else []))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"{len(events):,} of {len(events):,} events would be refused by the pipeline; nothing was sent" in (
        result.output
    )
    assert f"line 1: event_id: schema_violation: event_id must be longer than or equal to 8 characters -- " \
           f"{len(events) - 1:,} lines" in result.output  # fmt: skip
    assert (
        "line 4: input_tokens: out_of_range: input_tokens must be bigger than or equal to 0 -- 1 line" in result.output
    )


def test_the_ablation_view_replays_each_family_withheld_and_says_which_carried_the_detection(tmp_path: Path) -> None:
    from extractguard.evaluation.ablation import FAMILIES, Withheld

    # MINI's swarm sits on two proxy subnets: withheld, each account has a network of its own.
    withheld = list(Withheld(SimulatedReplay(MINI, START_MS), "infrastructure").events())
    assert len({r.event["client_ip_prefix"] for r in withheld if r.label == "campaign"}) > 100
    retimed = [r.event["event_time_ms"] for r in Withheld(SimulatedReplay(MINI, START_MS), "timing").events()]
    assert retimed == sorted(retimed)

    card = run_in_process(
        [SimulatedReplay(MINI, START_MS)], tmp_path / "out", "test", lambda _line: None,
        ablation=lambda: [SimulatedReplay(MINI, START_MS)],
    )  # fmt: skip
    rows = {row["withheld"]: row for row in card.ablation}
    assert set(rows) == {None, *FAMILIES}
    assert all(row["detected"] for row in rows.values())
    written = orjson.loads((tmp_path / "out" / "scorecard.json").read_bytes())
    assert len(written["ablation"]) == len(FAMILIES) + 1
    assert "| mini | swarm |" in card.markdown() and "without infrastructure" in card.markdown()
