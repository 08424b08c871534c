"""Decisions made by hand on the real broker: `extractguard decisions add` reaches a bouncer's cache
(fed from the topic as the LiteLLM hook's is) within seconds through the enforcer, for one account
and for a campaign's members read from ClickHouse; `decisions lift` ends it as fast; the audit
trail in ClickHouse says who decided, who lifted, and why."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from confluent_kafka import Producer

from extractguard.cli import main
from extractguard.contracts.enforcement import ENFORCEMENT_APPROVALS
from extractguard.contracts.topics import CAMPAIGNS, DETECTIONS
from extractguard.enforcement.service import Enforcer
from extractguard.kafka_offsets import start_group_at_end
from extractguard.settings import EnforcerSettings, KafkaSettings
from extractguard.storage import migrate
from extractguard.storage.client import connect
from extractguard_gateway.enforcement.cache import DecisionCache, Identity
from extractguard_gateway.enforcement.feed import DecisionFeed
from tests.integration.conftest import start_in_thread, start_lander, stop_in_thread

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

#: A policy that never acts on its own here: every decision of the test is a person's.
POLICY = """\
version: 1
revision: manual-test
rules:
  - name: campaign
    when: {source: campaign, min_members: 1000}
    ladder:
      - {action: observe, ttl: 1h}
"""


def _until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_manual_suspend_and_its_lift_reach_the_bouncer_within_seconds_and_are_audited(
    kafka: KafkaSettings, tmp_path: Path, run_id: str, embedded_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXTRACTGUARD_CLICKHOUSE_DSN", f"chdb://{embedded_path}")
    client = connect(f"chdb://{embedded_path}")
    migrate.apply(client, {"events_ttl_days": 30})
    lander, lock, landing = start_lander(kafka, client, f"extractguard-lander-manual-{run_id}", batch_max_wait_s=0.3)
    (tmp_path / "policy.yaml").write_text(POLICY)
    group = f"extractguard-enforcer-manual-{run_id}"
    start_group_at_end(kafka, group, [CAMPAIGNS, DETECTIONS, ENFORCEMENT_APPROVALS])
    enforcer = Enforcer(EnforcerSettings(group_id=group, policy_file=tmp_path / "policy.yaml"), kafka)
    running = start_in_thread(enforcer)
    cache = DecisionCache()
    feed = DecisionFeed(cache, kafka.bootstrap_servers, bouncer="test", reports_topic=None).start()
    account = f"hand-{run_id}"
    campaign_id = f"cmp-{run_id[:10]}c1"
    members = [f"member-{run_id}-{i}" for i in range(3)]
    runner = CliRunner()

    def status(who: str) -> int:
        return cache.verdict(Identity(account=who), int(time.time() * 1000)).status

    def landed(sql: str) -> list[tuple[Any, ...]]:
        with lock:
            return [tuple(r) for r in client.query(sql).result_rows]

    try:
        assert cache.ready.wait(30)
        _until(lambda: enforcer.health.last_beat is not None, 30, "the enforcer's first poll")
        assert status(account) == 200
        added = runner.invoke(main, ["decisions", "add", "--account", account, "--action", "suspend", "--ttl", "24h",
                                     "--note", "case 4420: confirmed by hand", "--by", "ana"])  # fmt: skip
        assert added.exit_code == 0, added.output
        asked = time.monotonic()
        _until(lambda: status(account) == 403, 5, "the manual suspend at the bouncer")
        suspend_s = time.monotonic() - asked
        group_id = added.output.split("group ")[1].split(";")[0]

        lifted = runner.invoke(main, ["decisions", "lift", group_id, "--note", "wrong account", "--by", "bo"])
        assert lifted.exit_code == 0, lifted.output
        asked = time.monotonic()
        _until(lambda: status(account) == 200, 5, "the lift at the bouncer")
        lift_s = time.monotonic() - asked

        # A campaign's members, as ClickHouse holds them.
        campaign = {
            "schema_version": 1, "campaign_id": campaign_id, "status": "growing", "first_seen_ms": 0,
            "last_seen_ms": 0, "updated_ms": 0, "severity": "warning", "score": 30.0, "members": members,
            "members_total": 3, "shaped_members": 3, "fingerprints": [],
        }  # fmt: skip
        producer = Producer(kafka.client_config())
        producer.produce(CAMPAIGNS, key=campaign_id.encode(), value=orjson.dumps(campaign))
        producer.flush(10)
        _until(lambda: bool(landed(f"SELECT 1 FROM campaigns WHERE campaign_id = '{campaign_id}'")), 30, "the campaign")
        added = runner.invoke(main, ["decisions", "add", "--campaign", campaign_id, "--action", "throttle", "--ttl",
                                     "1h", "--param", "rate_factor=0.5", "--note", "the whole fleet"])  # fmt: skip
        assert added.exit_code == 0, added.output
        assert "3 accounts" in added.output
        _until(lambda: all(status(m) in (200, 429) and cache.in_force(Identity(account=m), int(time.time() * 1000))
                           for m in members), 5, "the campaign's throttle")  # fmt: skip

        def audit() -> dict[str, tuple[Any, ...]]:
            rows = landed(
                "SELECT entity, status, action, rule, evidence_source, approved_by, approval_note, reason, campaign_id"
                f" FROM decisions FINAL WHERE entity IN {(account, *members)}"
            )
            return {r[0]: r for r in rows}

        _until(lambda: len(audit()) == 4 and audit()[account][1] == "lifted", 30, "the decisions landed")
        rows = audit()
        assert rows[account][1:7] == ("lifted", "suspend", "manual", "manual", "ana", "case 4420: confirmed by hand")
        assert rows[account][7].startswith("lifted by bo: wrong account")
        assert {(*rows[m][1:5], rows[m][8]) for m in members} == {
            ("active", "throttle", "manual", "manual", campaign_id)
        }
        print(f"manual suspend at the bouncer in {suspend_s:.2f} s, lift in {lift_s:.2f} s")
    finally:
        feed.stop()
        stop_in_thread(enforcer, running)
        stop_in_thread(lander, landing)
