"""protect_reasoning: the action's decision and effect, the bouncer carrying its annotations with
whatever else is in force, what protection takes out of a response (and what it leaves), and the
gateway event that records it."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from extractguard.contracts.schemas import validate
from extractguard.enforcement.book import EnforcementBook
from extractguard.enforcement.policy import load_policy
from extractguard.evaluation.enforcement_replay import RequestLog, enforcement_lines, replay
from extractguard.evaluation.scoring import ScenarioScore
from extractguard.lander.rows import EVENT_SCHEMA, event_row
from extractguard_gateway.enforcement.cache import DecisionCache, Identity
from extractguard_gateway.enforcement.protection import Protection, StreamProtector, protect, reasoning_tokens
from extractguard_gateway.events import ObservedRequest, build

POLICY = """\
version: 1
revision: protect-test
rules:
  - name: campaign
    when: {source: campaign, min_members: 2, min_shaped_share: 0.5}
    targets: [account, ip_prefix]
    min_prefix_sharers: 1
    ladder:
      - {action: protect_reasoning, ttl: 1h, escalate_after: 10m}
      - {action: throttle, ttl: 1h, params: {rate_factor: 0.5}}
"""
ANSWER = "The answer is 42."


def _campaign(members: list[str]) -> dict[str, Any]:
    return {
        "schema_version": 1, "campaign_id": "cmp-0123456789ab", "status": "growing", "first_seen_ms": 0,
        "last_seen_ms": 0, "updated_ms": 0, "severity": "warning", "score": 50.0, "members": members,
        "members_total": len(members), "shaped_members": len(members),
        "fingerprints": [{"fingerprint": "ip_prefix:198.51.100.0/24", "weight": 9.0, "sharers": len(members)}],
    }  # fmt: skip


def _response() -> dict[str, Any]:
    return {
        "choices": [{
            "index": 0, "finish_reason": "stop", "logprobs": {"content": [{"token": "The", "logprob": -0.1}]},
            "message": {
                "role": "assistant", "content": f"<think>six sevens are forty-two</think>{ANSWER}",
                "reasoning_content": "Multiply.", "thinking_blocks": [{"type": "thinking", "thinking": "6*7"}],
                "provider_specific_fields": {"reasoning": "and check"},
            },
        }],
        "usage": {"prompt_tokens": 9, "completion_tokens": 40},
    }  # fmt: skip


@pytest.fixture
def book(tmp_path: Path) -> EnforcementBook:
    (tmp_path / "policy.yaml").write_text(POLICY)
    return EnforcementBook(load_policy(tmp_path / "policy.yaml"))


def test_a_campaign_under_protection_is_annotated_and_escalation_keeps_the_protection_of_its_prefix(
    book: EnforcementBook,
) -> None:
    first = book.campaign(_campaign(["a", "b"]), now_ms=0)
    for record in first:
        validate("enforcement_decision", record)
    assert {(r["scope"], r["action"], r["status"]) for r in first} == {
        ("account", "protect_reasoning", "active"), ("ip_prefix", "protect_reasoning", "active")
    }  # fmt: skip
    assert not any(r["approval"]["required"] for r in first)  # every request is still answered
    cache = DecisionCache()
    for record in first:
        cache.apply(record)
    suspect = cache.verdict(Identity(account="a", ip_prefix="198.51.100.0/24"), now_ms=1)
    assert suspect.admitted and Protection.from_annotations(suspect.annotations) == Protection()
    assert cache.verdict(Identity(account="honest", ip_prefix="203.0.113.0/24"), now_ms=1).annotations == {}
    # A throttle on the account; the prefix's protection still rides on what the throttle admits.
    cache.apply({**first[0], "decision_id": "dec-00000000000000ff", "action": "throttle", "updated_at_ms": 5,
                 "effect": {"kind": "limit", "rate_factor": 0.5, "retry_after_s": 9}})  # fmt: skip
    verdicts = [cache.verdict(Identity(account="a", ip_prefix="198.51.100.0/24"), now_ms=6) for _ in range(4)]
    admitted = [v for v in verdicts if v.admitted]
    assert len(admitted) == 2 and all(Protection.from_annotations(v.annotations) for v in admitted)
    counted: Counter[tuple[str, str]] = Counter()
    for (_decision, action, _kind, outcome), n in cache.take_counts().items():
        counted[(action, outcome)] += n
    # Both protections on the first verdict; the prefix's on the two the throttle admitted.
    assert counted == {("protect_reasoning", "annotated"): 4, ("throttle", "admitted_throttled"): 2,
                       ("throttle", "throttled"): 2}  # fmt: skip


def test_protection_takes_the_reasoning_and_logprobs_and_serves_the_answer() -> None:
    response = _response()
    withheld = protect(response, Protection())
    choice = response["choices"][0]
    message = choice["message"]
    assert message["content"] == ANSWER and choice["logprobs"] is None
    assert not {"reasoning_content", "thinking_blocks"} & set(message) and message["provider_specific_fields"] == {}
    taken = "six sevens are forty-two" + "Multiply." + "6*7" + "and check"
    assert withheld.reasoning_tokens == -(-len(taken) // 4) and withheld.logprobs
    assert response["usage"] == _response()["usage"]  # the answer's usage is served unchanged


def test_a_summary_replaces_the_reasoning_and_the_providers_own_count_is_what_is_recorded() -> None:
    response = _response()
    response["usage"]["completion_tokens_details"] = {"reasoning_tokens": 321}
    assert reasoning_tokens(response) == 321
    withheld = protect(response, Protection(mode="summary", summary="(summary)", drop_logprobs=False))
    message = response["choices"][0]["message"]
    assert message["content"] == f"<think>(summary)</think>{ANSWER}" and message["reasoning_content"] == "(summary)"
    assert response["choices"][0]["logprobs"] is not None and not withheld.logprobs
    assert withheld.reasoning_tokens == 321


def test_worked_steps_go_only_when_the_request_asked_for_them_and_a_final_answer_marks_the_end() -> None:
    worked = "First, 6 x 7: six groups of seven.\nThat makes 42.\n\nFinal answer: 42"
    asked = {"choices": [{"message": {"content": worked}}]}
    protect(asked, Protection(), cot_requested=True)
    assert asked["choices"][0]["message"]["content"] == "Final answer: 42"
    not_asked = {"choices": [{"message": {"content": worked}}]}
    assert protect(not_asked, Protection()).reasoning_tokens == 0
    assert not_asked["choices"][0]["message"]["content"] == worked


def test_an_answer_without_reasoning_is_served_byte_for_byte() -> None:
    plain = {"choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "logprobs": None}]}
    before = copy.deepcopy(plain)
    withheld = protect(plain, Protection())
    assert plain == before and withheld.reasoning_tokens == 0 and not withheld.logprobs


def test_a_stream_loses_its_reasoning_deltas_and_think_blocks_split_across_chunks() -> None:
    protector = StreamProtector(Protection())
    parts = [{"reasoning_content": "plan"}, {"content": "<th"}, {"content": "ink>42 = 6*7</thi"},
             {"content": "nk>The answer"}, {"content": " is 42.<"}]  # fmt: skip
    chunks = [{"choices": [{"delta": d, "logprobs": {"content": []}, "finish_reason": None}]} for d in parts]
    chunks[-1]["choices"][0]["finish_reason"] = "stop"
    served = [protector.chunk(c)["choices"][0] for c in chunks]
    assert "".join(c["delta"].get("content", "") for c in served) == "The answer is 42.<"
    assert not any("reasoning_content" in c["delta"] for c in served) and all(c["logprobs"] is None for c in served)
    assert protector.withheld.reasoning_tokens == -(-len("plan" + "42 = 6*7") // 4)


def test_the_event_records_protection_and_an_unprotected_event_is_as_before() -> None:
    request = ObservedRequest("a", "m", 1_795_000_000_000, 10, 200, 5, prompt="What is 6 x 7?")
    plain = build(request, b"s").event
    assert not {"protected", "reasoning_withheld_tokens", "logprobs_withheld"} & set(plain)
    request.protected, request.reasoning_withheld_tokens, request.logprobs_withheld = True, 37, True
    event = build(request, b"s").event
    validate("gateway_event", event)
    assert (event["protected"], event["reasoning_withheld_tokens"], event["logprobs_withheld"]) == (True, 37, True)
    row = dict(zip(EVENT_SCHEMA.names, event_row(event, 0, 0), strict=True))
    assert (row["protected"], row["reasoning_withheld_tokens"], row["logprobs_withheld"]) == (True, 37, True)
    old = dict(zip(EVENT_SCHEMA.names, event_row(plain, 0, 0), strict=True))
    assert (old["protected"], old["reasoning_withheld_tokens"], old["logprobs_withheld"]) == (False, None, False)


def test_the_scorecard_reports_reasoning_per_campaign_and_organic_requests_protected() -> None:
    log = RequestLog()
    members = [f"c{i}" for i in range(5)]
    for t in range(0, 3_600_000, 10_000):
        for account in members:
            log.observe(account, "campaign", t, {"account_id": account, "reasoning_output_tokens": 100})
        log.observe("o1", "organic", t, {"account_id": "o1", "reasoning_output_tokens": 100})
    detection = {
        "detector": "campaign", "entity_kind": "campaign", "entity": "cmp-000000000001", "score": 40.0,
        "evidence": {"summary": "campaign cmp-000000000001 (growing): 5 accounts", "accounts": members,
                     "features": [{"name": "members", "value": 5}, {"name": "shaped_members", "value": 5}]},
    }  # fmt: skip
    updates = [{**detection, "detected_at_ms": t} for t in range(60_000, 3_600_000, 60_000)]
    outcome = replay(log, updates, dict.fromkeys(members, "x"), {"x": 60_000})
    take = outcome.reasoning["x"]
    # Every campaign token is accounted for once: before, served, withheld or refused.
    total = take.before_decision + take.served_after_decision + take.withheld_after_decision
    assert total + take.refused_after_decision == 360 * 5 * 100
    assert take.withheld_after_decision > take.served_after_decision > 0 and take.refused_after_decision > 0
    assert take.requests_protected * 100 == take.withheld_after_decision
    assert outcome.organic_requests_protected == 0 and outcome.organic_requests_refused == 0
    control = ScenarioScore("control", 1, 1, [], {}, 10, 0, 0.0, 0, 0.0, 0, {}, organic_requests_protected=0)
    assert enforcement_lines([control])[-1] == "| control | — | — | — | — | — | — | 0 |"
