"""The case page: one self-contained HTML file (plots inlined as PNG) that an on-call engineer
attaches to the incident, and that says on its own why the accounts were linked.

Sections: a plain-language verdict (the strongest fingerprints and tells in a sentence each),
member growth, requests per minute by member, the linking fingerprints (weight and how
concentrated on the members each is), the tells' distributions against the organic reference,
the alerts and decisions, and the SQL to go further. matplotlib draws the plots (the `eval`
extra installs it); nothing is fetched when the page opens.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
from collections import defaultdict
from pathlib import Path
from typing import Any

from extractguard.investigation.case import (
    MEMBER_COLUMNS,
    SIMILAR_COLUMNS,
    TAKE_COLUMNS,
    TELLS_SQL,
    Case,
    decisions_total,
    fronted_by,
    related_line,
    take_line,
)
from extractguard.investigation.tables import cell, cut_note, header

MEMBERS_COLOUR, REFERENCE_COLOUR = "#c0392b", "#7f8c8d"
MEMBERS_SHOWN, FINGERPRINTS_SHOWN, TIMELINE_SHOWN, SIMILAR_SHOWN = 200, 30, 200, 20


def _similar_total(case: Case) -> int:
    return int(case.similar[0]["similar_total"]) if case.similar else 0


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - the eval extra is missing
        raise RuntimeError("the case page draws with matplotlib: pip install 'extractguard[eval]'") from error
    return plt


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=110)
    _pyplot().close(figure)
    return '<img alt="plot" src="data:image/png;base64,' + base64.b64encode(buffer.getvalue()).decode() + '">'


def _time(ms: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)


def _mean(rows: list[dict[str, Any]], name: str) -> float | None:
    values = [float(r[name]) for r in rows if r.get(name) is not None]
    return sum(values) / len(values) if values else None


def growth_plot(case: Case) -> str:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7.5, 2.8))
    firsts = sorted(int(r["first_request_ms"]) for r in case.members)
    if firsts:
        axis.step([_time(t) for t in firsts], range(1, len(firsts) + 1), where="post", color=MEMBERS_COLOUR,
                  label="members by their first request")  # fmt: skip
    if case.timeline:
        published = [(_time(int(r["updated_ms"])), int(r["members_total"])) for r in case.timeline]
        axis.plot([t for t, _ in published], [n for _, n in published], "o", color="#2c3e50",
                  label="members as the resolver published them")  # fmt: skip
    axis.axvline(_time(int(case.campaign["first_seen_ms"])), color="#888", linestyle=":", label="campaign first seen")
    axis.set_ylabel("members")
    axis.set_title("Member growth")
    axis.legend(loc="upper left", fontsize=8)
    figure.autofmt_xdate()
    return _png(figure)


def every_minute(per_minute: dict[int, int]) -> list[int]:
    """Every minute from the first to the last with requests, the empty ones included (a line over
    only the busy minutes would draw a quiet hour as steady traffic).

    >>> every_minute({0: 3, 180_000: 1})
    [0, 60000, 120000, 180000]
    """
    if not per_minute:
        return []
    return list(range(min(per_minute), max(per_minute) + 60_000, 60_000))


def harvest_plot(case: Case) -> str:
    """What the actor took per hour: requests and output tokens, empty hours included."""
    plt = _pyplot()
    figure, requests = plt.subplots(figsize=(7.5, 2.6))
    per_hour = {int(r["hour_ms"]): r for r in case.harvest}
    hours = list(range(min(per_hour), max(per_hour) + 3_600_000, 3_600_000)) if per_hour else []
    times = [_time(h) for h in hours]
    requests.bar(times, [int(per_hour[h]["requests"]) if h in per_hour else 0 for h in hours], width=1 / 24,
                 align="edge", color=MEMBERS_COLOUR, alpha=0.7, label="requests")  # fmt: skip
    requests.set_ylabel("requests / h")
    tokens = requests.twinx()
    tokens.plot(times, [int(per_hour[h]["output_tokens"]) if h in per_hour else 0 for h in hours], color="#2c3e50",
                linewidth=1, label="output tokens")  # fmt: skip
    tokens.set_ylabel("output tokens / h")
    requests.set_ylim(bottom=0)
    tokens.set_ylim(bottom=0)
    requests.set_title("Harvest per hour (bars: requests; line: output tokens)")
    figure.autofmt_xdate()
    return _png(figure)


def activity_plot(case: Case) -> str:
    """The campaign's requests per minute, all members together, and beneath it when each of the
    busiest members sent (dots: a slow member sends now and then, and a line would invent the rest)."""
    plt = _pyplot()
    figure, (total, members) = plt.subplots(2, 1, figsize=(7.5, 4.8), sharex=True, height_ratios=[1, 1.2])
    per_minute: dict[int, int] = defaultdict(int)
    series: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for row in case.activity:
        per_minute[int(row["minute_ms"])] += int(row["requests"])
        if row["member"] != "other members":
            series[str(row["member"])].append((int(row["minute_ms"]), int(row["requests"])))
    minutes = every_minute(per_minute)
    total.plot([_time(t) for t in minutes], [per_minute.get(t, 0) for t in minutes], color=MEMBERS_COLOUR, linewidth=1)
    total.set_ylim(bottom=0)  # a quiet minute is a zero, and the eye reads heights from zero
    total.set_ylabel("requests / min")
    total.set_title(f"Requests per minute, all {len(case.members)} members")
    for i, (_member, points) in enumerate(sorted(series.items())):
        members.plot([_time(t) for t, _ in points], [i] * len(points), "o", markersize=3)
    members.set_yticks(range(len(series)), [m[:22] for m in sorted(series)], fontsize=7)
    members.set_title("When the busiest members sent (one dot per minute with requests)")
    figure.autofmt_xdate()
    return _png(figure)


def fingerprint_plot(case: Case) -> str:
    plt = _pyplot()
    shown = case.fingerprints[:12][::-1]
    figure, axis = plt.subplots(figsize=(7.5, 0.35 * len(shown) + 1.2))
    axis.barh([str(f["fingerprint"])[:48] for f in shown], [f["weight"] for f in shown], color=MEMBERS_COLOUR)
    for i, f in enumerate(shown):
        used = (
            "" if f["accounts_using"] is None else f"  {f['members_using']} of {f['accounts_using']} users are members"
        )
        axis.text(f["weight"], i, f"  {f['sharers']} sharers{used}", va="center", fontsize=7)
    axis.set_xlabel("weight: surprise of this much sharing by chance (-log10 p)")
    axis.set_title("Fingerprints that link the members")
    axis.set_xlim(0, max([f["weight"] for f in shown] + [1.0]) * 2.2)  # room for the labels
    return _png(figure)


def tells_plot(case: Case) -> str:
    plt = _pyplot()
    names = list(TELLS_SQL)
    figure, axes = plt.subplots(2, 4, figsize=(9, 4.2), sharey=False)
    bins = [i / 10 for i in range(11)]
    for axis, name in zip(axes.flat, names, strict=True):
        for rows, colour, label in ((case.tells_reference, REFERENCE_COLOUR, "organic reference"),
                                    (case.tells_members, MEMBERS_COLOUR, "members")):  # fmt: skip
            values = [float(r[name]) for r in rows if r.get(name) is not None]
            if values:
                weights = [1 / len(values)] * len(values)
                axis.hist(values, bins=bins, weights=weights, alpha=0.6, color=colour, label=label)
        axis.set_title(name, fontsize=9)
        axis.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7)
    figure.suptitle("Tells: share of each account's requests (members against the organic reference)", fontsize=10)
    return _png(figure)


def verdict(case: Case) -> list[str]:
    """Sentences a person can act on: what links the members, and how they differ from organic use."""
    c = case.campaign
    lines = [
        f"{c['members_total']} accounts ({c['shaped_members']} of them extraction-shaped) were linked into "
        f"campaign {c['campaign_id']} ({c['status']}, {c['severity']}) because they share fingerprints that "
        "ordinary accounts do not share by chance:"
    ]
    by_kind: dict[str, list[float]] = defaultdict(list)
    for f in case.fingerprints:
        by_kind[str(f["kind"])].append(float(f["weight"]))
    kinds = sorted(by_kind.items(), key=lambda kv: -sum(kv[1]))
    lines.append(
        "Evidence by kind: "
        + "; ".join(f"{kind} {len(w)} fingerprint{'s' * (len(w) > 1)} (weight {sum(w):,.0f})" for kind, w in kinds)
        + "."
    )
    for f in case.fingerprints[:3]:
        concentration = (
            "" if f["accounts_using"] is None
            else f"; of the {f['accounts_using']} accounts seen on it in these hours, {f['members_using']} are members"
        )  # fmt: skip
        lines.append(f"{f['meaning']} ({f['fingerprint']}): shared by {f['sharers']} (weight {f['weight']:.1f}"
                     f"{concentration}).")  # fmt: skip
    gaps = []
    for name in TELLS_SQL:
        members, reference = _mean(case.tells_members, name), _mean(case.tells_reference, name)
        if members is not None and reference is not None:
            gaps.append((members - reference, name, members, reference))
    for _gap, name, members, reference in sorted(gaps, reverse=True)[:3]:
        lines.append(
            f"Tell {name}: {members:.0%} of members' requests against {reference:.0%} of the organic reference's."
        )
    return lines


def _table(rows: list[dict[str, Any]], columns: list[str] | None = None, limit: int | None = None,
           total: int | None = None) -> str:  # fmt: skip
    if not rows:
        return "<p class=muted>none</p>"
    shown = rows if limit is None else rows[:limit]
    names = columns or list(rows[0])
    head = "".join(f"<th>{html.escape(header(n))}</th>" for n in names)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(r.get(n), n))}</td>" for n in names) + "</tr>" for r in shown
    )
    note = cut_note(len(shown), len(rows) if total is None else total)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>" + (
        f"<p class=muted>{html.escape(note)}</p>" if note else ""
    )


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1000px}
body{color:#222}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
.badge{display:inline-block;padding:.1em .5em;border-radius:.3em;background:#eee;margin-right:.4em}
.critical{background:#c0392b;color:#fff} .warning{background:#e67e22;color:#fff}
.verdict{background:#fdf2f0;border-left:4px solid #c0392b;padding:.6em 1em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.25em .5em;text-align:left}
th{background:#f6f6f6} pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.8em;white-space:pre-wrap}
.muted{color:#888} img{max-width:100%}
.take{background:#f4f7fb;border-left:4px solid #2c3e50;padding:.4em 1em}
"""


