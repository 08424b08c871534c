"""Verdicts reach the detection worker from `account.labels`, filtered by the sources it trusts."""

from __future__ import annotations

import time
import uuid

import pytest

from extractguard.detection.verdicts import Verdicts
from extractguard.settings import KafkaSettings
from extractguard.simulator.ground_truth import publish_labels
from extractguard.simulator.scenario import CampaignSpec, OrganicSpec, Scenario
from extractguard.simulator.traffic import population

pytestmark = pytest.mark.kafka


def test_a_worker_reads_the_verdicts_of_the_sources_it_trusts(kafka: KafkaSettings) -> None:
    scenario = Scenario(seed=uuid.uuid4().int % 1_000_000, organic=OrganicSpec(accounts=20),
                        campaigns=[CampaignSpec(name="c", accounts=10)])  # fmt: skip
    accounts = population(scenario, 1_795_000_000_000)
    publish_labels(kafka, "verdict-test", accounts)
    trusting = Verdicts(kafka, {"simulation"}, group_id=f"verdicts-{uuid.uuid4().hex}")
    analysts_only = Verdicts(kafka, {"analyst"}, group_id=f"verdicts-{uuid.uuid4().hex}")
    trusting.start()
    analysts_only.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            any(trusting.get(a.account_id) is None for a in accounts) or analysts_only.read < trusting.read
        ):
            time.sleep(0.2)
        assert {a.account_id: trusting.get(a.account_id) for a in accounts} == {
            a.account_id: a.label == "campaign" for a in accounts
        }
        assert analysts_only.read >= len(accounts) and all(analysts_only.get(a.account_id) is None for a in accounts)
    finally:
        trusting.stop()
        analysts_only.stop()
