"""The decision feed over HTTP: the ingest's `GET /v1/decisions` under the gateways' tokens, and the
gateway's `HttpDecisionFeed` keeping a bouncer's cache from it: the whole set first, then each change
within moments of its arrival (a long poll), resumable from its position (the topic's offsets) at any
replica and across restarts, a snapshot again for a position that does not parse; and the bouncer's
reports, posted back to the ingest, produced to `enforcement.reports` (the invalid dead-lettered)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import urllib3

from extractguard.ingest.decision_feed import DecisionLog
from extractguard_gateway.enforcement.cache import DecisionCache, Identity
from extractguard_gateway.enforcement.http_feed import HttpDecisionFeed
from tests.unit.test_ingest_hostile import TOKEN, LiveIngest, _settings


class StillFollower:
    """Stands for the Kafka follower: the test applies the records itself."""

    def start(self) -> object:
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        return None


def decision(entity: str, kind: str, updated_at_ms: int, status: str = "active") -> dict[str, Any]:
    return {"decision_id": f"dec-{abs(hash(entity)) % 16**16:016x}", "scope": "account", "entity": entity,
            "action": {"deny": "suspend", "none": "observe"}[kind], "status": status, "expires_at_ms": 2**62,
            "updated_at_ms": updated_at_ms, "effect": {"kind": kind}}  # fmt: skip


@pytest.fixture
def served() -> Iterator[tuple[LiveIngest, DecisionLog]]:
    decisions = DecisionLog()
    live = LiveIngest(_settings(), decisions=(decisions, StillFollower()))
    yield live, decisions
    live.close()


def _status(cache: DecisionCache, account: str) -> int:
    return cache.verdict(Identity(account=account), int(time.time() * 1000)).status


def test_only_a_gateways_token_reads_the_decisions(served: tuple[LiveIngest, DecisionLog]) -> None:
    live, _decisions = served
    http = urllib3.PoolManager(retries=False)
    assert http.request("GET", live.url + "/v1/decisions").status == 401
    wrong = http.request("GET", live.url + "/v1/decisions", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401 and orjson.loads(wrong.data)["error"]["code"] == "unauthorized"
    bad = http.request("GET", live.url + "/v1/decisions?wait_s=soon", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bad.status == 400


def test_a_bouncer_gets_the_whole_set_then_each_change_within_moments(served: tuple[LiveIngest, DecisionLog]) -> None:
    live, decisions = served
    decisions.apply(decision("early", "deny", 1))
    cache = DecisionCache()
    feed = HttpDecisionFeed(cache, live.url, TOKEN, wait_s=0.5)
    assert feed.poll_once() == 1 and not cache.ready.is_set()  # the ingest's copy is not warm yet
    assert feed.position is None
    decisions.ready.set()
    asked = time.monotonic()
    assert feed.poll_once() == 1 and cache.ready.is_set() and _status(cache, "early") == 403
    assert time.monotonic() - asked < 0.4  # answered at once, not after the wait
    feed = HttpDecisionFeed(cache, live.url, TOKEN, wait_s=2).start()
    try:
        time.sleep(0.3)  # the poll is held, waiting for a change
        decisions.apply(decision("late", "deny", 2))
        sent = time.monotonic()
        while _status(cache, "late") != 403:
            assert time.monotonic() - sent < 2, "the change did not reach the bouncer within 2 s"
            time.sleep(0.02)
        decisions.apply(decision("late", "none", 3, status="lifted"))
        while _status(cache, "late") != 200:
            assert time.monotonic() - sent < 4, "the lift did not reach the bouncer"
            time.sleep(0.02)
    finally:
        feed.stop()
    assert feed.position == "0:3"


def test_a_bouncer_resumes_from_its_position_at_another_replica_or_after_a_restart(
    served: tuple[LiveIngest, DecisionLog],
) -> None:
    live, decisions = served
    decisions.ready.set()
    for n in range(3):
        decisions.apply(decision(f"a{n}", "deny", n + 1), at=(0, 10 + n))
    cache = DecisionCache()
    feed = HttpDecisionFeed(cache, live.url, TOKEN, wait_s=0)
    assert feed.poll_once() == 3 and feed.position == "0:13"
    decisions.apply(decision("a3", "deny", 9), at=(0, 13))
    assert feed.poll_once() == 1  # only what changed after its position
    assert feed.poll_once() == 0 and feed.position == "0:14"

    # The ingest restarted (or another replica answers): its log is read anew from the compacted
    # topic; a2's record was compacted away by a newer one, a0's lift is a tombstone.
    restarted = DecisionLog()
    restarted.apply(decision("a1", "deny", 2), at=(0, 11))
    restarted.apply(decision("a3", "deny", 9), at=(0, 13))
    restarted.apply(decision("a2", "none", 20, status="lifted"), at=(0, 14))
    restarted.apply(None, "account:a0", at=(0, 15))
    assert restarted.since(feed.position)[1:] == (False, [
        ("account:a2", decision("a2", "none", 20, status="lifted")), ("account:a0", None)])  # fmt: skip
    assert restarted.since("0:16") == ("0:16", False, [])
    # A replica behind the bouncer never moves it back, and gives it nothing twice.
    assert decisions.since("0:99") == ("0:99", False, [])


def test_a_position_that_does_not_parse_gets_the_whole_set_again(served: tuple[LiveIngest, DecisionLog]) -> None:
    live, decisions = served
    decisions.ready.set()
    for n in range(3):
        decisions.apply(decision(f"a{n}", "deny", n + 1))
    cache = DecisionCache()
    feed = HttpDecisionFeed(cache, live.url, TOKEN, wait_s=0)
    assert feed.poll_once() == 3
    cache.apply(decision("gone", "deny", 1))  # held here, unknown to the ingest now
    feed.position = "an-earlier-epoch.2"  # an older ingest's numbering
    assert feed.poll_once() == 3
    assert _status(cache, "gone") == 200 and _status(cache, "a2") == 403


def report(decision_id: str, outcome: str, requests: int) -> dict[str, Any]:
    return {"schema_version": 1, "report_id": f"{abs(hash((decision_id, outcome))) % 16**32:032x}",
            "bouncer": "litellm", "instance": "gw-1", "decision_id": decision_id, "action": "suspend",
            "effect": "deny", "outcome": outcome, "requests": requests, "window_start_ms": 1,
            "window_end_ms": 2}  # fmt: skip


def test_a_bouncer_fed_over_http_reports_what_it_enforced_through_the_ingest(
    served: tuple[LiveIngest, DecisionLog],
) -> None:
    live, decisions = served
    decisions.ready.set()
    suspended = decision("harvester", "deny", 1)
    decisions.apply(suspended)
    cache = DecisionCache()
    feed = HttpDecisionFeed(cache, live.url, TOKEN, wait_s=0, bouncer="litellm")
    feed.poll_once()
    for _ in range(3):
        assert _status(cache, "harvester") == 403
    assert feed.report() == 1
    [(value, _headers)] = live.publisher.raw["enforcement.reports"]
    sent = orjson.loads(value)
    assert (sent["decision_id"], sent["outcome"], sent["requests"]) == (suspended["decision_id"], "denied", 3)
    assert sent["bouncer"] == "litellm" and sent["instance"] == feed.instance
    assert feed.report() == 0  # nothing since: nothing posted


def test_reports_the_ingest_did_not_take_are_sent_with_the_next(served: tuple[LiveIngest, DecisionLog]) -> None:
    live, decisions = served
    decisions.ready.set()
    decisions.apply(decision("harvester", "deny", 1))
    cache = DecisionCache()
    feed = HttpDecisionFeed(cache, live.url, "a-token-it-refuses", wait_s=0)
    feed.cache.apply(decision("harvester", "deny", 1))
    assert _status(cache, "harvester") == 403
    with pytest.raises(ValueError, match="401"):
        feed.report()
    assert len(feed.held_reports) == 1
    feed.token = TOKEN
    assert _status(cache, "harvester") == 403
    assert feed.report() == 2 and not feed.held_reports
    assert sum(orjson.loads(v)["requests"] for v, _ in live.publisher.raw["enforcement.reports"]) == 2


def test_an_invalid_report_is_refused_with_its_reason_and_dead_lettered(served: tuple[LiveIngest, DecisionLog]) -> None:
    live, _decisions = served
    good, bad = report("dec-0123456789abcdef", "denied", 4), report("not-a-decision", "denied", 1)
    answer = live.post(orjson.dumps(good) + b"\n" + orjson.dumps(bad), path="/v1/decisions/reports")
    assert answer.status == 200
    body = orjson.loads(answer.data)
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["results"][1]["error"]["field"] == "decision_id"
    assert [orjson.loads(v) for v, _ in live.publisher.raw["enforcement.reports"]] == [good]
    [(dead, headers)] = live.publisher.raw["enforcement.reports.dlq"]
    assert orjson.loads(dead) == bad and headers
    refused = live.post(orjson.dumps(good), path="/v1/decisions/reports", token="nope")
    assert refused.status == 401
