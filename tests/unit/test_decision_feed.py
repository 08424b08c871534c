"""The decision feed over HTTP: the ingest's `GET /v1/decisions` under the gateways' tokens, and the
gateway's `HttpDecisionFeed` keeping a bouncer's cache from it: the whole set first, then each change
within moments of its arrival (a long poll), resumable from its position, a snapshot again when the
ingest's numbering changed."""

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
    decisions = DecisionLog(epoch="test")
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
    assert feed.position == "test.3"


def test_a_bouncer_resumes_from_its_position_and_takes_a_snapshot_after_the_ingest_restarted(
    served: tuple[LiveIngest, DecisionLog],
) -> None:
    live, decisions = served
    decisions.ready.set()
    for n in range(3):
        decisions.apply(decision(f"a{n}", "deny", n + 1))
    cache = DecisionCache()
    feed = HttpDecisionFeed(cache, live.url, TOKEN, wait_s=0)
    assert feed.poll_once() == 3 and feed.position == "test.3"
    decisions.apply(decision("a3", "deny", 9))
    assert feed.poll_once() == 1  # only what changed after its position
    assert feed.poll_once() == 0
    cache.apply(decision("gone", "deny", 1))  # held here, unknown to the ingest now
    feed.position = "an-earlier-epoch.2"
    assert feed.poll_once() == 4
    assert _status(cache, "gone") == 200 and _status(cache, "a3") == 403
