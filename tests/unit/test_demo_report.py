"""The demo report's closing hint works as printed after the demo: it names the demo's own database."""

from __future__ import annotations

from extractguard.demo.report import EXPLORE_SQL, DemoReport


def test_the_explore_hint_names_the_demo_database() -> None:
    report = DemoReport(
        events_sent=10, events_landed=9, events_rejected=1, events_dlq=1, detections_by_detector={}, alerts_sent=0,
        campaign_accounts_total=1, campaign_accounts_flagged=1, organic_accounts_total=1, organic_accounts_flagged=0,
        seconds_to_first_alert=None, event_seconds_to_first_alert=None, wall_seconds=1, speedup=1,
        explore_sql=[{"title": t, "sql": s} for t, s in EXPLORE_SQL], clickhouse_dsn="chdb:///h/demo/clickhouse",
    )  # fmt: skip
    text = report.render()
    assert "export EXTRACTGUARD_CLICKHOUSE_DSN=chdb:///h/demo/clickhouse" in text
    assert "while the lander runs" not in text
