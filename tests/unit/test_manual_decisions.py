"""Decisions made by hand (`extractguard decisions add|lift`): recorded with who and why on the
same decision records as the policy's, enforced by the bouncers at once, standing against the
policy until they expire or are lifted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from extractguard.contracts.schemas import validate
from extractguard.enforcement import commands
from extractguard.enforcement.book import EnforcementBook
from extractguard.enforcement.policy import load_policy
from extractguard_gateway.enforcement.cache import DecisionCache, Identity
from tests.unit.test_enforcement import MIN, POLICY, campaign

HOUR = 3_600_000


@pytest.fixture
def book(tmp_path: Path) -> EnforcementBook:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return EnforcementBook(load_policy(path))


def suspend(entities: list[str], ttl_s: float = 86_400, **extra: Any) -> dict[str, Any]:
    return {"scope": "account", "entities": entities, "action": "suspend", "ttl_s": ttl_s, "params": {}, **extra}


def test_a_manual_suspend_is_recorded_with_who_and_why_and_refused_at_the_gateway(book: EnforcementBook) -> None:
    records = book.order(suspend(["acct-1"]), "ana", now_ms=0, note="case 4420", group_id="grp-0123456789ab")
    (decision,) = records
    validate("enforcement_decision", decision)
    assert (
        decision["status"] == "active" and decision["rule"] == "manual" and decision["group_id"] == "grp-0123456789ab"
    )
    assert decision["evidence"]["source"] == "manual"
    assert decision["approval"] == {"required": False, "reason": "decided by hand", "by": "ana", "at_ms": 0,
                                    "note": "case 4420"}  # fmt: skip
    assert "ana" in decision["reason"] and "case 4420" in decision["reason"]
    assert decision["expires_at_ms"] == 86_400_000
    cache = DecisionCache()
    cache.apply(decision)
    assert cache.verdict(Identity(account="acct-1"), now_ms=5).status == 403
    assert cache.verdict(Identity(account="acct-2"), now_ms=5).status == 200


def test_a_manual_decision_replaces_the_policys_and_the_policy_does_not_override_it(book: EnforcementBook) -> None:
    members = ["a", "b", "c"]
    observed = book.campaign(campaign(members), now_ms=0)
    held = next(d for d in observed if d["entity"] == "a")
    manual = book.order({**suspend(["a"]), "action": "observe"}, "ana", now_ms=MIN, note="watch only")
    assert [d["status"] for d in manual] == ["superseded", "active"]
    assert manual[0]["decision_id"] == held["decision_id"] and manual[1]["supersedes"] == held["decision_id"]
    # The campaign climbs to throttle; the account a person set to observe stays observed.
    climbed = book.campaign(campaign(members), now_ms=6 * MIN)
    assert {d["entity"] for d in climbed if d["status"] == "active"} == {"b", "c", "198.51.100.0/24"}
    assert book.decisions["account:a"]["rule"] == "manual"


def test_lifting_ends_a_decision_and_the_policy_leaves_the_target_alone_until_it_would_have_lapsed(
    book: EnforcementBook,
) -> None:
    members = ["a", "b", "c"]
    book.campaign(campaign(members), now_ms=0)
    group = book.decisions["account:a"]["group_id"]
    lifted = book.lift(group, "ana", now_ms=2 * MIN, note="their batch job, verified")
    assert len(lifted) == 4 and {d["status"] for d in lifted} == {"lifted"}
    for record in lifted:
        validate("enforcement_decision", record)
        assert record["effect"] == {"kind": "none"}
        assert record["lifted"] == {"by": "ana", "at_ms": 2 * MIN, "note": "their batch job, verified"}
        assert record["reason"].startswith("lifted by ana: their batch job, verified")
    assert book.campaign(campaign(members), now_ms=10 * MIN) == []  # within the lifted decisions' hour
    assert book.expire_due(now_ms=2 * HOUR) == []  # a lifted decision is not expired again
    again = book.campaign(campaign(members), now_ms=2 * HOUR)
    assert {d["action"] for d in again if d["status"] == "active"} == {"observe"}
    assert book.lift("dec-0000000000000000", "ana", now_ms=2 * HOUR) == []


def test_a_lifted_manual_decision_is_no_longer_enforced(book: EnforcementBook) -> None:
    (decision,) = book.order(suspend(["acct-1"]), "ana", now_ms=0, note="case")
    (lifted,) = book.lift(decision["decision_id"], "bo", now_ms=MIN, note="wrong account")
    cache = DecisionCache()
    cache.apply(decision)
    cache.apply(lifted)
    assert cache.verdict(Identity(account="acct-1"), now_ms=MIN + 1).status == 200


def test_an_order_for_an_unknown_action_or_bad_parameters_is_refused(book: EnforcementBook) -> None:
    with pytest.raises(ValueError, match="unknown action"):
        book.order({**suspend(["a"]), "action": "banish"}, "ana", now_ms=0)
    with pytest.raises(ValueError, match="rate_factor"):
        book.order({**suspend(["a"]), "action": "throttle", "params": {"rate_factor": 3}}, "ana", now_ms=0)
    assert book.decisions == {}


def test_decisions_add_sends_one_valid_order_per_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(commands, "_send", lambda _kafka, records: sent.extend(records))
    monkeypatch.setattr(commands, "campaign_members", lambda _id: [f"m-{n}" for n in range(12_001)])
    runner = CliRunner()
    order = ["--account", "acct-1", "--action", "throttle", "--ttl", "24h", "--note", "case 4420", "--by", "ana"]
    result = runner.invoke(commands.decisions, ["add", *order, "--param", "rate_factor=0.2"])
    assert result.exit_code == 0, result.output
    ((key, record),) = sent
    assert record["verdict"] == "decide" and record["by"] == "ana" and record["note"] == "case 4420"
    assert record["order"] == {"scope": "account", "entities": ["acct-1"], "action": "throttle",
                               "params": {"rate_factor": 0.2}, "ttl_s": 86_400.0, "campaign_id": None,
                               "group_id": key}  # fmt: skip
    assert f"decisions lift {key}" in result.output
    sent.clear()
    result = runner.invoke(commands.decisions, ["add", "--campaign", "cmp-0123456789ab", "--action", "suspend",
                                                "--ttl", "7d", "--note", "confirmed"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [len(r["order"]["entities"]) for _k, r in sent] == [5000, 5000, 2001]
    assert len({r["order"]["group_id"] for _k, r in sent}) == 1
    assert {r["order"]["campaign_id"] for _k, r in sent} == {"cmp-0123456789ab"}


@pytest.mark.parametrize(
    ("arguments", "refusal"),
    [
        (["--action", "suspend", "--ttl", "1h", "--note", "x"], "exactly one target"),
        (["--account", "a", "--org", "o", "--action", "suspend", "--ttl", "1h", "--note", "x"], "exactly one target"),
        (["--account", "a", "--action", "banish", "--ttl", "1h", "--note", "x"], "unknown action"),
        (["--account", "a", "--action", "suspend", "--ttl", "soon", "--note", "x"], "not a duration"),
        (
            ["--account", "a", "--action", "throttle", "--ttl", "1h", "--note", "x", "--param", "rate_factor=2"],
            "rate_factor",
        ),
        (["--account", "a", "--action", "suspend", "--ttl", "1h"], "--note"),
    ],
)
def test_decisions_add_refuses_a_bad_order_before_anything_is_sent(
    arguments: list[str], refusal: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands, "_send", lambda *_: pytest.fail("sent"))
    result = CliRunner().invoke(commands.decisions, ["add", *arguments])
    assert result.exit_code == 2 and refusal in result.output, result.output


def test_decisions_lift_names_what_it_lifts_and_refuses_what_is_not_in_force(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    in_force = {"decision_id": "dec-00000000000000aa", "group_id": "grp-0000000000bb", "status": "active",
                "action": "suspend", "expires_at_ms": 2**62}  # fmt: skip
    monkeypatch.setattr(commands, "_send", lambda _kafka, records: sent.extend(records))
    monkeypatch.setattr(commands, "current_decisions", lambda _kafka: [in_force])
    result = CliRunner().invoke(commands.decisions, ["lift", "grp-0000000000bb", "--note", "wrong", "--by", "bo"])
    assert result.exit_code == 0, result.output
    ((_key, record),) = sent
    assert (record["verdict"], record["ref"], record["by"], record["note"]) == (
        "lift",
        "grp-0000000000bb",
        "bo",
        "wrong",
    )
    missing = CliRunner().invoke(commands.decisions, ["lift", "dec-00000000000000cc", "--note", "x"])
    assert missing.exit_code == 1 and "no decision in force" in missing.output
    assert orjson.dumps(record)


def test_an_order_counts_its_ttl_from_when_it_was_given_and_a_lapsed_one_decides_nothing(
    book: EnforcementBook,
) -> None:
    (late,) = book.order(suspend(["a"], ttl_s=3600), "ana", now_ms=30 * MIN, ordered_at_ms=0)
    assert late["expires_at_ms"] == 60 * MIN  # read half an hour late: half an hour left
    assert book.order(suspend(["b"], ttl_s=3600), "ana", now_ms=2 * HOUR, ordered_at_ms=0) == []
    assert "account:b" not in book.decisions
