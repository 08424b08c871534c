"""The whole pipeline, every service as its own process, on a small simulated campaign."""

from __future__ import annotations

import pytest

from extractguard.demo.run import run_demo
from extractguard.settings import KafkaSettings
from extractguard.simulator.scenario import CampaignSpec, OrganicSpec, Scenario

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def test_a_campaign_is_caught_end_to_end_and_nothing_is_lost(kafka: KafkaSettings) -> None:
    scenario = Scenario(
        organic=OrganicSpec(accounts=300),
        campaigns=[CampaignSpec(name="c", accounts=120, start_s=360)],
        duration_s=900,
        seed=11,
    )
    report = run_demo(duration_s=40, scenario=scenario)
    assert report.events_landed == report.events_sent - report.events_rejected
    assert report.events_rejected > 0 and report.events_dlq == report.events_rejected
    assert report.detections_by_detector.get("burst", 0) > 0
    assert report.alerts_sent > 0
    assert report.campaign_accounts_flagged >= 0.9 * report.campaign_accounts_total
    assert report.organic_accounts_flagged * 10 < report.campaign_accounts_flagged
    assert report.seconds_to_first_alert is not None and report.seconds_to_first_alert > 0
    # The enforcer ran beside them: the campaign's accounts have decisions (observe first), no
    # organic account has one.
    assert report.campaign_accounts_decided >= 0.9 * report.campaign_accounts_total
    assert report.organic_accounts_decided == 0
    assert sum(n for key, n in report.decisions_by_action.items() if key.startswith("observe/")) > 0
