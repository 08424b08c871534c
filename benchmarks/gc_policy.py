"""What the cyclic garbage collector costs the detection engine, with Python's defaults and with
`gc_policy.for_streaming()`, each in a fresh process on the same events.

    .venv/bin/python benchmarks/gc_policy.py [scenarios/eval-fast/hydra.yaml]

Prints CPU microseconds per event for counting the events into windows alone and for the whole
engine, under each policy. The events are built (sketched) once, written to a temporary file, and
not timed.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(events_path: str, policy: str, stage: str) -> float:
    """CPU seconds per event of one stage under one policy (run in this process)."""
    from extractguard import gc_policy
    from extractguard.detection.engine import DetectionEngine
    from extractguard.detection.windows import EntityWindows
    from extractguard.settings import DetectionSettings

    events = pickle.loads(Path(events_path).read_bytes())
    if policy == "streaming":
        gc_policy.for_streaming()
        gc_policy.settle_restored_state()  # as a worker does after restoring: here, the loaded events
    began = time.process_time()
    if stage == "windows":
        windows = EntityWindows(60_000, 5_000)
        for event in events:
            windows.add(event)
    else:
        DetectionEngine(DetectionSettings()).process(events, partition=0)
    return (time.process_time() - began) / len(events)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(measure(sys.argv[2], sys.argv[3], sys.argv[4]))
        return
    from extractguard.gateway.events import build_event
    from extractguard.simulator.traffic import Scenario, generate, scenario_start_ms

    path = Path(sys.argv[1] if len(sys.argv) > 1 else "scenarios/eval-fast/hydra.yaml")
    scenario = Scenario.from_yaml(path)
    start = scenario_start_ms(scenario, int(time.time() * 1000))
    events = [build_event(request, b"bench") for _, request in generate(scenario, start)]
    with tempfile.NamedTemporaryFile(suffix=".pickle") as stored:
        stored.write(pickle.dumps(events))
        stored.flush()
        print(f"{path.name}: {len(events):,} events, CPU us per event (fresh process each)")
        for stage in ("windows", "engine"):
            row = []
            for policy in ("default", "streaming"):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", stored.name, policy, stage],
                    check=True, capture_output=True, text=True,
                ).stdout  # fmt: skip
                row.append(f"{policy} {float(out) * 1e6:6.1f}")
            print(f"  {stage:8s} " + "   ".join(row))


if __name__ == "__main__":
    main()
