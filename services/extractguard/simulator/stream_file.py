"""Write a scenario's stream to files: the gateway events as NDJSON and the ground truth beside it.

`events.ndjson` holds exactly what a gateway would send (sketches, never prompt text);
`labels.jsonl` says for every account whether it is organic (and of which class) or which campaign
it belongs to.
The same scenario and start time give byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from extractguard.contracts.subjects import subject_of
from extractguard.gateway.events import build_event
from extractguard.simulator.ground_truth import label_record
from extractguard.simulator.population import SimAccount
from extractguard.simulator.traffic import Scenario, generate

#: The gateway's key-hash secret in simulations; fixed so streams are reproducible.
SIMULATION_KEY_SECRET = b"extractguard-simulation"


@dataclass(frozen=True, slots=True)
class StreamFiles:
    events: Path
    labels: Path
    events_written: int
    accounts: int


def write_stream(scenario: Scenario, start_ms: int, out_dir: Path) -> StreamFiles:
    out_dir.mkdir(parents=True, exist_ok=True)
    events_path = out_dir / "events.ndjson"
    labels_path = out_dir / "labels.jsonl"
    labels: dict[str, SimAccount] = {}
    count = 0
    with events_path.open("wb") as events:
        for account, request in generate(scenario, start_ms):
            event = build_event(request, SIMULATION_KEY_SECRET)
            labels.setdefault(subject_of(event), account)
            events.write(orjson.dumps(event) + b"\n")
            count += 1
    with labels_path.open("wb") as out:
        for account_id in sorted(labels):
            out.write(orjson.dumps(label_record(scenario.name, labels[account_id], start_ms, account_id)) + b"\n")
    return StreamFiles(events_path, labels_path, count, len(labels))
