"""`extractguard`: one command for every service and tool of the project."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson

from extractguard.alerting import commands as alerting_commands
from extractguard.chaos import commands as chaos_commands
from extractguard.enforcement import commands as enforcement_commands
from extractguard.indicators.commands import indicators
from extractguard.investigation import commands as investigation_commands
from extractguard.settings import ClickHouseSettings, KafkaSettings, lander_door
from extractguard.stack import commands as stack_commands
from extractguard.watermark import commands as watermark_commands


@click.group()
def main() -> None:
    """ExtractGuard: catch capability-extraction campaigns against an LLM API while they run."""


@main.command()
def topics() -> None:
    """Create the declared topics and their DLQs on the broker (idempotent)."""
    from extractguard.contracts.provision import provision

    result = provision(KafkaSettings())
    for name in result.created:
        click.echo(f"created  {name}")
    for name in result.existing:
        click.echo(f"exists   {name}")
    for name, diff in result.updated.items():
        changes = ", ".join(f"{key}: {was} -> {now}" for key, (was, now) in diff.items())
        click.echo(f"updated  {name} ({changes})")
    for name, replicas in result.under_replicated.items():
        click.echo(f"warning  {name} has {replicas} replica(s), {result.replication.factor} wanted: reassign it")
    if result.created:
        factor, min_insync = result.replication
        click.echo(f"replication of the topics created: {factor} replica(s), min.insync.replicas {min_insync}")


@main.command()
@click.option("--revert", is_flag=True, help="Undo the newest applied migration.")
def migrate(revert: bool) -> None:
    """Apply pending ClickHouse migrations (the lander also does this when it starts)."""
    from extractguard.storage import migrate as migrations
    from extractguard.storage.client import connect

    settings = ClickHouseSettings()
    client = connect(settings.dsn)
    if revert:
        click.echo(f"reverted {migrations.revert(client, settings.cluster) or 'nothing'}")
        return
    applied = migrations.apply(client, {"events_ttl_days": settings.events_ttl_days}, settings.cluster)
    if settings.analyst_grantees and not migrations.is_embedded_client(client):
        granted = migrations.grant_analyst_role(client, settings.analyst_grantees, settings.cluster)
        click.echo(f"extractguard_analyst granted to {', '.join(granted)}")
    click.echo("applied " + (", ".join(applied) if applied else "nothing: up to date"))


@main.command()
def ingest() -> None:
    """Run the HTTP ingest service."""
    from extractguard.ingest.app import run

    run()


@main.command()
def lander() -> None:
    """Run the lander (Kafka -> ClickHouse); it also serves read-only SQL when embedded."""
    from extractguard.lander.service import run

    run()


@main.command()
def detect() -> None:
    """Run a detection worker (Faust)."""
    from extractguard.detection.app import run

    run()


@main.group(invoke_without_command=True)
@click.pass_context
def campaigns(context: click.Context) -> None:
    """Run the campaign linker and resolver (Faust); `campaigns list|show` investigate campaigns."""
    if context.invoked_subcommand is None:
        from extractguard.campaigns.app import run

        run()


@main.command()
def alerter() -> None:
    """Run the alerter (detections -> alerts -> webhooks)."""
    from extractguard.alerting.service import run

    run()


@main.command()
@click.argument("query", required=False)
@click.option("--format", "output", type=click.Choice(["table", "json", "markdown"]), default="table",
              help="markdown: with --schema, the README's schema reference.")  # fmt: skip
@click.option("--schema", is_flag=True,
              help="Instead of a query: each column of events and alerts, its type and what it holds.")  # fmt: skip
@click.option("--table", "tables", multiple=True, help="With --schema: these tables instead (repeatable).")
def sql(query: str | None, output: str, schema: bool, tables: tuple[str, ...]) -> None:
    """Run a read-only SQL query against ExtractGuard's ClickHouse.

    Asks the running lander when it owns the embedded database, else opens it directly.
    """
    from extractguard.storage import schema as reference
    from extractguard.storage.query import QueryError, query_any

    if schema == (query is not None):
        raise click.UsageError("give a QUERY or --schema")
    if schema:
        query = reference.columns_sql(tables or reference.DOCUMENTED_TABLES)
    elif output == "markdown":
        raise click.UsageError("--format markdown goes with --schema")
    assert query is not None
    try:
        columns, rows = query_any(query, ClickHouseSettings(), lander_door())
    except QueryError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    if output == "json":
        click.echo(orjson.dumps([dict(zip(columns, row, strict=True)) for row in rows], default=str))
        return
    if output == "markdown":
        click.echo(reference.markdown(rows))
        return
    click.echo(format_table(columns, rows))


def format_table(columns: list[str], rows: list[list[object]]) -> str:
    cells = [[str(c) for c in columns]] + [[str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@main.command()
@click.argument("scenario_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--start-ms",
    type=int,
    default=None,
    help="Event time of the start (default: the latest one at its hour ending by now).",
)
def simulate(scenario_file: Path, out_dir: Path, start_ms: int | None) -> None:
    """Write a scenario's gateway events (NDJSON) and ground-truth labels to a folder."""
    import time

    from extractguard.simulator.stream_file import write_stream
    from extractguard.simulator.traffic import Scenario, scenario_start_ms

    scenario = Scenario.from_yaml(scenario_file)
    start = start_ms if start_ms is not None else scenario_start_ms(scenario, int(time.time() * 1000))
    files = write_stream(scenario, start, out_dir)
    click.echo(f"{files.events_written:,} events from {files.accounts:,} accounts -> {files.events}, {files.labels}")


