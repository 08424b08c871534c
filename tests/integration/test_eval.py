"""`make eval` in miniature: a labelled scenario through Kafka, the Faust worker, the alerter and
ClickHouse, scored against its ground truth; prompt text from a corpus never reaches Kafka."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from extractguard.cli import main
from extractguard.contracts.envelope import split
from extractguard.contracts.topics import GATEWAY_EVENTS
from extractguard.evaluation.run import Evaluation
from extractguard.kafka_offsets import end_offsets, read_since
from extractguard.settings import KafkaSettings
from extractguard.simulator.scenario import Scenario
from extractguard.simulator.stream_file import write_stream
from extractguard.simulator.traffic import scenario_start_ms

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

MARKER_WORDS = ("quokka", "marmalade", "zeppelin")


def test_a_scenario_is_scored_end_to_end(kafka: KafkaSettings, tmp_path: Path) -> None:
    corpus = tmp_path / "organic.jsonl"
    corpus.write_bytes(
        b"\n".join(orjson.dumps({"text": f"Tell me about the {w} number {i} please"}) for i in range(40)
                   for w in MARKER_WORDS)
    )  # fmt: skip
    scenario = tmp_path / "mini.yaml"
    scenario.write_text(
        "name: mini\nseed: 9\nduration_s: 1500\n"
        "organic: {accounts: 250, corpus: organic.jsonl}\n"
        "lookalikes: {eval_harness: {accounts: 1, rate_per_min: 30, at_s: 300, run_s: 300}}\n"
        "campaigns:\n"
        "  - {name: swarm, accounts: 150, start_s: 600, rate_per_min: 4, proxy: {prefixes: 2}}\n"
    )
    since = end_offsets(kafka, GATEWAY_EVENTS)
    out = tmp_path / "report"
    progress: list[str] = []
    home = tmp_path / "home"
    card = Evaluation("default", out, progress=progress.append, home=home).run([scenario])

    [score] = card.scenarios
    [swarm] = score.campaigns
    assert swarm.accounts == 150 and swarm.detected
    assert swarm.seconds_to_detect is not None and 0 < swarm.seconds_to_detect < 900
    assert 0 < swarm.requests_before_detection_fraction < 1  # type: ignore[operator]
    assert swarm.member_recall > 0.5 and swarm.cluster_precision is not None and swarm.cluster_precision > 0.8
    # Found as one actor by the campaign resolver, and paged as one campaign alert.
    assert swarm.resolved_as == 1 and swarm.resolved_member_recall > 0.8 and swarm.resolved_cluster_precision == 1.0
    assert swarm.alerts_by_rule.get("extraction_campaign") == 1 and score.organic_in_campaigns == {}
    assert set(score.organic_classes) == {"regular", "eval_harness"}
    assert score.extra["events_landed"] == score.events  # every event landed, joined to its label in ClickHouse
    assert any("events produced" in line for line in progress)

    written = orjson.loads((out / "scorecard.json").read_bytes())
    assert written["scenarios"][0]["campaigns"][0]["detected"] is True
    assert (out / "timelines" / "mini.png").read_bytes()[:4] == b"\x89PNG"
    assert "| mini | swarm | 150 |" in (out / "scorecard.md").read_text()

    raw = b"\n".join(line for value in read_since(kafka, GATEWAY_EVENTS, since) for line in split(value))
    assert raw.count(b'"event_id"') == score.events
    for word in MARKER_WORDS:
        assert word.encode() not in raw.lower()

    # What landed in ClickHouse: every label, and no trace of the prompts in any column of any row.
    labels = {
        row["label"]: row["n"]
        for row in _sql(home, "SELECT label, count() AS n FROM account_labels FINAL GROUP BY label")
    }
    assert labels == {"campaign": 150, "organic": score.organic_accounts}
    [members] = _sql(
        home,
        "SELECT uniqExact(m.account_id) AS n, uniqExact(m.campaign_id) AS campaigns, "
        "countIf(l.label = 'organic') AS organic FROM campaign_members m "
        "JOIN (SELECT * FROM account_labels FINAL) AS l ON l.account_id = m.account_id WHERE m.status != 'merged'",
    )
    assert members["campaigns"] == 1 and members["organic"] == 0
    assert members["n"] == round(swarm.resolved_member_recall * 150)
    for word in MARKER_WORDS:
        [row] = _sql(
            home, f"SELECT countIf(positionCaseInsensitive(formatRow('JSONEachRow', *), '{word}') > 0) AS n FROM events"
        )
        assert row["n"] == 0


def test_a_labelled_file_through_eval_stream_reproduces_its_scenarios_scorecard(
    kafka: KafkaSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "mini.yaml"
    path.write_text(
        "name: mini\nseed: 11\nduration_s: 1500\norganic: {accounts: 250}\n"
        "lookalikes: {researchers: {accounts: 3}}\n"
        "campaigns:\n  - {name: swarm, accounts: 150, start_s: 600, rate_per_min: 4, proxy: {prefixes: 2}}\n"
    )
    scenario = Scenario.from_yaml(path)
    start = scenario_start_ms(scenario, int(time.time() * 1000))
    files = write_stream(scenario, start, tmp_path / "files")  # what `extractguard simulate` writes
    simulated = Evaluation("default", tmp_path / "simulated", progress=lambda _l: None, home=tmp_path / "h1").run(
        [path], start_ms=start
    )
    # The CLI, as an operator would run it on their own export (its own data home: a fresh ClickHouse).
    monkeypatch.setenv("EXTRACTGUARD_HOME", str(tmp_path / "h2"))
    out = tmp_path / "stream"
    result = CliRunner().invoke(
        main,
        ["eval", "--stream", str(files.events), "--labels", str(files.labels), "--name", "mini",
         "--duration-s", "1500", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "## Done when" in result.output

    def scored(card: dict[str, Any]) -> dict[str, Any]:
        [score] = card["scenarios"]
        keep = ("events", "campaigns", "organic_classes", "organic_accounts_flagged", "organic_alerts",
                "organic_alerts_per_day", "alerts_by_rule", "organic_in_campaigns")  # fmt: skip
        return {k: score[k] for k in keep} | {"landed": score["extra"]["events_landed"]}

    replayed = orjson.loads((out / "scorecard.json").read_bytes())
    expected = scored(simulated.as_dict())
    expected["campaigns"][0]["kind"] = "swarm"  # labels carry no kind: a file's campaign is judged by its name
    assert scored(replayed) == expected
    assert expected["campaigns"][0]["detected"] and expected["landed"] == expected["events"]
    assert replayed["overall"]["done_when"] == simulated.overall()["done_when"]


def _sql(home: Path, query: str) -> list[dict[str, Any]]:
    # Another process opens the evaluation's database: this one may already hold a chdb engine.
    env = {**os.environ, "EXTRACTGUARD_CLICKHOUSE_DSN": f"chdb://{home / 'clickhouse'}"}
    done = subprocess.run(
        [sys.executable, "-m", "extractguard.cli", "sql", "--format", "json", query],
        env=env, capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    return orjson.loads(done.stdout)  # type: ignore[no-any-return]
