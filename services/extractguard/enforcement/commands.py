"""`extractguard enforcer`, `extractguard decisions …` and `extractguard bouncer …`.

`decisions list` is the analyst's, from ClickHouse (`investigation.commands`, registered into this
group); `approve`, `reject`, `lift` and `add` read the compacted decisions topic (every target's
newest decision, the state bouncers hold) and publish a person's word to
`enforcement.approvals`, which the enforcer (the decisions' only writer) applies, so a decision
made by hand is recorded, audited and fed to the bouncers like the policy's own; `check`
validates a policy file as the enforcer would load it.
"""

from __future__ import annotations

import getpass
import re
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import click
import orjson

from extractguard.settings import EnforcerSettings, KafkaSettings


def current_decisions(kafka: KafkaSettings) -> list[dict[str, Any]]:
    """The newest decision of every target on the decisions topic."""
    from extractguard.contracts.enforcement import ENFORCEMENT_DECISIONS
    from extractguard.kafka_offsets import read_since

    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for value in read_since(kafka, ENFORCEMENT_DECISIONS, {}):
        if not value:
            continue
        decision = orjson.loads(value)
        key = (decision["scope"], decision["entity"])
        if key not in newest or newest[key]["updated_at_ms"] <= decision["updated_at_ms"]:
            newest[key] = decision
    return sorted(newest.values(), key=lambda d: (d["decided_at_ms"], d["decision_id"]))


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000))


@click.group()
def decisions() -> None:
    """Enforcement decisions: list, add and lift them, approve or reject those waiting for a person, check a policy."""


def _verdict(ref: str, verdict: str, by: str | None, note: str | None) -> None:
    from extractguard.contracts.schemas import validate

    kafka = KafkaSettings()
    now_ms = int(time.time() * 1000)
    waiting = [
        d
        for d in current_decisions(kafka)
        if d["status"] == "pending_approval"
        and ref in (d["decision_id"], d["group_id"])
        and d["expires_at_ms"] > now_ms
    ]
    if not waiting:
        raise click.ClickException(f"no decision waiting for approval is {ref} or in group {ref}")
    record = validate("enforcement_approval", {
        "schema_version": 1, "approval_id": secrets.token_hex(16), "ref": ref, "verdict": verdict,
        "by": by or getpass.getuser(), "note": note, "at_ms": now_ms,
    })  # fmt: skip
    _send(kafka, [(ref, record)])
    click.echo(f"{verdict} {ref}: {len(waiting)} decision(s) ({waiting[0]['action']}); the enforcer applies it")


def _send(kafka: KafkaSettings, records: list[tuple[str, dict[str, Any]]]) -> None:
    """Produce a person's records to `enforcement.approvals` and wait until the broker has them."""
    from confluent_kafka import Producer

    from extractguard.contracts.enforcement import ENFORCEMENT_APPROVALS

    producer = Producer({**kafka.client_config(), "enable.idempotence": True, "acks": "all"})
    for key, record in records:
        producer.produce(ENFORCEMENT_APPROVALS, key=key.encode(), value=orjson.dumps(record))
    if producer.flush(30):
        raise click.ClickException(f"the broker at {kafka.bootstrap_servers} did not take it within 30 s")


@decisions.command()
@click.argument("ref")
@click.option("--by", default=None, help="Who (default: the login name).")
@click.option("--note", default=None, help="Why (kept in the audit trail).")
def approve(ref: str, by: str | None, note: str | None) -> None:
    """Approve a decision (dec-…) or a group of them (grp-…) waiting for a person."""
    _verdict(ref, "approve", by, note)


@decisions.command()
@click.argument("ref")
@click.option("--by", default=None, help="Who (default: the login name).")
@click.option("--note", default=None, help="Why (kept in the audit trail).")
def reject(ref: str, by: str | None, note: str | None) -> None:
    """Reject a decision (dec-…) or a group (grp-…): its targets are left alone until it would have lapsed."""
    _verdict(ref, "reject", by, note)