@main.command()
@click.option("--seconds", default=120.0, help="How long the simulator sends traffic.")
def demo(seconds: float) -> None:
    """Run the whole pipeline on this machine with a simulated campaign, then report."""
    from extractguard.demo.run import run_demo

    report = run_demo(duration_s=seconds)
    if not report.succeeded():
        click.echo("demo: the pipeline did not deliver what it promises (see the report above)", err=True)
        sys.exit(1)


@main.command(name="eval")
@click.option(
    "--scale",
    type=click.Choice(["default", "synthetic", "fast", "full"]),
    default="default",
    show_default=True,
    help="default: scenarios/eval (real text and traces at the public case's rates, two days each); synthetic: "
    "scenarios/eval-synthetic (the earlier three-day scenarios on the simulator's own text, 72-95 min on 2 cores); "
    "fast: scenarios/eval-fast (hour-scale, ~5 min); full: scenarios/eval-full (the public case's size, hours).",
)
@click.option("--scenario", "names", multiple=True, help="Run only these scenarios (file stems); repeatable.")
@click.option(
    "--stream",
    "stream",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Instead of scenarios: a labelled gateway-event file (NDJSON, as `extractguard simulate` writes or an "
    "operator exports); needs --labels.",
)
@click.option(
    "--labels",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="With --stream: the account_label records (JSONL) judging its accounts.",
)
@click.option("--name", default="stream", show_default=True, help="With --stream: the name it is scored under.")
@click.option(
    "--launch",
    "launch_specs",
    multiple=True,
    help="With --stream: a model launch to announce to the engine, MODEL@EVENT_TIME_MS; repeatable.",
)
@click.option(
    "--duration-s", type=float, default=None, help="With --stream: the span scored (default: the events' span)."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the scorecard goes (default reports/eval, or reports/eval-stream with --stream).",
)
@click.option(
    "--learn-from-labels",
    is_flag=True,
    help="Let the detectors learn from the simulation labels already on account.labels (a second-run experiment).",
)
@click.option(
    "--in-process",
    is_flag=True,
    help="No Kafka, no services: feed the detection engines, linker, resolver and alert book directly (to iterate "
    "on detection; `make eval` stays the measurement). Scorecard in reports/eval-inprocess by default.",
)
@click.option(
    "--ablation",
    is_flag=True,
    help="With --in-process: replay every scenario again once per family of evidence withheld (account age, "
    "client, infrastructure, content, timing) and add the ablation view to the scorecard.",
)
@click.option("--hours", type=float, default=None, help="Replay only the first HOURS of each scenario's event time.")
def evaluate(
    scale: str,
    names: tuple[str, ...],
    stream: Path | None,
    labels: Path | None,
    name: str,
    launch_specs: tuple[str, ...],
    duration_s: float | None,
    out_dir: Path | None,
    learn_from_labels: bool,
    in_process: bool,
    ablation: bool,
    hours: float | None,
) -> None:
    """Run the labelled scenarios (or a labelled event file) through the real pipeline and write the scorecard."""
    import re

    from extractguard.evaluation.run import run_eval, run_stream_eval

    learn_from = ["analyst", "simulation"] if learn_from_labels else None
    if hours is not None and stream is not None:
        raise click.UsageError("--hours cuts scenarios; with --stream, cut the file")
    if ablation and (not in_process or stream is not None):
        raise click.UsageError("--ablation goes with --in-process and scenarios")
    if in_process:
        from extractguard.evaluation.in_process import run_in_process
        from extractguard.evaluation.run import say, scenario_replays
        from extractguard.evaluation.sources import Replay, StreamReplay
        from extractguard.paths import project_root

        replays: list[Replay]
        if stream is not None:
            if labels is None:
                raise click.UsageError("--stream needs --labels (the ground truth it is scored against)")
            try:
                replays = [StreamReplay(stream, labels, name, duration_s=duration_s or 0.0)]
            except ValueError as error:
                raise click.ClickException(str(error)) from None
        else:
            replays = list(scenario_replays(scale, list(names) or None, hours))
        out = out_dir or project_root() / "reports" / "eval-inprocess"
        remake = (lambda: list(scenario_replays(scale, list(names) or None, hours))) if ablation else None
        card = run_in_process(replays, out, scale if stream is None else "stream", say, remake)
        print(card.markdown().split("## Organic traffic")[0])
        return
    from extractguard.demo.processes import ServiceDied

    if stream is None:
        if labels is not None or launch_specs or duration_s is not None:
            raise click.UsageError("--labels, --launch and --duration-s go with --stream")
        try:
            card = run_eval(scale, list(names) or None, out_dir, learn_from, hours)
        except ServiceDied as error:
            raise click.ClickException(str(error)) from None  # one line, the reason from its log
    else:
        if labels is None:
            raise click.UsageError("--stream needs --labels (the ground truth it is scored against)")
        if names:
            raise click.UsageError("--scenario and --stream are alternatives")
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
            raise click.UsageError(f"--name {name!r}: lower-case letters, digits, '_' and '-' (it names topics)")
        launches = []
        for spec in launch_specs:
            model, _, at = spec.rpartition("@")
            if not model or not at.isdigit():
                raise click.UsageError(f"--launch {spec!r}: expected MODEL@EVENT_TIME_MS")
            launches.append({"model": model, "at_ms": int(at)})
        try:
            card = run_stream_eval(stream, labels, name, out_dir, launches, duration_s, learn_from)
        except (ValueError, ServiceDied) as error:
            raise click.ClickException(str(error)) from None
    print(card.markdown().split("## Organic traffic")[0])


main.add_command(alerting_commands.rules)
main.add_command(chaos_commands.chaos)
main.add_command(alerting_commands.silence)
main.add_command(watermark_commands.attribute_command)
main.add_command(indicators)
investigation_commands.register(main, campaigns)
enforcement_commands.register(main)
# The analyst's `decisions list` reads ClickHouse; it replaces the topic reader of the same name.
investigation_commands.register_decisions_list(enforcement_commands.decisions)
stack_commands.register(main)

if __name__ == "__main__":
    main()
