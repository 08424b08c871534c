"""`extractguard attribute SUSPECT.jsonl`: the watermark audit as a batch command.

Reads the suspect texts, tests them against every key of the registry valid in the window,
matches their sketches against the landed responses, and writes the case file (JSON, and HTML
with --html). `run` is the same audit for a scheduled job. Exit status 0 whatever was found
(absence of a mark is a finding too); 1 on unreadable input, with the reason.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

import click

from extractguard.settings import WatermarkSettings

DEFAULT_WINDOW_DAYS = 90


def _time_ms(text: str | None, default_ms: int) -> int:
    if text is None:
        return default_ms
    if text.isdigit():
        return int(text)
    parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return int(parsed.timestamp() * 1000)


def run(
    suspects_path: Path,
    out: Path,
    html_out: Path | None,
    *,
    settings: WatermarkSettings,
    start_ms: int,
    end_ms: int,
    use_clickhouse: bool = True,
) -> str | None:
    """The audit end to end; returns the campaign named (None: no campaign)."""
    from extractguard.investigation import case as investigation
    from extractguard.investigation.commands import SOURCE
    from extractguard.watermark.attribution import HuggingFaceTokenizer, attribute, read_suspects
    from extractguard.watermark.case_file import write_case_file
    from extractguard.watermark.keyring import KeyRing
    from extractguard_gateway.watermark_pools import load_registry

    if settings.registry is None or settings.keys is None:
        raise click.UsageError("--registry and --keys (or EXTRACTGUARD_WATERMARK_REGISTRY and _KEYS) are needed")
    tokenizer = HuggingFaceTokenizer(settings.tokenizer) if settings.tokenizer else None
    suspects = read_suspects(suspects_path, tokenizer)
    source = SOURCE() if use_clickhouse else None
    found = attribute(
        suspects,
        load_registry(settings.registry),
        KeyRing.load(settings.keys),
        source,
        start_ms=start_ms,
        end_ms=end_ms,
        alpha=settings.alpha,
        backend=settings.backend,
    )
    case = None
    if source is not None and found.named_campaign is not None:
        case = investigation.load_case(source, found.named_campaign)
    write_case_file(found, case, out, html_out)
    return found.named_campaign


@click.command("attribute")
@click.argument("suspects", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--registry", type=click.Path(exists=True, path_type=Path), help="Key registry JSON (ids, pools, windows)."
)
@click.option("--keys", type=click.Path(exists=True, path_type=Path), help="Secret store: a directory or a JSON file.")
@click.option("--tokenizer", type=click.Path(exists=True, path_type=Path), help="The served model's tokenizer.json.")
@click.option("--since", default=None, help="Window start: ISO 8601 or epoch ms (default: 90 days ago).")
@click.option("--until", default=None, help="Window end: ISO 8601 or epoch ms (default: now).")
@click.option("--alpha", type=float, default=None, help="Family-wise error over the keys tested (default 0.01).")
@click.option("--backend", type=click.Choice(["numpy", "vllm"]), default=None, help="Detector backend.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("attribution.json"), show_default=True)
@click.option("--html", "html_out", type=click.Path(path_type=Path), default=None, help="Also write the HTML page.")
@click.option("--no-clickhouse", is_flag=True, help="Keys only: no take, sketch matches or campaign join.")
def attribute_command(
    suspects: Path,
    registry: Path | None,
    keys: Path | None,
    tokenizer: Path | None,
    since: str | None,
    until: str | None,
    alpha: float | None,
    backend: str | None,
    out: Path,
    html_out: Path | None,
    no_clickhouse: bool,
) -> None:
    """Test SUSPECT.jsonl (one {"id", "text"} or {"id", "token_ids"} a line) against the watermark keys."""
    from extractguard.storage.query import QueryError
    from extractguard.watermark.attribution import SuspectError
    from extractguard.watermark.keyring import KeyRingError
    from extractguard_gateway.watermark_pools import RegistryError

    overrides = {
        k: v
        for k, v in {
            "registry": registry,
            "keys": keys,
            "tokenizer": tokenizer,
            "alpha": alpha,
            "backend": backend,
        }.items()
        if v is not None
    }
    settings = WatermarkSettings(**overrides)  # type: ignore[arg-type]
    now_ms = int(datetime.datetime.now(tz=datetime.UTC).timestamp() * 1000)
    try:
        end_ms = _time_ms(until, now_ms)
        start_ms = _time_ms(since, end_ms - DEFAULT_WINDOW_DAYS * 86_400_000)
        named = run(
            suspects,
            out,
            html_out,
            settings=settings,
            start_ms=start_ms,
            end_ms=end_ms,
            use_clickhouse=not no_clickhouse,
        )
    except (SuspectError, KeyRingError, RegistryError, QueryError, ValueError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    click.echo(f"wrote {out}" + (f" and {html_out}" if html_out else ""))
    click.echo(f"named campaign: {named}" if named else "no campaign named")
