"""The enforcer service on the real broker: a campaign large enough for the approval gate waits
(its decisions enforce nothing) until `extractguard decisions approve` names its group; then a
bouncer's cache, fed from the topic as the LiteLLM hook's is, throttles it; at its TTL the decision
stops applying with no message, and the enforcer republishes it as expired. A rejected group is
never enforced, and an approval that does not validate is dead-lettered."""

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
from extractguard.contracts.enforcement import ENFORCEMENT_APPROVALS, ENFORCEMENT_DECISIONS
from extractguard.contracts.topics import CAMPAIGNS, DETECTIONS, dlq_name
from extractguard.enforcement.service import Enforcer
from extractguard.investigation import commands as investigation_commands
from extractguard.investigation.source import Source
from extractguard.kafka_offsets import end_offsets, read_since, start_group_at_end
from extractguard.settings import EnforcerSettings, KafkaSettings
from extractguard.storage import migrate
from extractguard.storage.client import connect
from extractguard_gateway.enforcement.cache import DecisionCache, Identity
from extractguard_gateway.enforcement.feed import DecisionFeed
from tests.integration.conftest import start_in_thread, start_lander, stop_in_thread

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

POLICY = """\
version: 1
revision: gate-test
approval: {min_accounts: 4}
rules:
  - name: campaign
    when: {source: campaign, min_members: 3}
    targets: [account]
    ladder:
      - {action: throttle, ttl: 4s, params: {rate_factor: 0.5}}
"""


def _campaign(campaign_id: str, members: list[str]) -> dict[str, Any]:
    return {
        "schema_version": 1, "campaign_id": campaign_id, "status": "growing", "first_seen_ms": 0, "last_seen_ms": 0,
        "updated_ms": 0, "severity": "warning", "score": 30.0, "members": members, "members_total": len(members),
        "shaped_members": len(members), "fingerprints": [],
    }  # fmt: skip


