"""`extractguard chaos` (`make chaos`): the clean run, then each fault once, then the table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson

from extractguard.chaos.faults import CLUSTER_FAULTS, FAULTS, Fault, by_name
from extractguard.paths import data_home, project_root

if TYPE_CHECKING:  # loaded at use: every `extractguard` command, each service's start, imports this module
    from extractguard.chaos.report import FaultRow

SCENARIO = Path("scenarios") / "chaos" / "hydra_small.yaml"


def say(message: str) -> None:
    print(f"[chaos] {message}", flush=True)


def run_chaos(
    faults: list[Fault], seed: int, publish_s: float, out_dir: Path, command: str, nodes: int = 1
) -> list[FaultRow]:
    """The clean run, then one run per fault; writes chaos.json and chaos.md into `out_dir`."""
    from extractguard.chaos.report import compare, markdown
    from extractguard.chaos.run import ChaosRun, broker_is_local
    from extractguard.evaluation.sources import SimulatedReplay
    from extractguard.simulator.scenario import Scenario
    from extractguard.simulator.traffic import scenario_start_ms

    if not broker_is_local():
        raise click.ClickException(
            "make chaos stops and kills the broker: it needs the local one (infra/kafka/kafka.sh up) on "
            "EXTRACTGUARD_KAFKA_PORT, with KAFKA_BOOTSTRAP_SERVERS pointing at it (a cluster: every node up, "
            "KAFKA_BOOTSTRAP_SERVERS=$(infra/kafka/kafka.sh bootstrap))"
        )
    scenario = Scenario.from_yaml(project_root() / SCENARIO).model_copy(update={"seed": seed})
    replay = SimulatedReplay(scenario, scenario_start_ms(scenario, int(time.time() * 1000)))
    events = [row.event for row in replay.events()]
    active_from = min(c.start_s for c in scenario.campaigns) / scenario.duration_s
    say(f"{scenario.name}: {len(events):,} events, the campaign active from {active_from:.0%} of them")
    home = data_home() / "chaos"
    began = time.monotonic()
    run_id = time.strftime("%Y%m%d%H%M%S")

    def one(fault: Fault, number: int) -> ChaosRun:
        return ChaosRun(events, fault, seed=seed, tag=f"{run_id}-{number}", home=home, publish_s=publish_s,
                        active_from=active_from, say=say)  # fmt: skip

    say("clean run")
    clean = one(Fault("clean", "none", None, "no fault"), 0).execute()
    say(f"  clean: {clean.events_final:,} events landed, {len(clean.detection_ids):,} detections, "
        f"{len(clean.campaigns)} campaigns, {sum(clean.pages.values())} pages ({clean.wall_s:.0f}s)")  # fmt: skip
    rows: list[FaultRow] = []
    for number, fault in enumerate(faults, 1):
        say(f"fault {number}/{len(faults)}: {fault.name} - {fault.description}")
        row = compare(clean, one(fault, number).execute(), fault)
        say("  " + ", ".join(f"{k}={v}" for k, v in row.as_dict().items() if k != "bound"))
        rows.append(row)
    header = {
        "command": command, "generated_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "scenario": scenario.name, "seed": seed, "events": len(events), "publish_s": publish_s,
        "clean_wall_s": clean.wall_s, "brokers": nodes, "total_wall_s": round(time.monotonic() - began, 1),
    }  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {**header, "faults": [row.as_dict() for row in rows]}
    (out_dir / "chaos.json").write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    (out_dir / "chaos.md").write_text(markdown(rows, header))
    print(markdown(rows, header).split("\nColumns")[0])
    say(f"written to {out_dir / 'chaos.json'} and {out_dir / 'chaos.md'}")
    return rows


@click.command()
@click.option("--fault", "faults", multiple=True, help="Only these faults (e.g. sigkill-detect); repeatable.")
@click.option("--seed", type=int, default=202, show_default=True, help="The scenario's seed, shared by every run.")
@click.option("--publish-s", type=float, default=45.0, show_default=True, help="Wall seconds to publish over.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Default reports/chaos (reports/chaos/cluster on a cluster).")  # fmt: skip
def chaos(faults: tuple[str, ...], seed: int, publish_s: float, out_dir: Path | None) -> None:
    """Inject one fault per run into the running pipeline and compare each with a clean run.

    On the local cluster (EXTRACTGUARD_KAFKA_NODES=3) the faults are those of a replicated cluster."""
    from extractguard.local_kafka import LocalKafka

    nodes = LocalKafka().nodes
    known = CLUSTER_FAULTS if nodes > 1 else FAULTS
    try:
        chosen = by_name(list(faults), known) if faults else list(known)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    make = "make chaos" if nodes == 1 else f"make chaos CLUSTER={nodes}"
    command = make if not faults else "extractguard chaos " + " ".join(f"--fault {f}" for f in faults)
    default_out = project_root() / "reports" / "chaos" / ("cluster" if nodes > 1 else "")
    rows = run_chaos(chosen, seed, publish_s, out_dir or default_out, command, nodes)
    if not all(row.clean() for row in rows):
        raise SystemExit(1)
