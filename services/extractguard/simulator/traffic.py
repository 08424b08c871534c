"""The simulated request stream, in event-time order, with ground truth.

Every account is an actor (see `actors`); one heap merges their next requests so the stream comes
out in event-time order however many accounts there are, holding one entry per account.

>>> from extractguard.simulator.scenario import CampaignSpec, OrganicSpec
>>> scenario = Scenario(organic=OrganicSpec(accounts=20), duration_s=600,
...                     campaigns=[CampaignSpec(name="c", accounts=10, start_s=300)])
>>> stream = list(generate(scenario, start_ms=1_700_000_000_000))
>>> times = [r.event_time_ms for _, r in stream]
>>> times == sorted(times)
True
>>> {a.label for a, _ in stream} == {"organic", "campaign"}
True
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator

from extractguard.gateway.events import ObservedRequest
from extractguard.simulator.actors import cast
from extractguard.simulator.population import SimAccount, World
from extractguard.simulator.scenario import Scenario

__all__ = ["Scenario", "generate", "population", "scenario_start_ms"]

DAY_MS = 86_400_000


def scenario_start_ms(scenario: Scenario, now_ms: int) -> int:
    """The latest start at the scenario's time of day that ends it by `now_ms`.

    Replays anchored this way keep their daily cycle however late in the day they are run, and
    never stamp an event in the future.
    """
    day = now_ms - now_ms % DAY_MS
    start = day + int(scenario.start_hour_utc * 3_600_000)
    while start + scenario.duration_s * 1000 > now_ms:
        start -= DAY_MS
    return start


def population(scenario: Scenario, start_ms: int) -> list[SimAccount]:
    """Every account of the scenario: organic, look-alikes, then each campaign's."""
    return World(scenario, start_ms).everyone()


def generate(scenario: Scenario, start_ms: int) -> Iterator[tuple[SimAccount, ObservedRequest]]:
    """Every request of the scenario, ordered by event time."""
    world = World(scenario, start_ms)
    actors = cast(scenario, world.everyone(), start_ms, world.proxy_pools)
    rng = random.Random(scenario.seed + 1)
    end_ms = start_ms + int(scenario.duration_s * 1000)
    queue: list[tuple[int, int, int]] = []  # (next event time, tie-breaker, actor)
    for index, actor in enumerate(actors):
        first = actor.first(start_ms, rng)
        if first is not None and first < end_ms:
            queue.append((first, index, index))
    heapq.heapify(queue)
    sequence = len(actors)
    while queue:
        ts, _, index = queue[0]
        actor = actors[index]
        request = actor.act(ts, rng)
        if request is not None:
            yield actor.account, request
        following = actor.next(ts, rng)
        if following is not None and following < end_ms:
            sequence += 1
            heapq.heapreplace(queue, (following, sequence, index))
        else:
            heapq.heappop(queue)
