"""`make eval` in miniature: a labelled scenario through Kafka, the Faust worker, the alerter and
ClickHouse, scored against its ground truth; prompt text from a corpus never reaches Kafka."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from extractguard.contracts.envelope import split
from extractguard.contracts.topics import GATEWAY_EVENTS
from extractguard.evaluation.run import Evaluation
from extractguard.kafka_offsets import end_offsets, read_since
from extractguard.settings import KafkaSettings

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


def _sql(home: Path, query: str) -> list[dict[str, Any]]:
    # Another process opens the evaluation's database: this one may already hold a chdb engine.
    env = {**os.environ, "EXTRACTGUARD_CLICKHOUSE_DSN": f"chdb://{home / 'clickhouse'}"}
    done = subprocess.run(
        [sys.executable, "-m", "extractguard.cli", "sql", "--format", "json", query],
        env=env, capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    return orjson.loads(done.stdout)  # type: ignore[no-any-return]
