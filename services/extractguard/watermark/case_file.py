"""The attribution case file: JSON for the record, and one self-contained HTML page for people.

The page joins the watermark evidence (each key's p-value against the corrected threshold, the
tokens scored, which pool and when, who that key served, which responses the text copies) to
the named campaign's behavioural case from `investigation` (its verdict, fingerprints, member
growth: the same sections and plots as `campaigns show --html`), and states its assumptions.
Watermark plots are inline SVG drawn here; the behavioural ones are the case page's own. Nothing
is fetched when the page opens, and no text appears in it: ids, counts and p-values only.
"""

from __future__ import annotations

import datetime
import html
from pathlib import Path
from typing import Any

import orjson

from extractguard.investigation.case import Case
from extractguard.investigation.tables import cell
from extractguard.watermark.attribution import Attribution, minus_log10

SIGNIFICANT, OTHER, THRESHOLD = "#c0392b", "#95a5a6", "#2c3e50"


def case_json(attribution: Attribution, case: Case | None) -> dict[str, Any]:
    return {
        "kind": "watermark_attribution",
        "written_at_ms": int(datetime.datetime.now(tz=datetime.UTC).timestamp() * 1000),
        "named_campaign": attribution.named_campaign,
        "watermark": attribution.as_json(),
        "behaviour": None if case is None else case.as_json(),
    }


def p_value_svg(attribution: Attribution, shown: int = 24) -> str:
    """-log10 p of the keys tested (most significant first) with the Holm threshold of the first."""
    keys = [k for k in attribution.keys if k.untested is None][:shown]
    if not keys:
        return "<p class=muted>no key could be tested</p>"
    width, bar, left = 760, 18, 190
    height = bar * len(keys) + 50
    values = [min(minus_log10(k.p_value), 300.0) for k in keys]
    # Holm compares the smallest p with alpha / m: its threshold is the strictest, drawn here.
    threshold = minus_log10(attribution.alpha / len(keys))
    top = max([*values, threshold]) * 1.1 or 1.0
    scale = (width - left - 70) / top
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-size="11" '
        'font-family="sans-serif" role="img" aria-label="p-value per key">'
    ]
    for i, (k, v) in enumerate(zip(keys, values, strict=True)):
        y = 10 + i * bar
        colour = SIGNIFICANT if k.significant else OTHER
        parts.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{html.escape(k.key_id)}</text>')
        parts.append(
            f'<rect x="{left}" y="{y + 2}" width="{max(v * scale, 1):.1f}" height="{bar - 5}" fill="{colour}"/>'
        )
        parts.append(f'<text x="{left + v * scale + 4:.1f}" y="{y + 12}">{v:.1f} ({k.tokens_scored} tok)</text>')
    x = left + threshold * scale
    parts.append(
        f'<line x1="{x:.1f}" y1="5" x2="{x:.1f}" y2="{height - 35}" stroke="{THRESHOLD}" stroke-dasharray="4 3"/>'
    )
    parts.append(
        f'<text x="{x:.1f}" y="{height - 22}" text-anchor="middle">Holm threshold, alpha {attribution.alpha:g}'
        f" over {len(keys)} keys</text>"
    )
    parts.append(f'<text x="{left}" y="{height - 6}">-log10 p-value of the pooled corpus under each key</text></svg>')
    return "".join(parts)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "<p class=muted>none</p>"
    head = "".join(f"<th>{html.escape(n)}</th>" for n in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(r.get(n), n))}</td>" for n in columns) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _summary(attribution: Attribution) -> list[str]:
    significant = [k for k in attribution.keys if k.significant]
    tested = [k for k in attribution.keys if k.untested is None]
    lines = [
        f"{attribution.suspects} suspect texts ({attribution.tokens:,} tokens) were tested against {len(tested)} "
        f"watermark keys valid between {cell(attribution.window_start_ms, 'x_ms')} and "
        f"{cell(attribution.window_end_ms, 'x_ms')} UTC, with Holm's correction at alpha {attribution.alpha:g}."
    ]
    if not significant:
        lines.append(
            "No key's mark is present beyond the corrected threshold. This clears nobody: greedy or "
            "beam-search output is unmarked, and a paraphrasing distiller removes marks."
        )
    for k in significant:
        lines.append(
            f"Key {k.key_id} ({k.pool_kind} pool {k.pool}) is present: p = {k.p_value:.3g} over "
            f"{k.tokens_scored:,} scored tokens (Holm-adjusted {k.holm_p_value:.3g}); "
            f"{k.texts_marked} texts are marked on their own."
        )
    for s in attribution.served:
        named = (
            ", ".join(
                f"{c['campaign_id']} ({c['members_served']} members, {c['responses']} responses)"
                for c in s.campaigns[:3]
            )
            or "no campaign"
        )
        lines.append(
            f"Key {s.key_id} served {s.accounts} accounts {s.responses:,} responses "
            f"({s.output_tokens:,} output tokens); of them, in campaigns: {named}."
        )
    if attribution.matches:
        copied = len({m.suspect_id for m in attribution.matches})
        lines.append(f"{copied} suspect texts copy landed responses (sketch similarity >= 0.5).")
    if attribution.named_campaign:
        lines.append(f"The evidence names campaign {attribution.named_campaign}.")
    return lines


