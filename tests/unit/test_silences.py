"""Silences: what they match, that expiry ends them, that the alerter keeps silenced alerts from
on-call only, and that `silence add` publishes a valid silence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from extractguard.alerting import commands
from extractguard.alerting.silences import Silence, SilenceBook, to_page
from extractguard.cli import main
from extractguard.contracts.schemas import validate


def _alert(**over: Any) -> dict[str, Any]:
    base = {"rule": "model_burst", "entity_kind": "model", "entity": "m-3", "labels": {"severity": "warning"}}
    return {**base, **over}


def test_a_silence_matches_every_field_it_names_while_in_force() -> None:
    s = Silence.new(rule="model_burst", labels={"severity": "warning"}, duration_s=60, reason="r", created_by="me",
                    now_ms=1_000)  # fmt: skip
    assert s.matches(_alert(), 1_000) and s.matches(_alert(entity="m-4"), 30_000)
    assert not s.matches(_alert(rule="template_burst"), 2_000)
    assert not s.matches(_alert(labels={"severity": "critical"}), 2_000)
    assert not s.matches(_alert(), 61_000)  # over
    window = Silence.new(entity="m-3", duration_s=60, reason="r", created_by="me", now_ms=0, starts_at_ms=10_000)
    assert not window.matches(_alert(), 5_000) and window.matches(_alert(), 15_000)  # a maintenance window
    assert not s.expired(2_000).matches(_alert(), 3_000)
    with pytest.raises(ValueError, match="silence everything"):
        Silence.new(duration_s=60, reason="r", created_by="me", now_ms=0)


def test_silenced_and_recorded_alerts_do_not_page() -> None:
    book = SilenceBook([Silence.new(entity="m-3", duration_s=60, reason="r", created_by="me", now_ms=0)])
    alerts = [_alert(), _alert(entity="m-4"), _alert(entity="m-5", labels={"paged": "false"})]
    assert [a["entity"] for a in to_page(alerts, book, 1_000)] == ["m-4"]


def test_payload_and_row_roundtrip(golden: dict[str, list[Path]]) -> None:
    for path in golden["alert_silence"] + golden["alert_delivery"]:
        validate(path.parent.name, orjson.loads(path.read_bytes()))
    s = Silence.new(rule="x", labels={"a": "b"}, duration_s=60, reason="r", created_by="me", now_ms=0)
    p = validate("alert_silence", s.payload())
    row = [p["silence_id"], p["rule"], p["entity_kind"], p["entity"], p["labels"], p["starts_at_ms"],
           p["ends_at_ms"], p["reason"], p["created_by"], p["updated_at_ms"]]  # fmt: skip
    assert Silence.from_row(row) == s


def test_silence_add_publishes_a_valid_silence(monkeypatch: pytest.MonkeyPatch) -> None:
    published: list[Silence] = []
    monkeypatch.setattr(commands, "publish_silence", lambda silence, _kafka: published.append(silence))
    result = CliRunner().invoke(
        main, ["silence", "add", "--rule", "model_burst", "--label", "severity=warning", "--duration", "30m",
               "--reason", "m-3 launch load test", "--by", "oncall"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (silence,) = published
    assert silence.ends_at_ms - silence.starts_at_ms == 30 * 60 * 1000
    assert (silence.rule, silence.labels, silence.created_by) == ("model_burst", {"severity": "warning"}, "oncall")
    validate("alert_silence", silence.payload())
    refused = CliRunner().invoke(main, ["silence", "add", "--reason", "everything"])
    assert refused.exit_code != 0 and "silence everything" in refused.output
