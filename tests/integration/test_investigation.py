"""The investigation CLI on the embedded ClickHouse: campaigns, a campaign's case (text, JSON and
the HTML page), an account, alerts and decisions — and the decisions the enforcer landed about them."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from clickhouse_connect.driver.client import Client

from extractguard.cli import main
from extractguard.investigation import commands
from extractguard.investigation.source import Source
from extractguard.storage import migrate
from extractguard.storage.client import connect

pytestmark = pytest.mark.clickhouse
T0 = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)
MEMBERS = [f"acct-m{i}" for i in range(6)]
ORGANIC = [f"acct-o{i}" for i in range(10)]
EVENT_COLUMNS = ["event_id", "event_time", "account_id", "org_id", "api_key_hash", "account_created",
                 "client_ip_prefix", "tls_ja4", "operation_name", "provider_name", "request_model", "turn_index",
                 "output_tokens", "request_logprobs", "request_temperature", "prompt_template_hash"]  # fmt: skip


@pytest.fixture
def client(embedded_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    with pytest.MonkeyPatch.context() as patch:
        patch.undo()  # the marker allows ClickHouse; the session fixture outlives the guard
        handle = connect(f"chdb://{embedded_path}")
    while migrate.revert(handle):
        pass
    migrate.apply(handle, {"events_ttl_days": 3650})
    rows: list[list[Any]] = []
    for minute in range(30):
        at = T0 + datetime.timedelta(minutes=minute)
        for i, account in enumerate(MEMBERS):  # one proxy prefix, one client, fresh accounts, greedy harvest
            young = T0 - datetime.timedelta(hours=2)
            rows.append([f"m{minute}-{i}", at, account, f"org-m{i % 3}", f"key-{account}", young, "203.0.113.0/24",
                         "t13d_harvest", "chat", "p", "m-1", 0, 2400, True, 0.0, "tpl-sweep"])  # fmt: skip
        for i, account in enumerate(ORGANIC):
            aged = T0 - datetime.timedelta(days=90)
            rows.append([f"o{minute}-{i}", at, account, f"org-o{i}", f"key-{account}", aged, f"198.51.{i}.0/24",
                         "t13d_browser", "chat", "p", "m-1", minute % 4, 300, False, 0.7, f"tpl-{i}"])  # fmt: skip
    handle.insert("events", rows, column_names=EVENT_COLUMNS)
    fingerprints = [
        ("ip_prefix:203.0.113.0/24", 40.5, 6),
        ("tls_ja4:t13d_harvest", 31.0, 6),
        ("template:tpl-sweep", 20.0, 6),
    ]
    for version, (status, members) in enumerate([("new", MEMBERS[:3]), ("growing", MEMBERS)]):
        handle.insert(
            "campaigns",
            [["cmp-test", status, None, None, T0, T0 + datetime.timedelta(minutes=29),
              T0 + datetime.timedelta(minutes=10 + version * 19), "warning", 88.0, members, len(members),
              len(members), fingerprints, [], 0, version]],
            column_names=["campaign_id", "status", "merged_into", "split_from", "first_seen", "last_seen", "updated",
                          "severity", "score", "members", "members_total", "shaped_members", "fingerprints",
                          "fronting_orgs", "kafka_partition", "kafka_offset"],
        )  # fmt: skip
    handle.insert(
        "alerts",
        [["a" * 32, "extraction_campaign:campaign:cmp-test", "extraction_campaign", "warning", "firing",
          "Accounts linked into one actor <script>alert(1)</script>", "campaign", "cmp-test", [], MEMBERS,
          T0, T0 + datetime.timedelta(minutes=29), T0 + datetime.timedelta(minutes=30), {}, 0, 0]],
        column_names=["alert_id", "dedup_key", "rule", "severity", "status", "summary", "entity_kind", "entity",
                      "detection_ids", "accounts", "first_seen", "last_seen", "fired_at", "labels",
                      "kafka_partition", "kafka_offset"],
    )  # fmt: skip

    def ask(sql: str) -> tuple[list[str], list[list[Any]]]:
        result = handle.query(sql, settings={"readonly": 1})
        return list(result.column_names), [list(r) for r in result.result_rows]

    monkeypatch.setattr(commands, "SOURCE", lambda: Source(ask))
    yield handle
    handle.command("DROP TABLE IF EXISTS decisions")


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_campaigns_list_and_alerts_list(client: Client) -> None:
    table = _cli("campaigns", "list")
    assert "cmp-test" in table and "growing" in table and "ip_prefix:203.0.113.0/24" in table
    (row,) = orjson.loads(_cli("campaigns", "list", "--json"))
    assert (row["campaign_id"], row["members_total"], row["status"]) == ("cmp-test", 6, "growing")
    assert orjson.loads(_cli("campaigns", "list", "--status", "closed", "--json")) == []
    (alert,) = orjson.loads(_cli("alerts", "list", "--json"))
    assert (alert["rule"], alert["accounts_named"]) == ("extraction_campaign", 6)


def test_campaign_case_says_why_the_accounts_were_linked(client: Client, tmp_path: Path) -> None:
    case = orjson.loads(_cli("campaigns", "show", "cmp-test", "--json"))
    by_fingerprint = {f["fingerprint"]: f for f in case["fingerprints"]}
    assert by_fingerprint["ip_prefix:203.0.113.0/24"]["members_using"] == 6
    assert by_fingerprint["ip_prefix:203.0.113.0/24"]["accounts_using"] == 6  # nobody else behind it
    assert {m["account_id"] for m in case["members"]} == set(MEMBERS)
    assert [t["status"] for t in case["timeline"]] == ["new", "growing"]
    assert case["decisions"] == []  # the decisions table exists (migration 0030); none about them
    members = {r["account_id"]: r for r in case["tells_members"]}
    reference = {r["account_id"]: r for r in case["tells_reference"]}
    assert set(members) == set(MEMBERS) and set(reference) == set(ORGANIC)
    assert all(r["logprobs"] == 1 and r["young_account"] == 1 for r in members.values())
    assert all(r["logprobs"] == 0 and r["young_account"] == 0 for r in reference.values())

    text = _cli("campaigns", "show", "cmp-test")
    assert "Why linked" in text and "Decisions" in text and "SELECT" in text

    page = tmp_path / "case.html"
    _cli("campaigns", "show", "cmp-test", "--html", str(page))
    html = page.read_text()
    assert "Why these accounts were linked" in html
    assert "of the 6 accounts seen on it in these hours, 6 are members" in html
    assert "Tell young_account: 100% of members&#x27; requests against 0% of the organic reference&#x27;s." in html
    assert len(re.findall(r'<img alt="plot" src="data:image/png;base64,', html)) == 4
    assert "<script>" not in html and "&lt;script&gt;" in html  # text from the data is escaped
    assert "http://" not in html and "https://" not in html  # self-contained: nothing to fetch

    missing = CliRunner().invoke(main, ["campaigns", "show", "cmp-nope"])
    assert missing.exit_code == 1 and "no campaign cmp-nope" in missing.output


def test_account_view(client: Client) -> None:
    view = orjson.loads(_cli("accounts", "show", "acct-m0", "--json", "--bucket", "10m"))
    assert view["account"]["requests"] == 30 and view["account"]["logprobs"] == 1
    assert sum(b["requests"] for b in view["requests"]) == 30 and len(view["requests"]) == 3
    assert [c["campaign_id"] for c in view["campaigns"]] == ["cmp-test"]
    assert [a["rule"] for a in view["alerts"]] == ["extraction_campaign"]
    assert "Tells" in _cli("accounts", "show", "acct-m0")
    assert CliRunner().invoke(main, ["accounts", "show", "acct-nobody"]).exit_code == 1


def test_decisions_about_the_members_are_in_their_cases(client: Client) -> None:
    # The enforcer's table (migration 0030): one row per decision version, by target.
    client.insert(
        "decisions",
        [["d1", "account", "acct-m1", "throttle", "active", T0, T0, T0]],
        column_names=["decision_id", "scope", "entity", "action", "status", "decided_at", "expires_at", "updated_at"],
    )
    case = orjson.loads(_cli("campaigns", "show", "cmp-test", "--json"))
    assert [(d["entity"], d["action"]) for d in case["decisions"]] == [("acct-m1", "throttle")]
