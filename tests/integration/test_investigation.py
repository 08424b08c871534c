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
import stix2
from click.testing import CliRunner
from clickhouse_connect.driver.client import Client

from extractguard.cli import main
from extractguard.investigation import commands
from extractguard.investigation.source import Source
from tests.conftest import migrated_client, read_only_query
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.clickhouse
T0 = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)
MEMBERS = [f"acct-m{i}" for i in range(6)]
ORGANIC = [f"acct-o{i}" for i in range(10)]
NEAR = "acct-near"
RESELLER = "acct-r"  # one key fronting four end users: two harvest with the campaign, two are honest
HARVESTING_END_USERS = [f"{RESELLER}/eu:eu{i}" for i in range(2)]
EVENT_COLUMNS = ["event_id", "event_time", "account_id", "org_id", "api_key_hash", "account_created",
                 "client_ip_prefix", "tls_ja4", "operation_name", "provider_name", "request_model", "turn_index",
                 "output_tokens", "request_logprobs", "request_temperature", "prompt_template_hash",
                 "end_user_id"]  # fmt: skip


@pytest.fixture
def client(embedded_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    handle = migrated_client(embedded_path, events_ttl_days=3650)
    rows: list[list[Any]] = []
    for minute in range(30):
        at = T0 + datetime.timedelta(minutes=minute)
        for i, account in enumerate(MEMBERS):  # one proxy prefix, one client, fresh accounts, greedy harvest
            young = T0 - datetime.timedelta(hours=2)
            rows.append([f"m{minute}-{i}", at, account, f"org-m{i % 3}", f"key-{account}", young, "203.0.113.0/24",
                         "t13d_harvest", "chat", "p", "m-1", 0, 2400, True, 0.0, "tpl-sweep", None])  # fmt: skip
        for i, account in enumerate(ORGANIC):
            aged = T0 - datetime.timedelta(days=90)
            rows.append([f"o{minute}-{i}", at, account, f"org-o{i}", f"key-{account}", aged, f"198.51.{i}.0/24",
                         "t13d_browser", "chat", "p", "m-1", minute % 4, 300, False, 0.7, f"tpl-{i}",
                         None])  # fmt: skip
        if minute % 10 == 0:  # not linked (yet): the campaign's client and template from elsewhere
            rows.append([f"n{minute}", at, NEAR, "org-near", "key-near", None, "100.64.0.0/24", "t13d_harvest", "chat",
                         "p", "m-1", 0, 900, False, 0.7, "tpl-sweep", None])  # fmt: skip
        if minute % 2 == 0:  # the reseller's end users, every other minute (quiet minutes between)
            for i in range(4):
                harvest = i < 2
                rows.append([f"r{minute}-{i}", at, RESELLER, "org-reseller", "key-reseller", None, "192.0.2.0/24",
                             "t13d_harvest" if harvest else "t13d_app", "chat", "p", "m-1", 0 if harvest else 1,
                             1800 if harvest else 200, harvest, 0.0 if harvest else 0.7,
                             "tpl-sweep" if harvest else "tpl-app", f"eu{i}"])  # fmt: skip
    handle.insert("events", rows, column_names=EVENT_COLUMNS)
    fingerprints = [
        ("ip_prefix:203.0.113.0/24", 40.5, 6),
        ("tls_ja4:t13d_harvest", 31.0, 6),
        ("template:tpl-sweep", 20.0, 6),
    ]
    for version, (status, members) in enumerate([("new", MEMBERS[:3]), ("growing", MEMBERS + HARVESTING_END_USERS)]):
        handle.insert(
            "campaigns",
            [["cmp-test", status, None, None, T0, T0 + datetime.timedelta(minutes=29),
              T0 + datetime.timedelta(minutes=10 + version * 19), "warning", 88.0, members, len(members),
              len(members), fingerprints, [], 0, version]],
            column_names=["campaign_id", "status", "merged_into", "split_from", "first_seen", "last_seen", "updated",
                          "severity", "score", "members", "members_total", "shaped_members", "fingerprints",
                          "fronting_orgs", "kafka_partition", "kafka_offset"],
        )  # fmt: skip
    handle.command("OPTIMIZE TABLE campaigns FINAL")  # a merge, as the server does when it pleases
    assert handle.command("SELECT count() FROM campaigns") == 1  # the newest version only, from here on
    handle.insert(
        "alerts",
        [["a" * 32, "extraction_campaign:campaign:cmp-test", "extraction_campaign", "warning", "firing",
          "Accounts linked into one actor <script>alert(1)</script>", "campaign", "cmp-test", [], MEMBERS,
          T0, T0 + datetime.timedelta(minutes=29), T0 + datetime.timedelta(minutes=30), {}, 0, 0]],
        column_names=["alert_id", "dedup_key", "rule", "severity", "status", "summary", "entity_kind", "entity",
                      "detection_ids", "accounts", "first_seen", "last_seen", "fired_at", "labels",
                      "kafka_partition", "kafka_offset"],
    )  # fmt: skip
    monkeypatch.setattr(commands, "SOURCE", lambda: Source(read_only_query(handle)))
    yield handle
    handle.command("DROP TABLE IF EXISTS decisions")


def test_campaigns_list_and_alerts_list(client: Client) -> None:
    table = run_cli("campaigns", "list")
    assert "cmp-test" in table and "growing" in table and "ip_prefix:203.0.113.0/24" in table
    (row,) = orjson.loads(run_cli("campaigns", "list", "--json"))
    assert (row["campaign_id"], row["members_total"], row["status"]) == ("cmp-test", 8, "growing")
    assert orjson.loads(run_cli("campaigns", "list", "--status", "closed", "--json")) == []
    (alert,) = orjson.loads(run_cli("alerts", "list", "--json"))
    assert (alert["rule"], alert["accounts_named"]) == ("extraction_campaign", 6)


def test_campaign_case_says_why_the_accounts_were_linked(client: Client, tmp_path: Path) -> None:
    case = orjson.loads(run_cli("campaigns", "show", "cmp-test", "--json"))
    by_fingerprint = {f["fingerprint"]: f for f in case["fingerprints"]}
    assert by_fingerprint["ip_prefix:203.0.113.0/24"]["members_using"] == 6
    assert by_fingerprint["ip_prefix:203.0.113.0/24"]["accounts_using"] == 6  # nobody else behind it
    assert {m["member"] for m in case["members"]} == set(MEMBERS + HARVESTING_END_USERS)
    assert case["decisions"] == []  # the decisions table exists (migration 0030); none about them
    members = {r["subject"]: r for r in case["tells_members"]}
    reference = {r["subject"]: r for r in case["tells_reference"]}
    honest_end_users = {f"{RESELLER}/eu:eu{i}" for i in (2, 3)}
    assert set(members) == set(MEMBERS + HARVESTING_END_USERS) and set(reference) == set(ORGANIC) | honest_end_users | {
        NEAR
    }
    assert all(members[m]["logprobs"] == 1 and members[m]["young_account"] == 1 for m in MEMBERS)
    assert all(r["logprobs"] == 0 and r["young_account"] == 0 for r in reference.values())

    text = run_cli("campaigns", "show", "cmp-test")
    assert "Why linked" in text and "Decisions" in text and "SELECT" in text

    page = tmp_path / "case.html"
    run_cli("campaigns", "show", "cmp-test", "--html", str(page))
    html = page.read_text()
    assert "Why these accounts were linked" in html
    assert "of the 6 accounts seen on it in these hours, 6 are members" in html
    assert "Tell logprobs: 100% of members&#x27; requests against 0% of the organic reference&#x27;s." in html
    assert (
        len(re.findall(r'<img alt="plot" src="data:image/png;base64,', html)) == 5
    )  # the harvest per hour, fingerprints, tells, growth, activity
    assert "<script>" not in html and "&lt;script&gt;" in html  # text from the data is escaped
    assert "http://" not in html and "https://" not in html  # self-contained: nothing to fetch

    missing = CliRunner().invoke(main, ["campaigns", "show", "cmp-nope"])
    assert missing.exit_code == 1 and "no campaign cmp-nope" in missing.output


def test_account_view(client: Client) -> None:
    view = orjson.loads(run_cli("accounts", "show", "acct-m0", "--json", "--bucket", "10m"))
    assert view["account"]["requests"] == 30 and view["account"]["logprobs"] == 1
    assert sum(b["requests"] for b in view["requests"]) == 30 and len(view["requests"]) == 3
    assert [c["campaign_id"] for c in view["campaigns"]] == ["cmp-test"]
    assert [a["rule"] for a in view["alerts"]] == ["extraction_campaign"]
    assert "Tells" in run_cli("accounts", "show", "acct-m0")
    assert CliRunner().invoke(main, ["accounts", "show", "acct-nobody"]).exit_code == 1
    reseller = orjson.loads(run_cli("accounts", "show", RESELLER, "--json"))  # its end users are members
    assert [c["campaign_id"] for c in reseller["campaigns"]] == ["cmp-test"]


def test_decisions_about_the_members_are_in_their_cases(client: Client) -> None:
    # The enforcer's table (migration 0030): one row per decision version, by target.
    client.insert(
        "decisions",
        [["d1", "account", "acct-m1", "throttle", "active", T0, T0, T0]],
        column_names=["decision_id", "scope", "entity", "action", "status", "decided_at", "expires_at", "updated_at"],
    )
    case = orjson.loads(run_cli("campaigns", "show", "cmp-test", "--json"))
    assert [(d["entity"], d["action"]) for d in case["decisions"]] == [("acct-m1", "throttle")]
    client.insert(
        "decisions",
        [["d2", "account", "acct-m2", "throttle", "active", T0, T0, T0]],
        column_names=["decision_id", "scope", "entity", "action", "status", "decided_at", "expires_at", "updated_at"],
    )
    from extractguard.investigation import case as case_module

    with pytest.MonkeyPatch.context() as patch:  # a case with more decisions than it shows says so
        patch.setattr(case_module, "MAX_DECISIONS", 1)
        assert "(1 more row not shown of 2: --json or SQL for all)" in run_cli("campaigns", "show", "cmp-test")


def test_the_timeline_keeps_every_version_after_a_merge(client: Client) -> None:
    # The fixture merged `campaigns` down to its newest row; the versions table keeps both.
    case = orjson.loads(run_cli("campaigns", "show", "cmp-test", "--json"))
    assert [(t["status"], t["members_total"]) for t in case["timeline"]] == [("new", 3), ("growing", 8)]
    assert "campaign_versions" in case["further_sql"]["every version the resolver published"]
    assert "growing" in run_cli("campaigns", "show", "cmp-test").split("Timeline")[1]


def test_the_take_equals_sql_over_the_members_events(client: Client, tmp_path: Path) -> None:
    case = orjson.loads(run_cli("campaigns", "show", "cmp-test", "--json"))
    requests, tokens = client.query(
        "SELECT count(), sum(output_tokens) FROM events WHERE account_id LIKE 'acct-m%' "
        "OR (account_id = 'acct-r' AND end_user_id IN ('eu0', 'eu1'))"
    ).result_rows[0]
    take = case["take"]
    assert (
        (take["requests"], take["output_tokens"]) == (requests, tokens) == (6 * 30 + 2 * 15, 6 * 30 * 2400 + 30 * 1800)
    )
    assert (take["accounts"], take["orgs"], take["keys"], take["end_users"]) == (7, 4, 7, 2)
    assert take["last_request_ms"] - take["first_request_ms"] == 29 * 60_000
    assert sum(h["requests"] for h in case["harvest"]) == requests
    # The end users behind the reseller are members, and the reseller is named as fronting them.
    (fronting,) = case["fronting"]
    assert (fronting["account_id"], fronting["org_id"]) == (RESELLER, "org-reseller")
    assert (fronting["end_users_in_campaign"], fronting["end_users_total"]) == (2, 4)
    text = run_cli("campaigns", "show", "cmp-test")
    assert f"took {requests:,} requests and {tokens:,} output tokens" in text
    assert "fronted by org(s) org-reseller through acct-r (2 of its 4 end users)" in text
    assert "acct-r/eu:eu0" in text

    page = tmp_path / "case.html"
    run_cli("campaigns", "show", "cmp-test", "--html", str(page))
    html = page.read_text()
    assert f"took {requests:,} requests and {tokens:,} output tokens" in html
    assert "acct-r/eu:eu1" in html and "org-reseller" in html
    # Header, take, verdict and every chart come before the first long table.
    first_table = html.index("<h2>Linking fingerprints, in full</h2>")
    assert html.rindex('<img alt="plot"') < first_table
    assert html.index("The take:") < html.index("Why these accounts were linked") < first_table


def test_cut_tables_say_how_many_rows_they_cut(client: Client, tmp_path: Path) -> None:
    from extractguard.investigation import case_page

    page = tmp_path / "case.html"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(case_page, "MEMBERS_SHOWN", 3)
        run_cli("campaigns", "show", "cmp-test", "--html", str(page))
    assert "(5 more rows not shown of 8: --json or SQL for all)" in page.read_text()
    assert "(none)" not in run_cli("alerts", "list")


def test_since_counts_from_the_data_not_the_wall_clock(client: Client) -> None:
    # The fixture's data is days old: a replay. Within 1h of its newest evidence it is all there.
    (row,) = orjson.loads(run_cli("campaigns", "list", "--since", "1h", "--json"))
    assert row["campaign_id"] == "cmp-test"
    assert len(orjson.loads(run_cli("alerts", "list", "--since", "1h", "--json"))) == 1


def test_alerts_list_names_how_many_accounts_and_event_times(client: Client) -> None:
    table = run_cli("alerts", "list")
    header, _rule, row = table.splitlines()[:3]
    assert "accounts_named" in header and "first_seen (UTC)" in header and "_ms" not in header
    assert row.split()[5] == "6"  # accounts_named, not "-"
    assert "2026-11-30 12:29:00" in row  # last_seen is event time, not when the alerter ran


def test_decisions_list_reads_the_configured_clickhouse(client: Client) -> None:
    from extractguard.cli import main as app
    from extractguard.investigation.commands import decisions_list

    assert app.commands["decisions"].commands["list"] is decisions_list  # type: ignore[attr-defined]
    columns = ["decision_id", "scope", "entity", "action", "status", "campaign_id", "decided_at", "expires_at",
               "updated_at"]  # fmt: skip
    client.insert(
        "decisions",
        [["dec-1", "account", "acct-m1", "throttle", "active", "cmp-test", T0, T0, T0],
         ["dec-1", "account", "acct-m1", "suspend", "active", "cmp-test", T0, T0, T0 + datetime.timedelta(hours=1)],
         ["dec-2", "account", f"{RESELLER}/eu:eu0", "observe", "pending_approval", "cmp-test", T0, T0, T0],
         ["dec-3", "ip_prefix", "198.51.0.0/24", "observe", "active", None, T0, T0, T0]],
        column_names=columns,
    )  # fmt: skip
    listed = orjson.loads(run_cli("decisions", "list", "--json"))
    assert [(d["decision_id"], d["action"]) for d in listed] == [("dec-1", "suspend"), ("dec-2", "observe"),
                                                                  ("dec-3", "observe")]  # fmt: skip
    assert [d["decision_id"] for d in orjson.loads(run_cli("decisions", "list", "--account", "acct-m1", "--json"))] == [
        "dec-1"
    ]
    assert [d["entity"] for d in orjson.loads(run_cli("decisions", "list", "--account", RESELLER, "--json"))] == [
        f"{RESELLER}/eu:eu0"
    ]
    by_campaign = orjson.loads(run_cli("decisions", "list", "--campaign", "cmp-test", "--json"))
    assert {d["decision_id"] for d in by_campaign} == {"dec-1", "dec-2"}
    assert [d["decision_id"] for d in orjson.loads(run_cli("decisions", "list", "--pending", "--json"))] == ["dec-2"]
    assert "acct-m1" in run_cli("decisions", "list", "--account", "acct-m1")


def test_similar_subjects_not_yet_linked(client: Client, tmp_path: Path) -> None:
    case = orjson.loads(run_cli("campaigns", "show", "cmp-test", "--json"))
    (near,) = case["similar"]  # organic accounts and the reseller's honest end users share nothing
    assert (near["subject"], near["shared"], near["requests"], near["similar_total"]) == (NEAR, 2, 3, 1)
    assert sorted(near["shared_fingerprints"]) == ["template:tpl-sweep", "tls_ja4:t13d_harvest"]
    assert NEAR in run_cli("campaigns", "show", "cmp-test").split("Similar, not yet linked")[1]
    page = tmp_path / "case.html"
    run_cli("campaigns", "show", "cmp-test", "--html", str(page))
    assert NEAR in page.read_text().split("Similar, not yet linked")[1]


def test_related_actors_are_landed_and_shown_apart(client: Client, tmp_path: Path) -> None:
    from extractguard.campaigns.resolver import Campaign
    from extractguard.lander.rows import CAMPAIGN_SCHEMA, campaign_row

    ms = int(T0.timestamp() * 1000)
    actor = Campaign(
        "cmp-lab-b", "new", ms, ms + 60_000, ms + 60_000, ORGANIC[:4], 4, [("asn:63949", 12.0, 4)], 12.0,
        related=["cmp-test"], shared_with_related=["tls_ja4:t13d_harvest", "template:tpl-sweep"],
    )  # fmt: skip
    client.insert("campaigns", [campaign_row(actor.to_record(), 0, 99)], column_names=CAMPAIGN_SCHEMA.names)
    text = run_cli("campaigns", "show", "cmp-lab-b")
    assert "related actors (linked only by what many use): cmp-test; shared: tls_ja4:t13d_harvest" in text
    (version,) = client.query("SELECT related FROM campaign_versions WHERE campaign_id = 'cmp-lab-b'").result_rows
    assert version[0] == ["cmp-test"]
    page = tmp_path / "lab-b.html"
    run_cli("campaigns", "show", "cmp-lab-b", "--html", str(page))
    assert "related actors (linked only by what many use): cmp-test" in page.read_text()
    assert "related actors" not in run_cli("campaigns", "show", "cmp-test")


def test_a_campaign_exports_from_clickhouse_as_a_stix_bundle_without_its_accounts(client: Client) -> None:
    document = run_cli("indicators", "export", "cmp-test")
    bundle = stix2.parse(document, allow_custom=True)
    fingerprints = {o.x_extractguard_fingerprint for o in bundle.objects if o.type == "indicator"}
    assert fingerprints == {"ip_prefix:203.0.113.0/24", "tls_ja4:t13d_harvest", "template:tpl-sweep"}
    assert not any(member in document for member in MEMBERS) and "key-acct" not in document
    with_accounts = run_cli("indicators", "export", "cmp-test", "--include-accounts")
    assert all(member in with_accounts for member in MEMBERS)
