"""The chaos table: what each column counts, the membership comparison of campaigns, and the bound
of the alerter's row (would fail if a page sent twice beyond the documented bound passed)."""

from __future__ import annotations

from collections import Counter

from extractguard.chaos.faults import FAULTS, by_name
from extractguard.chaos.report import compare, markdown
from extractguard.chaos.run import Outcome


def _outcome(**fields: object) -> Outcome:
    base = Outcome("x", events_sent=100, events_rows=100, events_final=100, detections_rows=3, detections_final=3,
                   detection_ids={"d1", "d2", "d3"}, campaigns={"cmp-a": ("growing", ["a1", "a2", "a3"])},
                   pages=Counter({("k1", "firing", "warning", 1, ("a1",)): 1}), dlq_messages=2)  # fmt: skip
    for name, value in fields.items():
        setattr(base, name, value)
    return base


def test_a_clean_comparison_is_zero_everywhere() -> None:
    row = compare(_outcome(), _outcome(), by_name(["sigkill-detect"])[0])
    assert row.clean() and not row.bound_documented
    assert "bound" not in row.as_dict()


def test_each_column_counts_its_own_difference() -> None:
    run = _outcome(
        events_final=98, events_rows=99, detections_rows=4, detection_ids={"d1", "d2", "d9"},
        campaigns={"cmp-b": ("growing", ["a1", "a2"])},
        pages=Counter({("k1", "firing", "warning", 1, ("a1",)): 3}), dlq_messages=5,
    )  # fmt: skip
    row = compare(_outcome(), run, by_name(["sigkill-lander"])[0])
    assert (row.events_lost, row.rows_duplicated, row.detections_missing, row.detections_extra) == (2, 2, 1, 1)
    assert (row.campaigns_differ, row.pages_twice, row.dlq_difference) == (2, 2, 3)
    assert not row.clean()


def test_the_same_campaign_under_another_id_does_not_differ() -> None:
    renamed = _outcome(campaigns={"cmp-z": ("growing", ["a1", "a2", "a3"]), "cmp-old": ("merged", ["a1"])})
    assert compare(_outcome(), renamed, by_name(["sigkill-campaigns"])[0]).campaigns_differ == 0


def test_the_alerter_row_is_held_to_its_documented_bound() -> None:
    alerter = by_name(["sigkill-alerter"])[0]
    twice = Counter({("k1", "firing", "warning", 1, ("a1",)): 2, ("k2", "firing", "warning", 1, ("a2",)): 2})
    within = compare(_outcome(), _outcome(pages=twice, in_flight_keys=2), alerter)
    assert within.bound_documented and within.bound == {**within.bound, "column": "pages_twice", "at_most": 2}
    assert within.clean()
    beyond = compare(_outcome(), _outcome(pages=twice, in_flight_keys=1), alerter)
    assert not beyond.clean(), "two keys paged twice when only one was in flight is beyond the bound"
    assert "Bounds by design" in markdown([within], {"command": "make chaos", "generated_at": "now",
        "scenario": "s", "seed": 1, "events": 100, "publish_s": 1.0, "clean_wall_s": 1.0})  # fmt: skip


def test_every_fault_has_a_cli_name() -> None:
    names = [f.name.replace(" ", "-").replace("/", "-") for f in FAULTS]
    assert by_name(names) == list(FAULTS)