def render_case_page(case: Case) -> str:
    c = case.campaign
    title = f"Campaign {c['campaign_id']}"
    say = verdict(case)
    tells = [
        {"tell": n, "members": _mean(case.tells_members, n), "organic_reference": _mean(case.tells_reference, n)}
        for n in TELLS_SQL
    ]
    decisions = (
        "<p class=muted>No decisions table in this database yet: enforcement has not landed any.</p>"
        if case.decisions is None else _table(case.decisions, total=decisions_total(case.decisions))
    )  # fmt: skip
    further = "".join(f"<p>{html.escape(t)}</p><pre>{html.escape(sql)};</pre>" for t, sql in case.further_sql.items())
    fronting = fronted_by(case)
    take = case.take
    take_row = [{k: take.get(k) for k in TAKE_COLUMNS}] if take else []
    # Header, take, verdict and charts first; the long tables after them, each cut and saying so.
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p><span class='badge {html.escape(str(c['severity']))}'>{html.escape(str(c['severity']))}</span>"
        f"<span class=badge>{html.escape(str(c['status']))}</span>"
        f"<span class=badge>score {float(c['score']):.1f}</span>"
        f"{int(c['members_total']):,} members ({int(c['shaped_members']):,} extraction-shaped), "
        f"first seen {html.escape(cell(c['first_seen_ms'], 'first_seen_ms'))} UTC, "
        f"last seen {html.escape(cell(c['last_seen_ms'], 'last_seen_ms'))} UTC"
        + (f", merged into {html.escape(str(c['merged_into']))}" if c.get("merged_into") else "")
        + (f", {html.escape(fronting)}" if fronting else "")
        + "</p>",
        f"<p><b>{html.escape(related_line(c).strip())}</b></p>" if c.get("related") else "",
        f"<div class=take><p><b>The take:</b> {html.escape(take_line(take))}.</p>",
        _table(take_row),
        "</div>",
        harvest_plot(case) if case.harvest else "",
        "<h2>Why these accounts were linked</h2><div class=verdict>"
        + "".join(f"<p>{html.escape(line)}</p>" for line in say)
        + "</div>",
        "<h2>Linking fingerprints</h2>",
        fingerprint_plot(case),
        "<h2>Tells against the organic reference</h2>",
        tells_plot(case),
        _table(tells),
        f"<p class=muted>organic reference: up to {len(case.tells_reference)} accounts in no campaign, same hours.</p>",
        "<h2>Member growth</h2>",
        growth_plot(case),
        "<h2>Requests per minute, and by member</h2>",
        activity_plot(case),
        "<h2>Linking fingerprints, in full</h2>",
        _table(
            case.fingerprints,
            ["fingerprint", "meaning", "weight", "sharers", "members_using", "accounts_using"],
            limit=FINGERPRINTS_SHOWN,
        ),
        "<p class=muted>weight: -log10 of the chance of this many extraction-shaped accounts among the sharers at "
        "the base rate (the resolver's evidence); members_using / accounts_using: in the raw events of these hours. "
        "Prompt bands are sketch hashes the events table does not keep as such.</p>",
        "<h2>Fronting accounts: resellers whose end users are members</h2>",
        _table(
            case.fronting,
            ["account_id", "org_id", "end_users_in_campaign", "end_users_total", "campaign_requests", "requests"],
        ),
        "<h2>Similar, not yet linked</h2>",
        "<p class=muted>Subjects outside the campaign that share its fingerprints in the raw events of its hours, "
        "the most shared first: candidates to look at, not findings.</p>",
        _table(case.similar, SIMILAR_COLUMNS, limit=SIMILAR_SHOWN, total=_similar_total(case)),
        f"<h2>Members ({len(case.members)})</h2>",
        "<p class=muted>An end user behind a reseller's key is a member of its own: "
        "<code>&lt;account&gt;/eu:&lt;end user&gt;</code>.</p>",
        _table(case.members, MEMBER_COLUMNS, limit=MEMBERS_SHOWN),
        f"<h2>Timeline: every version the resolver published ({len(case.timeline)})</h2>",
        _table(case.timeline, limit=TIMELINE_SHOWN),
        "<h2>Alerts</h2>",
        _table(
            case.alerts,
            ["rule", "severity", "status", "entity", "accounts_named", "first_seen_ms", "last_seen_ms", "summary"],
            total=case.alerts_total,
        ),
        "<h2>Decisions</h2>",
        decisions,
        "<h2>Go further (SQL)</h2>",
        further,
        f"<p class=muted>Written by ExtractGuard at {datetime.datetime.now(tz=datetime.UTC):%Y-%m-%d %H:%M} UTC. "
        "No prompt text is stored or shown: only sketches, counts and shares.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


def write_case_page(case: Case, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_case_page(case), encoding="utf-8")
