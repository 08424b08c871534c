"""How fast the full-size hydra scenario can be generated and sketched, and at what memory.

    .venv/bin/python benchmarks/simulator_full_scale.py

Builds the population of `scenarios/eval-full/hydra.yaml`, generates its first 8 hours (into the
campaign), then times generation plus SDK sketching of the next 200,000 events.
"""

from __future__ import annotations

import itertools
import resource
import time
from pathlib import Path

from extractguard.gateway.events import build_event
from extractguard.simulator.traffic import Scenario, generate, population, scenario_start_ms


def main() -> None:
    scenario = Scenario.from_yaml(Path("scenarios/eval-full/hydra.yaml"))
    start = scenario_start_ms(scenario, int(time.time() * 1000))
    began = time.perf_counter()
    accounts = population(scenario, start)
    print(f"population: {len(accounts):,} accounts in {time.perf_counter() - began:.1f}s")
    began, count = time.perf_counter(), 0
    stream = generate(scenario, start)
    for _account, request in stream:
        count += 1
        if request.event_time_ms > start + 8 * 3_600_000:
            break
    seconds = time.perf_counter() - began
    print(f"generation only: {count:,} events (first 8 h) at {count / seconds:,.0f} events/s")
    began = time.perf_counter()
    for _account, request in itertools.islice(stream, 200_000):
        build_event(request, b"bench")
    print(f"generation + sketching: {200_000 / (time.perf_counter() - began):,.0f} events/s")
    print(f"max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
