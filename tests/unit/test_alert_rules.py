"""Rule files: the shipped defaults, a bad file says where, files reload, and the shipped grouped
rule makes one actor's burst one alert."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from extractguard.alerting.book import AlertBook
from extractguard.alerting.reload import RuleFiles
from extractguard.alerting.rules import (
    DEFAULT_RULES,
    OPTIONAL_RULES,
    SHIPPED_RULES_DIR,
    AlertRule,
    RuleFileError,
    load_rule_file,
    load_rule_files,
    rule_paths,
)
from extractguard.cli import main
from extractguard.contracts.schemas import validate

ACTOR_RULES = SHIPPED_RULES_DIR.parent / "rule_examples" / "one_alert_per_actor"

#: The shipped stream rules: (name, detectors, kinds).
SHIPPED = [
    ("actor_burst", {"burst"}, {"account", "org", "api_key", "ip_prefix", "asn", "tls_ja4", "sdk"}),
    ("template_burst", {"burst"}, {"template"}),
    ("model_burst", {"burst"}, {"model"}),
    ("lockstep_model_pivot", {"launch"}, {"model"}),
    ("traffic_mix_drift", {"mix_drift"}, None),
    ("extraction_campaign", {"campaign"}, {"campaign"}),
]


def test_shipped_rules() -> None:
    assert [
        (r.name, set(r.detectors), None if r.entity_kinds is None else set(r.entity_kinds)) for r in DEFAULT_RULES
    ] == SHIPPED
    assert all(r.min_severity == "warning" and r.record_only is None for r in DEFAULT_RULES)
    # Only the actor's burst is grouped: the others are one alert per entity already.
    assert [r.name for r in DEFAULT_RULES if r.group is not None] == ["actor_burst"]
    assert [r.name for r in OPTIONAL_RULES] == ["extraction_behaviour"]
    rule = DEFAULT_RULES[0]
    assert (
        rule.dedup_key_of({"entity_kind": "ip_prefix", "entity": "10.0.0.0/24"}) == "actor_burst:ip_prefix:10.0.0.0/24"
    )


def _write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


RULE = "version: 1\nstream_rules:\n  - name: r\n    summary: s\n    detectors: [burst]\n"


@pytest.mark.parametrize(
    ("extra", "line", "field", "reason"),
    [
        ("    min_severity: loud\n", 6, "stream_rules[0].min_severity", "'info', 'warning' or 'critical'"),
        ("    entity_kind: [org]\n", 6, "stream_rules[0].entity_kind", "Extra inputs are not permitted"),
        ("    dedup_key: '{rule}:{account}'\n", 6, "stream_rules[0].dedup_key", "unknown field(s) ['account']"),
        ("    group: {by: accounts, within_s: -1}\n", 6, "stream_rules[0].group.within_s", "greater than or equal"),
    ],
)
def test_a_bad_rule_names_file_line_and_field(tmp_path: Path, extra: str, line: int, field: str, reason: str) -> None:
    path = _write(tmp_path, RULE + extra)
    with pytest.raises(RuleFileError) as caught:
        load_rule_file(path)
    assert (caught.value.path, caught.value.line, caught.value.field) == (path, line, field)
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{path}:{line}: {field}: ")


def test_bad_yaml_and_bad_sql_rules_say_where(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match=r"rules.yaml:3: "):
        load_rule_file(_write(tmp_path, "version: 1\nstream_rules:\n\t- name: tab\n"))
    sql = ("version: 1\nsql_rules:\n  - name: q\n    summary: s\n    entity_kind: org\n    entity_column: org_id\n"
           "    value_column: v\n    threshold: 1\n    query: DROP TABLE events\n")  # fmt: skip
    with pytest.raises(RuleFileError) as caught:
        load_rule_file(_write(tmp_path, sql))
    assert (caught.value.line, caught.value.field) == (9, "sql_rules[0].query")
    first, second = _write(tmp_path, RULE, "a.yaml"), _write(tmp_path, RULE, "b.yaml")
    with pytest.raises(RuleFileError, match="also used in"):
        load_rule_files([first, second])


def test_rules_check_command(tmp_path: Path) -> None:
    runner = CliRunner()
    shipped = runner.invoke(main, ["rules", "check"])
    assert shipped.exit_code == 0, shipped.output
    assert "ok: 2 file(s), 7 stream and 3 SQL rules" in shipped.output
    bad = _write(tmp_path, RULE + "    min_severity: loud\n")
    failed = runner.invoke(main, ["rules", "check", str(bad)])
    assert failed.exit_code == 1
    assert f"{bad}:6: stream_rules[0].min_severity" in failed.output
    assert runner.invoke(main, ["rules", "check", str(ACTOR_RULES)]).exit_code == 0


def test_changed_files_reload_and_a_broken_change_keeps_the_rules(tmp_path: Path) -> None:
    path = _write(tmp_path, RULE)
    files = RuleFiles(tmp_path)
    assert files.reload_if_changed() is None
    path.write_text(RULE.replace("name: r", "name: renamed"))
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
    reloaded = files.reload_if_changed()
    assert reloaded is not None and [r.name for r in reloaded.stream] == ["renamed"]
    path.write_text(RULE + "    min_severity: loud\n")
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 10))
    assert files.reload_if_changed() is None
    assert [r.name for r in files.rules.stream] == ["renamed"]


def _burst(n: int, kind: str, entity: str, accounts: list[str], window: int = 5) -> dict[str, Any]:
    return {
        "schema_version": 1, "detection_id": f"{n:032x}", "detector": "burst", "detector_version": "1",
        "entity_kind": kind, "entity": entity, "score": 30.0, "threshold": 8.0,
        "window_start_ms": window * 60_000, "window_end_ms": (window + 1) * 60_000,
        "detected_at_ms": (window + 1) * 60_000, "severity": "warning",
        "evidence": {"summary": f"{kind} {entity} busy", "features": [], "accounts": accounts},
    }  # fmt: skip


ONE_ACTOR = [
    ("account", "acct-1"), ("org", "org-9"), ("api_key", "key-1"),
    ("ip_prefix", "203.0.113.0/24"), ("asn", "64500"), ("tls_ja4", "t13d1516h2_8daaf6152771"),
]  # fmt: skip


def _ungrouped(rules: tuple[AlertRule, ...]) -> tuple[AlertRule, ...]:
    return tuple(r.model_copy(update={"group": None}) if r.group else r for r in rules)


@pytest.mark.parametrize(
    "rules", [DEFAULT_RULES, load_rule_files(rule_paths(ACTOR_RULES)).stream], ids=["shipped", "example"]
)
def test_one_actors_burst_on_six_entities_is_one_alert_naming_them(rules: tuple[AlertRule, ...]) -> None:
    per_entity = AlertBook(_ungrouped(rules), renotify_s=300)
    pages = [a for i, (k, e) in enumerate(ONE_ACTOR) for a in per_entity.observe(_burst(i, k, e, ["acct-1"]), 0)]
    assert len(pages) == 6  # without the grouping: one page per entity

    book = AlertBook(rules, renotify_s=300)
    for i, (kind, entity) in enumerate(ONE_ACTOR):
        assert book.observe(_burst(i, kind, entity, ["acct-1", "acct-2"]), 0) == []  # paged after the batch
    (update,) = book.due_updates(now_ms=0)
    assert update["dedup_key"] == "actor_burst:account:acct-1"
    assert {(e["entity_kind"], e["entity"]) for e in update["entities"]} == set(ONE_ACTOR)
    assert "asn 64500" in update["summary"] and "org org-9" in update["summary"]
    validate("alert", update)
    # Another actor's burst at the same time is its own alert; the same actor later folds in.
    book.observe(_burst(10, "ip_prefix", "198.51.100.0/24", ["acct-7"]), 400_000)
    book.observe(_burst(11, "account", "acct-1", ["acct-1"], window=6), 400_000)
    assert {a["dedup_key"] for a in book.due_updates(400_000)} == {
        update["dedup_key"],
        "actor_burst:ip_prefix:198.51.100.0/24",
    }
    # A restarted alerter that remembers the alert keeps folding the actor's entities into it.
    fresh = AlertBook(rules, renotify_s=300)
    fresh.remember(update)
    fresh.observe(_burst(12, "asn", "64500", ["acct-1"], window=7), 500_000)
    fresh.observe(_burst(13, "api_key", "key-new", ["acct-2"], window=7), 500_000)
    assert [a["dedup_key"] for a in fresh.due_updates(800_000)] == [update["dedup_key"]]
    assert ("api_key", "key-new") in fresh.open[update["dedup_key"]].entities


def test_a_known_orgs_single_account_sweep_is_recorded_and_pages_once_linked() -> None:
    book = AlertBook(load_rule_files(rule_paths(ACTOR_RULES)).stream, renotify_s=0)
    book.observe(_burst(1, "account", "acct-e", ["acct-e"]), 0)  # the account's detection comes first
    book.observe(_burst(2, "org", "org-eval-partner", ["acct-e"]), 0)
    (sweep,) = book.due_updates(0)
    assert sweep["labels"]["paged"] == "false"  # recorded: on the alerts topic, not sent to on-call
    book.observe(_burst(5, "ip_prefix", "203.0.113.0/24", ["acct-e", "acct-x"]), 10)
    (linked,) = book.due_updates(10)
    assert linked["dedup_key"] == sweep["dedup_key"] and "paged" not in linked["labels"]
    unknown = AlertBook(load_rule_files(rule_paths(ACTOR_RULES)).stream, renotify_s=0)
    unknown.observe(_burst(1, "org", "org-stranger", ["acct-s"]), 0)
    (alone,) = unknown.due_updates(0)
    assert "paged" not in alone["labels"]


def test_a_rule_naming_a_detector_that_does_not_exist_is_refused_at_load(tmp_path: Path) -> None:
    path = _write(tmp_path, RULE.replace("[burst]", "[burts]"))
    with pytest.raises(RuleFileError) as caught:
        load_rule_file(path)
    assert (caught.value.line, caught.value.field) == (5, "stream_rules[0].detectors")
    assert "unknown detector(s) ['burts']" in caught.value.reason
