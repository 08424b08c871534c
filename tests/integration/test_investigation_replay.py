"""The investigation CLI on a replayed scenario: a reseller-fronted campaign (its members end users
behind two reseller accounts) among organic accounts, run through the detection state in this
process (no Kafka), landed into the embedded ClickHouse by the lander's own sinks, every campaign
version one insert as the lander makes them, then merged as a server would. What `campaigns show`,
the case page and `decisions list` say is checked against SQL over what landed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from extractguard.contracts.topics import ALERTS, CAMPAIGNS, GATEWAY_EVENTS
from extractguard.evaluation.in_process import InProcessResult, replay_in_process
from extractguard.evaluation.sources import SimulatedReplay
from extractguard.investigation import commands
from extractguard.investigation.source import Source
from extractguard.lander.blocks import Block
from extractguard.lander.sinks import Sink, sinks
from extractguard.simulator.scenario import CampaignSpec, Evasion, LookAlikes, OrganicSpec, Reseller, Scenario
from tests.conftest import migrated_client, read_only_query
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.clickhouse
START_MS = 1_795_000_020_000 - 1_795_000_020_000 % 86_400_000 + 9 * 3_600_000
SCENARIO = Scenario(
    name="behind", seed=9, duration_s=2100, organic=OrganicSpec(accounts=250),
    lookalikes=LookAlikes(reseller=Reseller(accounts=200, rate_median_per_min=0.5, end_user_accounts=2)),
    campaigns=[CampaignSpec(name="downstream", accounts=150, start_s=600, rate_per_min=4, signup_waves=3,
                            wave_interval_s=500,
                            evasion=Evasion(via_reseller=True))],
)  # fmt: skip


def _land(client: Client, sink: Sink, payloads: list[dict[str, Any]]) -> None:
    block = Block(sink.schema)
    for offset, payload in enumerate(payloads):
        block.add(sink.row(payload, 0, offset))
    client.insert_arrow(sink.table, block.to_arrow(), settings=dict(sink.insert_settings))


@pytest.fixture(scope="module")
def replayed() -> InProcessResult:
    return replay_in_process(SimulatedReplay(SCENARIO, START_MS))


@pytest.fixture
def client(embedded_path: Path, replayed: InProcessResult, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    handle = migrated_client(embedded_path, events_ttl_days=3650)
    landed = sinks()
    _land(handle, landed[GATEWAY_EVENTS], [row.event for row in SimulatedReplay(SCENARIO, START_MS).events()])
    for record in replayed.campaign_records:  # one version per insert, as the lander lands them
        _land(handle, landed[CAMPAIGNS], [record])
    _land(handle, landed[ALERTS], replayed.alerts)
    handle.command("OPTIMIZE TABLE campaigns FINAL")
    monkeypatch.setattr(commands, "SOURCE", lambda: Source(read_only_query(handle)))
    yield handle
    handle.command("TRUNCATE TABLE IF EXISTS decisions")


def test_a_replayed_reseller_fronted_campaign_tells_its_whole_story(
    client: Client, replayed: InProcessResult, tmp_path: Path
) -> None:
    [record] = [c for c in replayed.campaigns.values() if c["status"] != "merged"]
    campaign_id = record["campaign_id"]
    case = orjson.loads(run_cli("campaigns", "show", campaign_id, "--json"))

    # The timeline: every version the resolver published, though campaigns kept only the newest.
    assert client.command(f"SELECT count() FROM campaigns WHERE campaign_id = '{campaign_id}'") == 1
    published = [r for r in replayed.campaign_records if r["campaign_id"] == campaign_id]
    assert len(published) > 1
    assert [t["updated_ms"] for t in case["timeline"]] == sorted({r["updated_ms"] for r in published})

    # The take: SQL's totals over the members' events (end users counted through the reseller's key).
    members = record["members"]
    assert members and all("/eu:" in m for m in members)
    requests, tokens, end_users = client.query(
        "SELECT count(), sum(output_tokens), uniqExact(end_user_id) FROM events "
        "WHERE concat(account_id, '/eu:', ifNull(end_user_id, '')) IN %(members)s",
        parameters={"members": members},
    ).result_rows[0]
    take = case["take"]
    assert (take["requests"], take["output_tokens"], take["end_users"]) == (requests, tokens, end_users)
    assert take["end_users"] == len(members) and take["accounts"] <= 2  # the reseller's two accounts
    assert sum(h["requests"] for h in case["harvest"]) == requests

    # End-user members and the reseller fronting them, on the text and the page.
    assert {m["member"] for m in case["members"]} == set(members)
    reseller_org = record["fronting_orgs"][0]
    assert {f["org_id"] for f in case["fronting"]} == {reseller_org}
    assert sum(f["end_users_in_campaign"] for f in case["fronting"]) == len(members)
    text = run_cli("campaigns", "show", campaign_id)
    assert f"took {requests:,} requests and {tokens:,} output tokens" in text and f"org(s) {reseller_org}" in text
    page = tmp_path / "case.html"
    run_cli("campaigns", "show", campaign_id, "--html", str(page))
    html = page.read_text()
    assert members[0] in html and reseller_org in html and f"{requests:,} requests" in html

    # decisions list: only what is in this ClickHouse, filtered by account.
    reseller_account = members[0].split("/eu:")[0]
    client.insert(
        "decisions",
        [["dec-a", "account", members[0], "observe", "active", campaign_id, 0, 0, 0],
         ["dec-b", "account", "acct-elsewhere", "throttle", "active", None, 0, 0, 0]],
        column_names=["decision_id", "scope", "entity", "action", "status", "campaign_id", "decided_at",
                      "expires_at", "updated_at"],
    )  # fmt: skip
    assert {d["decision_id"] for d in orjson.loads(run_cli("decisions", "list", "--json"))} == {"dec-a", "dec-b"}
    by_account = orjson.loads(run_cli("decisions", "list", "--account", reseller_account, "--json"))
    assert [d["entity"] for d in by_account] == [members[0]]
    by_campaign = orjson.loads(run_cli("decisions", "list", "--campaign", campaign_id, "--json"))
    assert [d["decision_id"] for d in by_campaign] == ["dec-a"]