def _until(check: Callable[[], bool], timeout_s: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_decision_waiting_for_approval_is_enforced_only_once_approved_and_stops_at_expiry(
    kafka: KafkaSettings, tmp_path: Path, run_id: str, embedded_path: Path
) -> None:
    client = connect(f"chdb://{embedded_path}")
    migrate.apply(client, {"events_ttl_days": 30})
    lander, lock, landing = start_lander(kafka, client, f"extractguard-lander-gate-{run_id}")
    (tmp_path / "policy.yaml").write_text(POLICY)
    group = f"extractguard-enforcer-gate-{run_id}"
    start_group_at_end(kafka, group, [CAMPAIGNS, DETECTIONS, ENFORCEMENT_APPROVALS])
    since = end_offsets(kafka, ENFORCEMENT_DECISIONS)
    dlq_since = end_offsets(kafka, dlq_name(ENFORCEMENT_APPROVALS))
    settings = EnforcerSettings(group_id=group, policy_file=tmp_path / "policy.yaml", expire_interval_s=0.5)
    enforcer = Enforcer(settings, kafka)
    running = start_in_thread(enforcer)
    cache = DecisionCache()
    feed = DecisionFeed(cache, kafka.bootstrap_servers, bouncer="test", reports_topic=None).start()
    producer = Producer(kafka.client_config())
    approved = [f"gate-{run_id}-{i}" for i in range(4)]
    rejected = [f"nogo-{run_id}-{i}" for i in range(4)]

    def ours() -> list[dict[str, Any]]:
        records = [orjson.loads(v) for v in read_since(kafka, ENFORCEMENT_DECISIONS, since)]
        return [r for r in records if r["entity"] in approved + rejected]

    try:
        assert cache.ready.wait(30)
        _until(lambda: enforcer.health.last_beat is not None, what="the enforcer's first poll")
        for campaign_id, members in ((f"cmp-{run_id[:10]}a1", approved), (f"cmp-{run_id[:10]}a2", rejected)):
            producer.produce(CAMPAIGNS, key=campaign_id.encode(), value=orjson.dumps(_campaign(campaign_id, members)))
        producer.produce(ENFORCEMENT_APPROVALS, value=b'{"schema_version": 1, "ref": "grp-nothing"}')
        producer.flush(10)
        _until(lambda: len(ours()) == 8, what="eight pending decisions")
        pending = ours()
        assert {d["status"] for d in pending} == {"pending_approval"}
        _until(lambda: all(cache.in_force(Identity(account=a), int(time.time() * 1000)) for a in approved), 10,
               "the bouncer's cache")  # fmt: skip
        assert {cache.verdict(Identity(account=a), int(time.time() * 1000)).outcome for a in approved} == {"observed"}

        # `decisions list` reads the audit trail the lander landed in ClickHouse, not the topic.
        def ask(sql: str) -> tuple[list[str], list[list[Any]]]:
            with lock:
                result = client.query(sql)
            return list(result.column_names), [list(r) for r in result.result_rows]

        def landed_pending() -> int:
            with lock:
                return int(client.command(
                    f"SELECT count() FROM decisions FINAL WHERE status = 'pending_approval' "
                    f"AND entity IN {tuple(approved + rejected)}"
                ))  # fmt: skip

        _until(lambda: landed_pending() == 8, 60, "the pending decisions landed")
        runner = CliRunner()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(investigation_commands, "SOURCE", lambda: Source(ask))
            listed = runner.invoke(main, ["decisions", "list", "--pending"])
        assert listed.exit_code == 0, listed.output
        groups = {d["entity"]: d["group_id"] for d in pending}
        assert f"waiting: {groups[approved[0]]}  4 decisions (throttle)" in listed.output
        result = runner.invoke(main, ["decisions", "approve", groups[approved[0]], "--by", "oncall", "--note", "ok"])
        assert result.exit_code == 0, result.output
        result = runner.invoke(main, ["decisions", "reject", groups[rejected[0]], "--by", "oncall"])
        assert result.exit_code == 0, result.output
        assert runner.invoke(main, ["decisions", "approve", "grp-000000000000"]).exit_code != 0

        def limited() -> bool:
            now = int(time.time() * 1000)
            return all((d := cache.in_force(Identity(account=a), now)) and d.effect.kind == "limit" for a in approved)

        _until(limited, what="the approved decisions in the cache")
        approved_at = time.time()
        answers = [cache.verdict(Identity(account=approved[0]), int(time.time() * 1000)).status for _ in range(4)]
        assert answers == [429, 200, 429, 200]
        assert all(cache.verdict(Identity(account=a), int(time.time() * 1000)).admitted for a in rejected)
        # At its TTL the decision stops applying in the cache by itself...
        time.sleep(max(0.0, approved_at + 4.5 - time.time()))
        assert cache.verdict(Identity(account=approved[0]), int(time.time() * 1000)).outcome == "admitted"
        # ...and the enforcer republishes it as expired, for the audit trail.
        _until(lambda: {d["status"] for d in ours() if d["entity"] in approved} >= {"expired"}, what="expiry records")
        newest = {d["entity"]: d for d in ours()}
        assert {newest[a]["status"] for a in approved} == {"expired"}
        assert {newest[a]["approval"]["by"] for a in approved} == {"oncall"}
        assert {newest[a]["status"] for a in rejected} == {"rejected"}
        dead = read_since(kafka, dlq_name(ENFORCEMENT_APPROVALS), dlq_since)
        assert dead == [b'{"schema_version": 1, "ref": "grp-nothing"}']

        # The audit trail: every decision in ClickHouse, its newest version with its approver.
        def landed() -> dict[str, tuple[Any, ...]]:
            with lock:
                rows = client.query(
                    "SELECT entity, status, approved_by, approval_note, campaign_id, policy_revision, expires_at"
                    f" FROM decisions FINAL WHERE entity IN {tuple(approved + rejected)}"
                ).result_rows
            return {r[0]: tuple(r) for r in rows}

        _until(lambda: {r[1] for r in landed().values()} == {"expired", "rejected"}, 60, "the decisions landed")
        rows = landed()
        assert {rows[a][1:6] for a in approved} == {("expired", "oncall", "ok", f"cmp-{run_id[:10]}a1", "gate-test")}
        assert {rows[a][1:3] for a in rejected} == {("rejected", "oncall")}
    finally:
        feed.stop()
        stop_in_thread(enforcer, running)
        stop_in_thread(lander, landing)
