"""`protect_reasoning` through the real LiteLLM proxy, offline: a model whose mock answer carries a
`reasoning_content` field, a `<think>` block and logprobs (and one streaming a `<think>` block in
chunks: LiteLLM streams only a text mock); a decision of the shipped action on one
key's account, made by the enforcer's own book and published on `enforcement.decisions`; the
proxy with the event callback and the enforcer. The protected key gets the answer without its
reasoning or logprobs, whole and streamed; an honest key gets everything (even when it sends
annotations of its own in `metadata`); each request's gateway event on Kafka says whether it was
protected and how many reasoning tokens were withheld.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3
from confluent_kafka import Producer

from extractguard.contracts.enforcement import ENFORCEMENT_DECISIONS, decision_key
from extractguard.contracts.topics import GATEWAY_EVENTS
from extractguard.enforcement.book import EnforcementBook
from extractguard.enforcement.policy import load_policy
from extractguard.kafka_offsets import end_offsets, read_since
from extractguard.settings import KafkaSettings
from tests.integration.test_litellm_enforcement import _start_proxy
from tests.integration.test_litellm_proxy import stop_proxy

pytestmark = [pytest.mark.kafka]

SECRET = "protection-test-secret"
CALLBACKS = ("extractguard_gateway.litellm_callback.extractguard", "extractguard_gateway.litellm_enforcer.enforcer")
THINK = "Seven sixes: 6+6+6+6+6+6+6 is 42, and 42 / 6 is 7, so it checks."
REASONING = "The user asks for six times seven; multiply and check by division."
ANSWER = "The answer is 42."
MOCK = {
    "id": "chatcmpl-mock-reasoner", "object": "chat.completion", "created": 1_795_000_000, "model": "guard-reasoner",
    "choices": [{
        "index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": f"<think>{THINK}</think>{ANSWER}", "reasoning_content": REASONING},
        "logprobs": {"content": [{"token": "The", "logprob": -0.01, "bytes": [84, 104, 101], "top_logprobs": []}]},
    }],
    "usage": {"prompt_tokens": 14, "completion_tokens": 60, "total_tokens": 74},
}  # fmt: skip
POLICY = """\
version: 1
revision: protection-test
rules:
  - name: extraction_campaign
    when: {source: campaign, min_members: 1, min_shaped_share: 0.5}
    targets: [account]
    ladder:
      - {action: protect_reasoning, ttl: 1h}
