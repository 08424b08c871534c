"""Fault injection over the real pipeline (`make chaos`): one fault per run, each run compared with
an uninterrupted run of the same scenario and seed. An orchestrator, like `demo` and `evaluation`:
it starts the services as child processes and reads back what they made.

- `faults`: what can be done to the pipeline mid-stream, and the bounds some faults have by design;
- `run`: one run of the pipeline (with or without a fault) and what it left behind;
- `report`: the fault table (`reports/chaos/chaos.json` and `.md`).
"""