#: Entities per `decide` record: a campaign of 25,000 members is five records of one group.
ORDER_CHUNK = 5000
_CAMPAIGN_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def campaign_members(campaign_id: str) -> list[str]:
    """The member accounts the newest record of a campaign lists, from ClickHouse (through the
    lander's SQL door while it owns the embedded database)."""
    from extractguard.settings import ClickHouseSettings, lander_door
    from extractguard.storage.query import QueryError, query_any

    if not _CAMPAIGN_ID.match(campaign_id):
        raise click.BadParameter(f"{campaign_id!r} is not a campaign id", param_hint="--campaign")
    try:
        _columns, rows = query_any(
            f"SELECT members FROM campaigns FINAL WHERE campaign_id = '{campaign_id}'", ClickHouseSettings(),
            lander_door(),
        )  # fmt: skip
    except QueryError as error:
        raise click.ClickException(f"cannot read campaign {campaign_id}: {error}") from None
    if not rows or not rows[0][0]:
        raise click.ClickException(f"no campaign {campaign_id} with members in ClickHouse")
    return [str(member) for member in rows[0][0]]


@decisions.command("add")
@click.option("--account", help="An account id, as gateway events carry it.")
@click.option("--org", help="An org id.")
@click.option("--prefix", help="A client IP prefix, as events carry it (e.g. 203.0.113.0/24).")
@click.option("--api-key", "api_key", help="An API key hash, as events carry it.")
@click.option("--campaign", help="Every member account of this campaign (from ClickHouse).")
@click.option("--action", "action_name", required=True, help="observe, throttle, challenge, suspend, ...")
@click.option("--ttl", required=True, help="How long it is enforced: 90s, 30m, 24h, 7d.")
@click.option("--note", required=True, help="Why (kept in the audit trail and the decision's reason).")
@click.option("--by", default=None, help="Who (default: the login name).")
@click.option("--param", "params", multiple=True, help="An action parameter, NAME=VALUE (e.g. rate_factor=0.1).")
def add(
    account: str | None, org: str | None, prefix: str | None, api_key: str | None, campaign: str | None,
    action_name: str, ttl: str, note: str, by: str | None, params: tuple[str, ...],
) -> None:  # fmt: skip
    """Decide by hand: act on an account, org, IP prefix, API key or a campaign's members now.

    The decision is active at once (its maker approves it), replaces what is in force on the target,
    and stands against the policy until it expires or is lifted (`decisions lift`).
    """
    from extractguard.contracts.schemas import validate
    from extractguard.enforcement.actions import action
    from extractguard.enforcement.policy import seconds

    targets = {"account": account, "org": org, "ip_prefix": prefix, "api_key": api_key, "campaign": campaign}
    given = {scope: value for scope, value in targets.items() if value}
    if len(given) != 1:
        raise click.UsageError("name exactly one target: --account, --org, --prefix, --api-key or --campaign")
    ((scope, value),) = given.items()
    try:
        ttl_s = float(seconds(ttl))
        if any("=" not in p for p in params):
            raise ValueError("--param takes NAME=VALUE")
        raw = {name: _param_value(text) for name, _, text in (p.partition("=") for p in params)}
        action(action_name).params(raw)  # refused here, not by the enforcer
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    if ttl_s <= 0 or ttl_s > 365 * 86_400:
        raise click.UsageError("--ttl must be more than 0 and at most 365d")
    campaign_id = None
    if scope == "campaign":
        campaign_id, scope = value, "account"
        entities = campaign_members(value)
    else:
        entities = [value]
    who = by or getpass.getuser()
    now_ms = int(time.time() * 1000)
    group = f"grp-{secrets.token_hex(6)}"
    records = []
    for start in range(0, len(entities), ORDER_CHUNK):
        order = {"scope": scope, "entities": entities[start : start + ORDER_CHUNK], "action": action_name,
                 "params": raw, "ttl_s": ttl_s, "campaign_id": campaign_id, "group_id": group}  # fmt: skip
        record = validate("enforcement_approval", {
            "schema_version": 2, "approval_id": secrets.token_hex(16), "verdict": "decide", "by": who,
            "note": note, "at_ms": now_ms, "order": order,
        })  # fmt: skip
        records.append((group, record))
    _send(KafkaSettings(), records)
    target = f"campaign {campaign_id} ({len(entities)} accounts)" if campaign_id else f"{scope}:{value}"
    click.echo(f"{action_name} {target} for {ttl} by {who}: group {group}; the enforcer applies it "
               f"(undo: extractguard decisions lift {group})")  # fmt: skip


