"""The demo's report: what was sent, landed, detected and alerted, against the ground truth."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

EXPLORE_SQL = [
    ("Busiest accounts per minute (rollup)",
     "SELECT account_id, minute, countMerge(requests) AS requests, sumMerge(output_tokens) AS output_tokens "
     "FROM account_minute GROUP BY account_id, minute ORDER BY requests DESC LIMIT 10"),
    ("Detections by detector and entity",
     "SELECT detector, entity_kind, entity, count() AS windows, max(score) AS max_score, max(accounts_total) "
     "AS accounts FROM detections GROUP BY detector, entity_kind, entity ORDER BY windows DESC LIMIT 20"),
    ("Alerts, newest version of each",
     "SELECT rule, severity, entity, length(accounts) AS accounts, first_seen, last_seen "
     "FROM alerts FINAL ORDER BY first_seen"),
    ("Shared infrastructure of the alerted accounts",
     "SELECT client_ip_prefix, tls_ja4, uniqExact(account_id) AS accounts, count() AS requests FROM events "
     "WHERE account_id IN (SELECT arrayJoin(accounts) FROM alerts FINAL) "
     "GROUP BY client_ip_prefix, tls_ja4 ORDER BY accounts DESC LIMIT 10"),
    ("Enforcement decisions in force, and why",
     "SELECT scope, entity, action, status, campaign_id, reason, expires_at FROM decisions FINAL "
     "WHERE status IN ('active', 'pending_approval') ORDER BY decided_at DESC LIMIT 20"),
]  # fmt: skip


@dataclass(slots=True)
class DemoReport:
    events_sent: int
    events_landed: int
    events_rejected: int
    events_dlq: int
    detections_by_detector: dict[str, int]
    alerts_sent: int
    campaign_accounts_total: int
    campaign_accounts_flagged: int
    organic_accounts_total: int
    organic_accounts_flagged: int
    seconds_to_first_alert: float | None
    event_seconds_to_first_alert: float | None
    wall_seconds: float
    speedup: float
    #: The enforcer's decisions this run, newest version of each, as "<action>/<status>" -> count.
    decisions_by_action: dict[str, int] = field(default_factory=dict)
    campaign_accounts_decided: int = 0
    organic_accounts_decided: int = 0
    flagged_by: str = "named in at least one alert delivered to the webhook"
    explore_sql: list[dict[str, str]] = field(default_factory=list)
    #: Where this run's ClickHouse is: the demo's own, not the default one `extractguard sql` opens.
    clickhouse_dsn: str = ""

    def succeeded(self) -> bool:
        """The demo's promise: the campaign is caught, organic traffic mostly is not, nothing is lost."""
        return (
            self.campaign_accounts_flagged > 0
            and self.organic_accounts_flagged * 10 < self.campaign_accounts_flagged
            and self.events_landed == self.events_sent - self.events_rejected
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        first = "never" if self.seconds_to_first_alert is None else f"{self.seconds_to_first_alert:.1f}s"
        event_first = (
            ""
            if self.event_seconds_to_first_alert is None
            else f" ({self.event_seconds_to_first_alert:.0f}s of event time)"
        )
        detections = ", ".join(f"{k}: {v}" for k, v in sorted(self.detections_by_detector.items())) or "none"
        decisions = ", ".join(f"{k}: {v}" for k, v in self.decisions_by_action.items()) or "none"
        campaign_share = self.campaign_accounts_flagged / max(self.campaign_accounts_total, 1)
        organic_share = self.organic_accounts_flagged / max(self.organic_accounts_total, 1)
        lines = [
            "",
            "ExtractGuard demo report",
            "========================",
            f"replayed {self.wall_seconds:.0f}s of wall time at {self.speedup:.0f}x (event time)",
            f"events sent        {self.events_sent:>8,}",
            f"events rejected    {self.events_rejected:>8,}   (kept in gateway.events.dlq: {self.events_dlq:,})",
            f"events landed      {self.events_landed:>8,}   (ClickHouse `events`)",
            f"detections         {detections}",
            f"alerts delivered   {self.alerts_sent:>8,}",
            f"campaign accounts  {self.campaign_accounts_flagged:>5,} of {self.campaign_accounts_total:,} flagged "
            f"({campaign_share:.0%})",
            f"organic accounts   {self.organic_accounts_flagged:>5,} of {self.organic_accounts_total:,} flagged "
            f"({organic_share:.1%})",
            f"first alert        {first} after the campaign's first request{event_first}",
            f"decisions          {decisions}",
            f"  on accounts      {self.campaign_accounts_decided:,} campaign, "
            f"{self.organic_accounts_decided:,} organic "
            "(the default policy observes first and escalates after 5 minutes of wall time;",
            "                    a campaign of 500 accounts or more waits for `extractguard decisions approve`)",
            "",
            "Explore what landed, now the demo is over (its database is its own, so name it):",
            f"  export EXTRACTGUARD_CLICKHOUSE_DSN={self.clickhouse_dsn or 'chdb://<the demo database>'}",
            '  .venv/bin/extractguard sql "..."   # each query below',
        ]
        for title, sql in EXPLORE_SQL:
            lines += [f"  -- {title}", f"  {sql};"]
        return "\n".join(lines)
