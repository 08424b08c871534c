"""Detection engine throughput on one core: a scenario's events through `DetectionEngine.process`.

    .venv/bin/python benchmarks/detection_engine.py [scenarios/eval-fast/hydra.yaml]

Prints events per second of the engine alone (no Kafka, no Faust), and its detections by kind.
The events are built (sketched) first and not timed.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

from extractguard.detection.engine import DetectionEngine
from extractguard.gateway.events import build_event
from extractguard.settings import DetectionSettings
from extractguard.simulator.traffic import Scenario, generate, scenario_start_ms


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "scenarios/eval-fast/hydra.yaml")
    scenario = Scenario.from_yaml(path)
    start = scenario_start_ms(scenario, int(time.time() * 1000))
    events = [build_event(request, b"bench") for _, request in generate(scenario, start)]
    engine = DetectionEngine(DetectionSettings())
    began = time.perf_counter()
    detections = engine.process(events, partition=0)
    seconds = time.perf_counter() - began
    print(f"{path.name}: {len(events):,} events in {seconds:.2f}s = {len(events) / seconds:,.0f} events/s on one core")
    kinds = Counter(f"{d['detector']}/{d['severity']}" for d in detections)
    print("detections:", ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))


if __name__ == "__main__":
    main()
