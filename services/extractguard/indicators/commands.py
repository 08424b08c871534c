"""`extractguard indicators export CAMPAIGN` and `extractguard indicators import FILE`.

Export reads the campaign's newest record from ClickHouse (or a record file, `--record`, as the
resolver publishes it on `campaigns`) and writes its STIX 2.1 bundle. Import checks a peer's bundle
with the `stix2` library and keeps its fingerprints as a watchlist file in the data home's
`watchlists/` (one file per bundle, named by the bundle's id), which the campaign linker loads when
it starts (`campaigns.watchlist`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson

from extractguard.campaigns.watchlist import watchlist_dir
from extractguard.indicators.stix_bundle import UnreadableBundle, bundle_id, campaign_bundle, watchlist_entries


def _record_from_clickhouse(campaign_id: str) -> dict[str, Any]:
    from extractguard.investigation import commands as investigation
    from extractguard.investigation.case import CampaignNotFound, load_campaign
    from extractguard.investigation.source import literal
    from extractguard.storage.query import QueryError

    source = investigation.SOURCE()  # the analysts' read-only way in (the SQL door, else the database)
    try:
        row = load_campaign(source, campaign_id)
        members = source.one(f"SELECT members FROM campaigns FINAL WHERE campaign_id = {literal(campaign_id)}")
    except (QueryError, CampaignNotFound) as error:
        raise click.ClickException(str(error)) from None
    fingerprints = [{"fingerprint": f[0], "weight": float(f[1]), "sharers": int(f[2])} for f in row["fingerprints"]]
    return {**row, "fingerprints": fingerprints, "members": list((members or {}).get("members") or [])}


def _record_from_file(path: Path, campaign_id: str) -> dict[str, Any]:
    """The newest record of the campaign in a file of one record (JSON) or of one a line (JSONL,
    as `eval --in-process` writes to `campaigns/<scenario>.jsonl`)."""
    blob = path.read_bytes()
    try:
        records = [orjson.loads(blob)]
    except orjson.JSONDecodeError:
        records = []
        for number, line in enumerate(blob.splitlines(), 1):
            try:
                records += [orjson.loads(line)] if line.strip() else []
            except orjson.JSONDecodeError as error:
                raise click.ClickException(f"{path}:{number}: not a JSON campaign record ({error})") from None
    found = [r for r in records if isinstance(r, dict) and r.get("campaign_id") == campaign_id]
    if not found:
        raise click.ClickException(f"{path} holds no record of campaign {campaign_id}")
    return dict(found[-1])


@click.group()
def indicators() -> None:
    """Share a campaign's indicators with peers (STIX 2.1), and use theirs."""


@indicators.command("export")
@click.argument("campaign_id")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: stdout).")
@click.option("--record", "record_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A campaign record (JSON), or records (JSONL: `eval --in-process`), not ClickHouse.")  # fmt: skip
@click.option("--include-accounts", is_flag=True, help="Name the member accounts too (off: never shared by default).")
def export_command(campaign_id: str, out: Path | None, record_file: Path | None, include_accounts: bool) -> None:
    """Write CAMPAIGN's indicators as a STIX 2.1 bundle (no account ids, keys or text by default)."""
    if record_file is not None:
        record = _record_from_file(record_file, campaign_id)
    else:
        record = _record_from_clickhouse(campaign_id)
    document = campaign_bundle(record, include_accounts).serialize(pretty=True)
    if out is None:
        sys.stdout.write(document + "\n")
    else:
        out.write_text(document + "\n")
        click.echo(f"wrote {out}: {len(record.get('fingerprints') or [])} indicators of {campaign_id}", err=True)


@indicators.command("import")
@click.argument("bundle_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_command(bundle_file: Path) -> None:
    """Load a peer's STIX bundle as a watchlist: the campaign linker weighs its fingerprints more."""
    document = bundle_file.read_bytes()
    try:
        entries = watchlist_entries(document)
        name = bundle_id(document)
    except UnreadableBundle as error:
        raise click.ClickException(f"{bundle_file}: {error}") from None
    if not entries:
        raise click.ClickException(f"{bundle_file}: no ExtractGuard fingerprint indicators in the bundle")
    folder = watchlist_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.json"
    target.write_bytes(orjson.dumps({"bundle": name, "source": bundle_file.name, "fingerprints": entries}))
    click.echo(f"{name}: {len(entries)} fingerprints on the watchlist ({target}); restart the campaign linker")