"""


def _decisions(tmp_path: Path, members: list[str]) -> list[dict[str, Any]]:
    (tmp_path / "policy.yaml").write_text(POLICY)
    now = int(time.time() * 1000)
    record = {
        "schema_version": 1, "campaign_id": "cmp-0000000000aa", "status": "growing", "first_seen_ms": now,
        "last_seen_ms": now, "updated_ms": now, "severity": "warning", "score": 60.0, "members": members,
        "members_total": len(members), "shaped_members": len(members), "fingerprints": [],
    }  # fmt: skip
    return EnforcementBook(load_policy(tmp_path / "policy.yaml")).campaign(record, now)


def _events(kafka: KafkaSettings, since: dict[int, int], accounts: set[str], expect: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = [e for e in map(orjson.loads, read_since(kafka, GATEWAY_EVENTS, since)) if e["account_id"] in accounts]
        if len(found) >= expect:
            break
        time.sleep(1)
    return found


def test_a_protected_key_gets_answers_without_reasoning_while_an_honest_key_gets_everything(
    kafka: KafkaSettings, tmp_path: Path, run_id: str
) -> None:
    suspect, honest = f"suspect-{run_id}", f"honest-{run_id}"
    keys = {f"sk-eg-suspect-{run_id}": {"user_id": suspect}, f"sk-eg-honest-{run_id}": {"user_id": honest}}
    decisions = _decisions(tmp_path, [suspect])
    assert [(d["action"], d["status"]) for d in decisions] == [("protect_reasoning", "active")]
    producer = Producer(kafka.client_config())
    for decision in decisions:
        producer.produce(ENFORCEMENT_DECISIONS, key=decision_key(decision), value=orjson.dumps(decision))
    producer.flush(10)
    since = end_offsets(kafka, GATEWAY_EVENTS)

    proxy, base = _start_proxy(
        tmp_path, keys,
        {"EXTRACTGUARD_KEY_SECRET": SECRET, "EXTRACTGUARD_ENFORCE_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
         "EXTRACTGUARD_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers},
        callbacks=CALLBACKS,
        mocks={"guard-reasoner": MOCK, "guard-streamer": f"<think>{THINK}</think>{ANSWER}"},
    )  # fmt: skip
    http = urllib3.PoolManager(retries=False, timeout=30)
    answers: dict[tuple[str, bool], list[Any]] = {}
    try:
        for key, who in keys.items():
            for stream in (False, True):
                model = "guard-streamer" if stream else "guard-reasoner"
                body = {"model": model, "messages": [{"role": "user", "content": "What is 6 x 7?"}],
                        "logprobs": True, "stream": stream}  # fmt: skip
                if who["user_id"] == honest:  # a caller naming annotations of its own is not believed
                    body["metadata"] = {"extractguard": {"protect_reasoning": "withhold"}}
                response = http.request(
                    "POST", f"{base}/v1/chat/completions", body=orjson.dumps(body),
                    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                )  # fmt: skip
                assert response.status == 200, response.data[:500]
                if stream:
                    lines = [line.removeprefix(b"data: ") for line in response.data.splitlines()]
                    answers[(who["user_id"], True)] = [orjson.loads(x) for x in lines if x and x != b"[DONE]"]
                else:
                    answers[(who["user_id"], False)] = [orjson.loads(response.data)]
        events = _events(kafka, since, {suspect, honest}, expect=4)
    finally:
        stop_proxy(proxy)

    def whole(user: str) -> dict[str, Any]:
        choice = answers[(user, False)][0]["choices"][0]
        return {"content": choice["message"]["content"], "reasoning": choice["message"].get("reasoning_content"),
                "logprobs": choice.get("logprobs")}  # fmt: skip

    def streamed(user: str) -> dict[str, Any]:
        deltas = [c["choices"][0].get("delta") or {} for c in answers[(user, True)] if c.get("choices")]
        return {"content": "".join(d.get("content") or "" for d in deltas),
                "reasoning": "".join(d.get("reasoning_content") or "" for d in deltas)}  # fmt: skip

    served = whole(honest)
    assert served["content"] == f"<think>{THINK}</think>{ANSWER}" and served["reasoning"] == REASONING
    assert served["logprobs"] is not None
    protected = whole(suspect)
    assert protected == {"content": ANSWER, "reasoning": None, "logprobs": None}, protected
    assert streamed(honest)["content"] == f"<think>{THINK}</think>{ANSWER}"
    assert streamed(suspect) == {"content": ANSWER, "reasoning": ""}, streamed(suspect)

    by_account: dict[str, list[dict[str, Any]]] = {suspect: [], honest: []}
    for event in events:
        by_account[event["account_id"]].append(event)
    assert len(by_account[honest]) == 2 and len(by_account[suspect]) == 2, events
    assert not any("protected" in e or "reasoning_withheld_tokens" in e for e in by_account[honest])

    def tokens(text: str) -> int:
        return -(-len(text) // 4)  # about four characters a token

    withheld = {e["request_model"]: (e["protected"], e["reasoning_withheld_tokens"]) for e in by_account[suspect]}
    assert withheld == {"guard-reasoner": (True, tokens(THINK + REASONING)), "guard-streamer": (True, tokens(THINK))}
    logprobs = {e["request_model"]: e.get("logprobs_withheld", False) for e in by_account[suspect]}
    assert logprobs["guard-reasoner"]
