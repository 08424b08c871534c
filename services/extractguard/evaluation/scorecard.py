"""The scorecard: every scenario's scores, the overall figures, as JSON and as Markdown."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from extractguard.evaluation.ablation import ablation_markdown
from extractguard.evaluation.done_when import done_when
from extractguard.evaluation.scoring import ScenarioScore
from extractguard.evaluation.scoring import __doc__ as DEFINITIONS

INVESTIGATE_SQL = [
    ("Flagged accounts by ground-truth class",
     "SELECT l.scenario, l.class, uniqExact(a.account) AS flagged FROM "
     "(SELECT arrayJoin(accounts) AS account FROM alerts FINAL) AS a "
     "INNER JOIN (SELECT * FROM account_labels FINAL) AS l ON l.account_id = a.account "
     "GROUP BY l.scenario, l.class ORDER BY l.scenario, flagged DESC"),
    ("Alerts and the classes of the accounts they name",
     "SELECT al.rule, al.entity_kind, al.entity, countIf(l.label = 'campaign') AS campaign_accounts, "
     "countIf(l.label = 'organic') AS organic_accounts FROM (SELECT * FROM alerts FINAL) AS al "
     "ARRAY JOIN al.accounts AS account INNER JOIN (SELECT * FROM account_labels FINAL) AS l "
     "ON l.account_id = account GROUP BY al.rule, al.entity_kind, al.entity ORDER BY organic_accounts DESC LIMIT 20"),
    ("Requests per scenario and ground-truth class",
     "SELECT l.scenario, l.class, count() AS requests FROM events AS e INNER JOIN "
     "(SELECT * FROM account_labels FINAL) AS l ON l.account_id = e.account_id GROUP BY l.scenario, l.class "
     "ORDER BY l.scenario, requests DESC"),
]  # fmt: skip


@dataclass(slots=True)
class Scorecard:
    scale: str
    generated_at: str
    scenarios: list[ScenarioScore] = field(default_factory=list)
    wall_seconds: float = 0.0
    detection_settings: dict[str, Any] = field(default_factory=dict)
    #: How it was run, and what the events went through (the in-process replay says so).
    command: str = "make eval"
    pipeline: str = "Kafka, the Faust detection workers, the alerter and ClickHouse"
    #: Scenarios still to run: a long run writes its scorecard after each scenario, so a run that
    #: is stopped keeps what it measured (and says it is incomplete).
    scenarios_pending: list[str] = field(default_factory=list)
    #: The ablation view's rows (`evaluation.ablation`), when the run made one.
    ablation: list[dict[str, Any]] = field(default_factory=list)

    def overall(self) -> dict[str, Any]:
        campaigns = [c for s in self.scenarios for c in s.campaigns]
        detected = [c for c in campaigns if c.detected]
        organic = sum(s.organic_accounts for s in self.scenarios)
        flagged = sum(s.organic_accounts_flagged for s in self.scenarios)
        days = sum(s.duration_s for s in self.scenarios) / 86_400
        delays = [c.seconds_to_detect for c in detected if c.seconds_to_detect is not None]
        return {
            "campaigns": len(campaigns),
            "campaigns_detected": len(detected),
            "median_seconds_to_detect": statistics.median(delays) if delays else None,
            "mean_member_recall": round(statistics.mean(c.member_recall for c in campaigns), 4) if campaigns else None,
            "organic_false_positive_rate": round(flagged / organic, 4) if organic else 0.0,
            "organic_alerts_per_day": round(sum(s.organic_alerts for s in self.scenarios) / days, 2) if days else 0.0,
            "events": sum(s.events for s in self.scenarios),
            "done_when": done_when(self.scenarios),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "generated_at": self.generated_at,
            "wall_seconds": round(self.wall_seconds, 1),
            "complete": not self.scenarios_pending,
            "scenarios_pending": self.scenarios_pending,
            "overall": self.overall(),
            "scenarios": [s.as_dict() for s in self.scenarios],
            "detection_settings": self.detection_settings,
            "ablation": self.ablation,
            "definitions": _definitions(),
        }

    def markdown(self) -> str:
        o = self.overall()
        delay = "—" if o["median_seconds_to_detect"] is None else f"{o['median_seconds_to_detect']:.0f} s"
        lines = [
            f"# ExtractGuard scorecard ({self.scale} scale)",
            "",
            f"Generated {self.generated_at} by `{self.command}` in {self.wall_seconds:.0f} s of wall time; "
            f"{o['events']:,} events through {self.pipeline}.",
            "",
            f"**Campaigns detected: {o['campaigns_detected']} of {o['campaigns']}** · median time to detect {delay} "
            f"(event time) · organic false-positive rate {o['organic_false_positive_rate']:.2%} · "
            f"organic alerts per day {o['organic_alerts_per_day']:.1f}",
            "",
            *(
                [f"**Incomplete**: still to run when written: {', '.join(self.scenarios_pending)}.", ""]
                if self.scenarios_pending
                else []
            ),
            "## Campaigns",
            "",
            "| scenario | campaign | accounts | requests | detected | seconds to detect | requests before "
            "detection | member recall | cluster precision | alerts by rule (first) |",
            "|---|---|---:|---:|---|---:|---:|---:|---:|---|",
        ]
        for s in self.scenarios:
            for c in s.campaigns:
                lines.append(
                    f"| {s.name} | {c.name} | {c.accounts:,} | {c.requests:,} | {'yes' if c.detected else '**no**'} | "
                    f"{_num(c.seconds_to_detect, '{:.0f}')} | {_num(c.requests_before_detection_fraction, '{:.1%}')} | "
                    f"{c.member_recall:.1%} | {_num(c.cluster_precision, '{:.1%}')} | {_rules(c.alerts_by_rule)}"
                    f"{f' ({c.first_rule})' if c.first_rule else ''} |"
                )
        lines += [
            "",
            "### Red-team view: what each campaign took, and what it lost",
            "",
            "The harvest before the first alert pointing at it (all of it when never detected), the accounts an "
            "operator would suspend (members named by any alert), and what the never-named members took.",
            "",
            "| scenario | campaign | requests | output tokens | requests before detection | output tokens before "
            "detection | accounts burned | requests by unburned | output tokens by unburned |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for s in self.scenarios:
            for c in s.campaigns:
                lines.append(
                    f"| {s.name} | {c.name} | {c.requests:,} | {c.output_tokens:,} | {c.requests_before_detection:,} | "
                    f"{c.output_tokens_before_detection:,} | {c.accounts_burned:,} of {c.accounts:,} "
                    f"({c.accounts_burned_fraction:.1%}) | {c.requests_by_unburned_accounts:,} | "
                    f"{c.output_tokens_by_unburned_accounts:,} |"
                )
        lines += _enforcement_lines(self.scenarios)
        lines += [
            "",
            "### As the campaign resolver links them",
            "",
            "Resolved campaigns pointing at each true campaign (1 = found as one actor), and over their members:",
            "",
            "| scenario | campaign | resolved as | member recall | cluster precision |",
            "|---|---|---:|---:|---:|",
        ]
        for s in self.scenarios:
            for c in s.campaigns:
                lines.append(
                    f"| {s.name} | {c.name} | {c.resolved_as} | {c.resolved_member_recall:.1%} | "
                    f"{_num(c.resolved_cluster_precision, '{:.1%}')} |"
                )
        lines += [
            "",
            "Organic accounts that are members of any resolved campaign, by class: "
            + "; ".join(f"{s.name}: {_rules(s.organic_in_campaigns)}" for s in self.scenarios),
            "",
            *_done_when_lines(o["done_when"]),
            *ablation_markdown(self.ablation),
            "## Organic traffic",
            "",
            "| scenario | organic accounts | flagged | false-positive rate | organic alerts | per day | alerts by rule"
            " |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for s in self.scenarios:
            rules = _rules(s.alerts_by_rule)
            lines.append(
                f"| {s.name} | {s.organic_accounts:,} | {s.organic_accounts_flagged:,} | "
                f"{s.organic_false_positive_rate:.2%} | {s.organic_alerts} | {s.organic_alerts_per_day:.1f} | {rules} |"
            )
        classes = sorted({k for s in self.scenarios for k in s.organic_classes})
        lines += [
            "",
            "### Flagged fraction per organic class",
            "",
            "| scenario | " + " | ".join(classes) + " |",
            "|---|" + "---:|" * len(classes),
        ]
        for s in self.scenarios:
            cells = []
            for k in classes:
                cls = s.organic_classes.get(k)
                cells.append("—" if cls is None else f"{cls.flagged_fraction:.1%} ({cls.flagged}/{cls.accounts})")
            lines.append(f"| {s.name} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "## Detections by detector and severity",
            "",
            "Only `warning` and `critical` detections reach the alert rules; `info` ones are kept in ClickHouse.",
            "",
            "| scenario | detections |",
            "|---|---|",
        ]
        for s in self.scenarios:
            lines.append(f"| {s.name} | {_rules(s.extra.get('detections', {}))} |")
        lines += ["", "## Timelines", ""]
        for s in self.scenarios:
            if "timeline" in s.extra:
                lines.append(f"![{s.name}]({s.extra['timeline']})")
        lines += ["", "## Definitions", "", _definitions(), "", "## Investigate in ClickHouse", ""]
        lines.append("The ground truth is in `account_labels` next to the alerts (`extractguard sql`, or any client):")
        lines.append("")
        for title, sql in INVESTIGATE_SQL:
            lines += [f"-- {title}", "```sql", sql + ";", "```"]
        return "\n".join(lines) + "\n"


def _enforcement_lines(scenarios: list[ScenarioScore]) -> list[str]:
    from extractguard.evaluation.enforcement_replay import enforcement_lines

    return enforcement_lines(scenarios)


def _done_when_lines(verdict: dict[str, Any]) -> list[str]:
    def mark(ok: bool) -> str:
        return "yes" if ok else "**no**"

    lines = [
        "## Done when",
        "",
        f"All criteria met: {mark(verdict['all_passed'])}. Every campaign detected: "
        f"{mark(verdict['every_campaign_detected'])}"
        + (f" (missed: {', '.join(verdict['campaigns_missed'])})" if verdict["campaigns_missed"] else "")
        + ".",
        "",
        "| criterion | campaign | figures | met |",
        "|---|---|---|---|",
    ]
    for row in verdict["criteria"]["hydra"]:
        lines.append(
            f"| hydra: within 1 h, <= 1% of requests first, recall >= 95%, precision >= 99% | {row['scenario']}/"
            f"{row['campaign']} | within 1 h: {mark(row['detected_within_1h'])}; requests before: "
            f"{_num(row['requests_before_detection_fraction'], '{:.1%}')}; recall {row['member_recall']:.1%}; "
            f"precision {_num(row['cluster_precision'], '{:.1%}')} | {mark(row['passed'])} |"
        )
    for row in verdict["criteria"]["low_and_slow"]:
        lines.append(
            f"| low and slow: within a day at >= 80% recall | {row['scenario']}/{row['campaign']} | within a day: "
            f"{mark(row['detected_within_1d'])}; recall after a day {row['member_recall_within_1d']:.1%} "
            f"(whole run {row['member_recall']:.1%}) | {mark(row['passed'])} |"
        )
    for kind in ("small_fleet", "refusal_mapping"):
        for row in verdict["criteria"].get(kind, []):
            lines.append(
                f"| {kind.replace('_', ' ')}: within 3 h | {row['scenario']}/{row['campaign']} | detected after "
                f"{_num(row['seconds_to_detect'], '{:,.0f} s')}; recall {row['member_recall']:.1%} | "
                f"{mark(row['passed'])} |"
            )
    for row in verdict["criteria"].get("actor", []):
        lines.append(
            f"| one actor per campaign: precision >= 95% | {row['scenario']}/{row['campaign']} | alerts "
            f"{_num(row['cluster_precision'], '{:.1%}')}; resolved as {row['resolved_as']} at "
            f"{_num(row['resolved_cluster_precision'], '{:.1%}')} | {mark(row['passed'])} |"
        )
    for row in verdict["criteria"].get("reseller_end_users", []):
        lines.append(
            f"| reseller-fronted: >= 80% of end users, no honest one | {row['scenario']}/{row['campaign']} | recall "
            f"{row['member_recall']:.1%}; honest end users flagged {row['honest_end_users_flagged']} | "
            f"{mark(row['passed'])} |"
        )
    paged = "; ".join(f"{s}: {', '.join(k)}" for s, k in verdict["lookalike_classes_paged"].items()) or "none"
    lines += [
        f"| organic accounts flagged <= 0.1% | all | {verdict['organic_flagged_fraction']:.3%} | "
        f"{mark(verdict['organic_flagged_fraction_ok'])} |",
        f"| organic pages <= 1 a day | all | {verdict['organic_pages_per_day']:.2f} | "
        f"{mark(verdict['organic_pages_per_day_ok'])} |",
        f"| no look-alike class pages | all | paged: {paged} | {mark(not verdict['lookalike_classes_paged'])} |",
        "",
    ]
    return lines


def _definitions() -> str:
    """The metric definitions, as `scoring` states them."""
    return (DEFINITIONS or "").split("Definitions (the scorecard repeats them):")[-1].split(">>>")[0].strip()


def _rules(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)
