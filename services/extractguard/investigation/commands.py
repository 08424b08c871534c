"""`extractguard campaigns list|show`, `accounts show`, `alerts list`, `decisions list`: read what
landed in ClickHouse (through the lander's SQL door while it runs, directly otherwise); tables for
people, `--json` for scripts; `campaigns show ID --html FILE` writes the case page.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from extractguard.alerting.commands import parse_duration
from extractguard.investigation.tables import render

if TYPE_CHECKING:  # the readers load at use: every `extractguard` command imports this module
    from extractguard.investigation.case import Case
    from extractguard.investigation.source import Source


def _settings_source() -> Source:
    from extractguard.investigation.source import Source

    return Source.from_settings()


#: Tests replace this to read from a database of their own.
SOURCE: Callable[[], Source] = _settings_source


def _run(read: Callable[[Source], Any]) -> Any:
    from extractguard.investigation.case import CampaignNotFound
    from extractguard.storage.query import QueryError

    try:
        return read(SOURCE())
    except (QueryError, CampaignNotFound) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)


def _emit(value: Any, as_json: bool, people: Callable[[Any], str]) -> None:
    click.echo(orjson.dumps(value, default=str).decode() if as_json else people(value))


def _since(text: str | None) -> float | None:
    return None if text is None else parse_duration(text)


_json = click.option("--json", "as_json", is_flag=True, help="JSON for scripts instead of a table.")
_limit = click.option("--limit", default=50, show_default=True)


@click.command("list")
@click.option("--status", default=None, help="new, growing, active, dormant, closed or merged.")
@click.option("--since", default=None,
              help="Seen within this long (30m, 6h, 2d) of the newest campaign's last evidence, not of the wall "
                   "clock, so a replay or a copied database reads as it was.")  # fmt: skip
@_limit
@_json
def campaigns_list(status: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """Campaigns, most recently seen first."""
    from extractguard.investigation import views

    rows = _run(lambda s: views.campaigns(s, status, _since(since), limit))
    _emit(rows, as_json, render)


MEMBERS_SHOWN = 30
DECISION_COLUMNS = ["decision_id", "scope", "entity", "action", "status", "rule", "campaign_id", "decided_at_ms",
                    "expires_at_ms", "approval_reason"]  # fmt: skip


def _case_text(case: Case) -> str:
    from extractguard.investigation.case import (
        MEMBER_COLUMNS,
        SIMILAR_COLUMNS,
        decisions_total,
        fronted_by,
        related_line,
        take_line,
    )

    c = case.campaign
    fronting = fronted_by(case)
    head = (
        f"campaign {c['campaign_id']}  {c['status']}  {c['severity']}  score {c['score']:.1f}\n"
        f"{c['members_total']} members ({c['shaped_members']} extraction-shaped)"
        + (f", merged into {c['merged_into']}" if c.get("merged_into") else "")
        + (f", {fronting}" if fronting else "")
        + "\n"
        + take_line(case.take)
        + related_line(c)
    )
    decisions = (
        "no decisions table in this database yet"
        if case.decisions is None
        else render(case.decisions, total=decisions_total(case.decisions))
    )
    sections = [
        head,
        "Harvest per hour\n" + render(case.harvest, ["hour_ms", "requests", "output_tokens"], limit=48),
        "Why linked: the fingerprints they share (weight = -log10 p of this much sharing by chance)\n"
        + render(case.fingerprints, ["meaning", "weight", "sharers", "members_using", "accounts_using"], limit=30),
        "Tells: members against the organic reference (mean share of requests)\n" + render(_tell_table(case)),
        "Members (by first request; an end user behind a reseller's key as <account>/eu:<end user>)\n"
        + render(case.members, MEMBER_COLUMNS, limit=MEMBERS_SHOWN),
        "Fronting accounts (whose end users are members)\n"
        + render(
            case.fronting,
            ["account_id", "org_id", "end_users_in_campaign", "end_users_total", "campaign_requests", "requests"],
        ),
        "Similar, not yet linked: subjects sharing the campaign's fingerprints in its hours\n"
        + render(
            case.similar, SIMILAR_COLUMNS, limit=20, total=int(case.similar[0]["similar_total"]) if case.similar else 0
        ),
        "Timeline (every version the resolver published)\n" + render(case.timeline, limit=100),
        "Alerts\n"
        + render(
            case.alerts,
            ["rule", "severity", "status", "entity", "accounts_named", "first_seen_ms", "last_seen_ms"],
            total=case.alerts_total,
        ),
        "Decisions\n" + decisions,
        "Go further\n" + "\n".join(f"  -- {title}\n  {sql};" for title, sql in case.further_sql.items()),
    ]
    return "\n\n".join(sections)


def _tell_table(case: Case) -> list[dict[str, Any]]:
    from extractguard.investigation.case import TELLS_SQL

    def mean(rows: list[dict[str, Any]], name: str) -> float | None:
        values = [float(r[name]) for r in rows if r.get(name) is not None]
        return sum(values) / len(values) if values else None

    return [
        {"tell": name, "members": mean(case.tells_members, name), "organic_reference": mean(case.tells_reference, name)}
        for name in TELLS_SQL
    ]


@click.command("show")
@click.argument("campaign_id")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the self-contained case page (plots included) to this file.")  # fmt: skip
@_json
def campaigns_show(campaign_id: str, html_file: Path | None, as_json: bool) -> None:
    """One campaign: members, the fingerprints that link them, timeline, tells, alerts, decisions."""
    from extractguard.investigation.case import load_case

    case: Case = _run(lambda s: load_case(s, campaign_id))
    if html_file is not None:
        from extractguard.investigation.case_page import write_case_page

        write_case_page(case, html_file)
        click.echo(f"case page written to {html_file}", err=True)
    _emit(case.as_json() if as_json else case, as_json, _case_text)


@click.group()
def accounts() -> None:
    """Accounts as ClickHouse saw them."""


@accounts.command("show")
@click.argument("account_id")
@click.option("--bucket", default="1h", show_default=True, help="Requests over time in buckets of this long.")
@_json
def accounts_show(account_id: str, bucket: str, as_json: bool) -> None:
    """One account: its requests over time, tells and score, campaigns, alerts and decisions."""
    from extractguard.investigation import views
    from extractguard.investigation.case import TELLS_SQL

    view = _run(lambda s: views.account(s, account_id, int(parse_duration(bucket))))
    if view["account"] is None and not as_json:
        click.echo(f"error: no events of account {account_id} in ClickHouse", err=True)
        sys.exit(1)

    def people(v: dict[str, Any]) -> str:
        decisions = "no decisions table in this database yet" if v["decisions"] is None else render(v["decisions"])
        score = v["extraction_score"]
        return "\n\n".join([
            render([v["account"]], ["account_id", "org_id", "requests", "output_tokens_total", "first_request_ms",
                                    "last_request_ms", "ip_prefixes", "api_keys", "models"]),
            "Tells (share of its requests)\n" + render([{k: v["account"][k] for k in v["account"] if k in TELLS_SQL}]),
            "Extraction score\n" + ("none yet" if score is None else render([score])),
            "Requests over time\n" + render(v["requests"]),
            "Campaigns\n" + render(v["campaigns"]),
            "Alerts naming it\n" + render(v["alerts"]),
            "Labels\n" + render(v["labels"]),
            "Decisions\n" + decisions,
        ])  # fmt: skip

    _emit(view, as_json, people)


@click.group()
def alerts() -> None:
    """Alerts as delivered (the newest version of each)."""


@alerts.command("list")
@click.option("--status", type=click.Choice(["firing", "resolved"]), default=None)
@click.option("--rule", default=None)
@click.option("--since", default=None,
              help="Evidence within this long (30m, 6h, 2d) of the newest alert's last evidence (event time), not "
                   "of the wall clock, so a replay or a copied database reads as it was.")  # fmt: skip
@_limit
@_json
def alerts_list(status: str | None, rule: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """Alerts, newest evidence first (first_seen/last_seen: event time; --json adds fired_at_ms, the
    alerter's wall clock)."""
    from extractguard.investigation import views

    rows = _run(lambda s: views.alerts(s, status, rule, _since(since), limit))
    _emit(rows, as_json, lambda r: render(r, ["alert_id", "rule", "severity", "status", "entity", "accounts_named",
                                              "first_seen_ms", "last_seen_ms", "summary"]))  # fmt: skip


# `decisions list` joins the enforcement commands' `decisions` group (approve, reject, check, …)
# rather than a group of its own: two groups of one name shadow each other, and the analyst's list
# reads the audit trail in the configured ClickHouse, not whichever broker is configured.
@click.command("list")
@click.option("--account", default=None, help="Decisions about this account (and the end users behind it).")
@click.option("--campaign", default=None, help="Decisions taken on this campaign's evidence.")
@click.option("--status", type=click.Choice(["active", "pending_approval", "rejected", "expired", "superseded",
                                             "lifted"]), default=None)  # fmt: skip
@click.option("--pending", is_flag=True, help="Only those waiting for a person (--status pending_approval).")
@_limit
@_json
def decisions_list(
    account: str | None, campaign: str | None, status: str | None, pending: bool, limit: int, as_json: bool
) -> None:
    """Enforcement decisions landed in ClickHouse (EXTRACTGUARD_CLICKHOUSE_DSN), the newest version of
    each, newest first."""
    from extractguard.investigation import views

    status = "pending_approval" if pending else status
    rows = _run(lambda s: views.decisions(s, account, campaign, status, limit))
    if rows is None and not as_json:
        click.echo("no decisions table in this database yet (enforcement has not landed any)")
        return
    _emit(rows or [], as_json, _decisions_text)


def _decisions_text(rows: list[dict[str, Any]]) -> str:
    """The decisions, then one line per group waiting for a person (what `decisions approve` takes)."""
    waiting: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == "pending_approval":
            waiting.setdefault(str(row["group_id"]), []).append(row)
    lines = [render(rows, DECISION_COLUMNS)]
    for group, members in waiting.items():
        lines.append(f"waiting: {group}  {len(members)} decisions ({members[0]['action']}): "
                     f"{members[0]['approval_reason']}")  # fmt: skip
    return "\n".join(lines)


def register(main: click.Group, campaigns: click.Group) -> None:
    """Add the investigation commands to the `extractguard` app (`campaigns` runs the linker too)."""
    campaigns.add_command(campaigns_list)
    campaigns.add_command(campaigns_show)
    for group in (accounts, alerts):
        main.add_command(group)


def register_decisions_list(decisions: click.Group) -> None:
    """Make `decisions list` (of the enforcement commands' group) the ClickHouse one above."""
    decisions.add_command(decisions_list)