def _param_value(text: str) -> Any:
    """NAME=VALUE's value as JSON when it parses (numbers, true, lists), else as a string."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


@decisions.command()
@click.argument("ref")
@click.option("--note", required=True, help="Why (kept in the audit trail).")
@click.option("--by", default=None, help="Who (default: the login name).")
def lift(ref: str, note: str, by: str | None) -> None:
    """Lift a decision (dec-…) or a group of them (grp-…) in force, whoever made it: its targets are
    left alone by the policy until it would have expired."""
    from extractguard.contracts.schemas import validate

    if not re.fullmatch(r"dec-[0-9a-f]{16}|grp-[0-9a-f]{12}", ref):
        raise click.BadParameter(f"{ref!r}: expected dec-<16 hex> or grp-<12 hex>", param_hint="REF")
    kafka = KafkaSettings()
    now_ms = int(time.time() * 1000)
    in_force = [
        d for d in current_decisions(kafka)
        if d["status"] in ("active", "pending_approval") and ref in (d["decision_id"], d["group_id"])
        and d["expires_at_ms"] > now_ms
    ]  # fmt: skip
    if not in_force:
        raise click.ClickException(f"no decision in force is {ref} or in group {ref}")
    who = by or getpass.getuser()
    record = validate("enforcement_approval", {
        "schema_version": 2, "approval_id": secrets.token_hex(16), "ref": ref, "verdict": "lift", "by": who,
        "note": note, "at_ms": now_ms,
    })  # fmt: skip
    _send(kafka, [(ref, record)])
    click.echo(f"lift {ref}: {len(in_force)} decision(s) ({in_force[0]['action']}) by {who}; the enforcer applies it")


@decisions.command()
@click.argument("path", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def check(path: Path | None) -> None:
    """Validate a policy file (default: EXTRACTGUARD_ENFORCER_POLICY_FILE, or the shipped policy)."""
    from extractguard.enforcement.policy import PolicyError, load_policy

    try:
        policy = load_policy(path or EnforcerSettings().policy_file)
    except PolicyError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    for rule in policy.rules:
        ladder = " -> ".join(f"{r.action} ({r.ttl:g}s)" for r in rule.ladder)
        click.echo(f"{rule.name}: {rule.when.source} -> {', '.join(sorted(rule.targets))}: {ladder}")
    click.echo(f"ok: policy {policy.name} revision {policy.revision}, {len(policy.rules)} rules")


@click.command()
def enforcer() -> None:
    """Run the enforcer (campaigns and detections -> enforcement decisions)."""
    from extractguard.enforcement.service import run

    run()


@click.group()
def bouncer() -> None:
    """Enforcement points that apply the decisions: Envoy's gRPC services, the CrowdSec push."""


@bouncer.command()
def envoy() -> None:
    """Serve Envoy's ext_authz (envoy.service.auth.v3) and rate-limit (envoy.service.ratelimit.v3) over gRPC."""
    try:
        from extractguard.enforcement.envoy import run
    except ImportError as error:
        raise click.ClickException(f"{error}: pip install 'extractguard[envoy]'") from None
    run()


@bouncer.command()
def crowdsec() -> None:
    """Push IP-prefix decisions to a CrowdSec Local API as alerts (machine login)."""
    from extractguard.enforcement.crowdsec import run

    run()


def register(main: click.Group) -> None:
    for command in (enforcer, decisions, bouncer):
        main.add_command(command)
