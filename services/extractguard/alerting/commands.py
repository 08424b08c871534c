"""`extractguard rules …` and `extractguard silence …`: check rule files, manage silences.

`rules check` is for CI and for an operator before a reload: it loads every file as the alerter
would and exits non-zero with `file:line: field: reason` on the first that does not validate.
Silences are published to the compacted `alert.silences` topic (the lander lands them in
ClickHouse, where the alerter reads them); `list` reads them back from ClickHouse.
"""

from __future__ import annotations

import getpass
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson

from extractguard.settings import AlerterSettings, ClickHouseSettings, KafkaSettings, lander_door

if TYPE_CHECKING:  # the rule and silence modules load at use: every `extractguard` command imports this one
    from extractguard.alerting.silences import Silence

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in '90', '90s', '30m', '2h' or '1d'.

    >>> parse_duration("2h"), parse_duration("90")
    (7200.0, 90.0)
    """
    match = _DURATION.match(text.strip())
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 30m, 2h or 1d")
    return float(match[1]) * _UNIT_S[match[2]]


@click.group()
def rules() -> None:
    """Alert rule files: check them before the alerter loads them."""


@rules.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
def check(paths: tuple[Path, ...]) -> None:
    """Validate rule files (default: EXTRACTGUARD_ALERTER_RULES_DIR, or the shipped rules)."""
    from extractguard.alerting.rules import RuleFileError, load_rule_files, rule_paths

    if paths:
        files = [file for path in paths for file in (rule_paths(path) if path.is_dir() else [path])]
    else:
        files = rule_paths(AlerterSettings().rules_dir)
    try:
        loaded = load_rule_files(files)
    except RuleFileError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    for rule in loaded.stream + loaded.optional:
        kinds = ",".join(sorted(rule.entity_kinds)) if rule.entity_kinds else "any"
        extra = (" grouped" if rule.group else "") + ("" if rule.enabled else " (off by default)")
        click.echo(f"stream  {rule.name}: {','.join(sorted(rule.detectors))} on {kinds} >= {rule.min_severity}{extra}")
    for sql_rule in loaded.sql:
        click.echo(f"sql     {sql_rule.name}: every {sql_rule.interval_s}s, {sql_rule.value_column} >= "
                   f"{sql_rule.threshold:g} on {sql_rule.entity_kind}")  # fmt: skip
    click.echo(
        f"ok: {len(files)} file(s), {len(loaded.stream) + len(loaded.optional)} stream and {len(loaded.sql)} SQL rules"
    )


def publish_silence(silence: Silence, kafka: KafkaSettings) -> None:
    from confluent_kafka import Producer

    from extractguard.contracts.schemas import validate
    from extractguard.contracts.topics import ALERT_SILENCES

    payload = validate("alert_silence", silence.payload())
    producer = Producer({**kafka.client_config(), "enable.idempotence": True, "acks": "all"})
    producer.produce(ALERT_SILENCES, key=silence.silence_id.encode(), value=orjson.dumps(payload))
    if producer.flush(30):
        raise click.ClickException(f"the broker at {kafka.bootstrap_servers} did not take the silence within 30 s")


def read_silences(everything: bool) -> list[Silence]:
    from extractguard.alerting.silences import ALL_SILENCES_SQL, SILENCES_IN_FORCE_SQL, Silence
    from extractguard.storage.query import QueryError, query_any

    try:
        _columns, rows = query_any(
            ALL_SILENCES_SQL if everything else SILENCES_IN_FORCE_SQL, ClickHouseSettings(), lander_door()
        )
    except QueryError as error:
        raise click.ClickException(str(error)) from None
    return [Silence.from_row(row) for row in rows]


@click.group()
def silence() -> None:
    """Silences and maintenance windows: alerts they match are kept but do not page."""


@silence.command("add")
@click.option("--rule", default=None, help="Only alerts of this rule.")
@click.option("--entity-kind", default=None, help="Only alerts on this kind of entity (org, ip_prefix, …).")
@click.option("--entity", default=None, help="Only alerts on this entity.")
@click.option("--label", "labels", multiple=True, help="key=value the alert's labels must have; repeatable.")
@click.option("--duration", default="2h", show_default=True, help="How long: 90s, 30m, 2h, 1d.")
@click.option("--starts-in", default="0", help="A maintenance window later: when it starts, from now.")
@click.option("--reason", required=True, help="Why (shown to whoever is paged next).")
@click.option("--by", "created_by", default=None, help="Who (default: the login name).")
def silence_add(
    rule: str | None,
    entity_kind: str | None,
    entity: str | None,
    labels: tuple[str, ...],
    duration: str,
    starts_in: str,
    reason: str,
    created_by: str | None,
) -> None:
    """Add a silence (or a maintenance window with --starts-in)."""
    from extractguard.alerting.silences import Silence

    matchers = {}
    for label in labels:
        key, sep, value = label.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{label!r} is not key=value", param_hint="--label")
        matchers[key] = value
    now_ms = int(time.time() * 1000)
    try:
        new = Silence.new(
            rule=rule, entity_kind=entity_kind, entity=entity, labels=matchers, duration_s=parse_duration(duration),
            reason=reason, created_by=created_by or getpass.getuser(), now_ms=now_ms,
            starts_at_ms=now_ms + int(parse_duration(starts_in) * 1000),
        )  # fmt: skip
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    publish_silence(new, KafkaSettings())
    click.echo(f"{new.silence_id}  {new.describe()}")


@silence.command("list")
@click.option("--all", "everything", is_flag=True, help="Expired ones too.")
@click.option("--json", "as_json", is_flag=True)
def silence_list(everything: bool, as_json: bool) -> None:
    """The silences in force (from ClickHouse)."""
    found = read_silences(everything)
    if as_json:
        click.echo(orjson.dumps([s.payload() for s in found]))
        return
    if not found:
        click.echo("no silences")
    for s in found:
        click.echo(f"{s.silence_id}  {s.describe()}  by {s.created_by}: {s.reason}")


@silence.command("expire")
@click.argument("silence_id")
def silence_expire(silence_id: str) -> None:
    """End a silence now."""
    match = next((s for s in read_silences(everything=True) if s.silence_id == silence_id), None)
    if match is None:
        raise click.ClickException(f"no silence {silence_id} in ClickHouse")
    expired = match.expired(int(time.time() * 1000))
    publish_silence(expired, KafkaSettings())
    click.echo(f"expired {silence_id}")