def render_case_file(attribution: Attribution, case: Case | None) -> str:
    from extractguard.investigation import case_page

    title = "Watermark attribution" + (f": campaign {attribution.named_campaign}" if attribution.named_campaign else "")
    keys = [
        {
            **{n: getattr(k, n) for n in ("key_id", "pool", "pool_kind", "algorithm", "tokens_scored", "texts_marked")},
            "p_value": k.p_value,
            "holm_p_value": k.holm_p_value,
            "significant": k.significant,
            "valid_from_ms": k.valid_from_ms,
            "valid_until_ms": k.valid_until_ms,
            "untested": k.untested,
        }
        for k in attribution.keys
    ]
    served = [{"key_id": s.key_id, **c} for s in attribution.served for c in s.campaigns]
    matches = [
        {
            "suspect_id": m.suspect_id,
            "event_id": m.event_id,
            "account_id": m.account_id,
            "key_id": m.key_id,
            "similarity": m.similarity,
            "campaign_id": m.campaign_id,
        }
        for m in attribution.matches[:200]
    ]
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>",
        f"<style>{case_page.STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
        "<h2>What the watermark says</h2><div class=verdict>"
        + "".join(f"<p>{html.escape(line)}</p>" for line in _summary(attribution))
        + "</div>",
        "<h2>Keys tested</h2>",
        p_value_svg(attribution),
        _table(
            keys,
            [
                "key_id",
                "pool",
                "pool_kind",
                "algorithm",
                "valid_from_ms",
                "valid_until_ms",
                "tokens_scored",
                "p_value",
                "holm_p_value",
                "significant",
                "texts_marked",
                "untested",
            ],
        ),
        "<h2>Who the present keys served</h2>",
        _table(
            [
                {
                    "key_id": s.key_id,
                    "accounts": s.accounts,
                    "responses": s.responses,
                    "output_tokens": s.output_tokens,
                    "first_ms": s.first_ms,
                    "last_ms": s.last_ms,
                }
                for s in attribution.served
            ],
            ["key_id", "accounts", "responses", "output_tokens", "first_ms", "last_ms"],
        ),
        _table(served, ["key_id", "campaign_id", "members_total", "members_served", "responses", "output_tokens"]),
        "<h2>Responses the suspect text copies</h2>",
        _table(matches, ["suspect_id", "event_id", "account_id", "key_id", "similarity", "campaign_id"]),
    ]
    if case is not None:
        campaign_id = html.escape(str(case.campaign["campaign_id"]))
        parts += [
            f"<h2>Behavioural evidence: campaign {campaign_id}</h2><div class=verdict>"
            + "".join(f"<p>{html.escape(line)}</p>" for line in case_page.verdict(case))
            + "</div>",
            case_page.fingerprint_plot(case) if case.fingerprints else "",
            case_page.growth_plot(case) if case.members else "",
            f"<p>{len(case.members)} members; the full case page: "
            f"<code>extractguard campaigns show {campaign_id} --html FILE</code></p>",
        ]
    parts += [
        "<h2>Assumptions</h2><ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in attribution.assumptions) + "</ul>",
        f"<p class=muted>Written by ExtractGuard at {datetime.datetime.now(tz=datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"detector backend {html.escape(attribution.backend)}. Key ids only: no key and no text appears here.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


def write_case_file(attribution: Attribution, case: Case | None, json_path: Path, html_path: Path | None) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_bytes(orjson.dumps(case_json(attribution, case), default=str, option=orjson.OPT_INDENT_2))
    if html_path is not None:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(render_case_file(attribution, case), encoding="utf-8")
