"""`extractguard enforcer`, `extractguard decisions …` and `extractguard bouncer …`.

`decisions list` reads the compacted decisions topic (every target's newest decision, the same
state bouncers hold); `approve` and `reject` publish a person's verdict to `enforcement.approvals`,
which the enforcer (the decisions' only writer) applies; `check` validates a policy file as the
enforcer would load it.
"""

from __future__ import annotations

import getpass
import secrets
import sys
import time
from collections import Counter
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
    """Enforcement decisions: list them, approve or reject those waiting for a person, check a policy."""


@decisions.command("list")
@click.option("--all", "everything", is_flag=True, help="Expired, rejected and superseded ones too.")
@click.option("--pending", is_flag=True, help="Only those waiting for approval.")
@click.option("--json", "as_json", is_flag=True)
def list_decisions(everything: bool, pending: bool, as_json: bool) -> None:
    """Decisions in force (active, or waiting for approval) from the decisions topic."""
    now_ms = int(time.time() * 1000)
    found = current_decisions(KafkaSettings())
    if pending:
        found = [d for d in found if d["status"] == "pending_approval" and d["expires_at_ms"] > now_ms]
    elif not everything:
        found = [d for d in found if d["status"] in ("active", "pending_approval") and d["expires_at_ms"] > now_ms]
    if as_json:
        click.echo(orjson.dumps(found))
        return
    if not found:
        click.echo("no decisions")
        return
    for d in found:
        approval = d["approval"]
        by = f" approved by {approval['by']}" if approval.get("by") else ""
        click.echo(f"{d['decision_id']}  {d['group_id']}  {d['status']:<16} {d['action']:<9} {d['scope']}:{d['entity']}"
                   f"  until {_when(d['expires_at_ms'])} UTC{by}  ({d['rule']} rung {d['level'] + 1})")  # fmt: skip
    waiting = Counter(d["group_id"] for d in found if d["status"] == "pending_approval")
    for group, count in waiting.items():
        sample = next(d for d in found if d["group_id"] == group)
        click.echo(f"waiting: {group}  {count} decisions ({sample['action']}): {sample['approval']['reason']}")


def _verdict(ref: str, verdict: str, by: str | None, note: str | None) -> None:
    from confluent_kafka import Producer

    from extractguard.contracts.enforcement import ENFORCEMENT_APPROVALS
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
    producer = Producer({**kafka.client_config(), "enable.idempotence": True, "acks": "all"})
    producer.produce(ENFORCEMENT_APPROVALS, key=ref.encode(), value=orjson.dumps(record))
    if producer.flush(30):
        raise click.ClickException(f"the broker at {kafka.bootstrap_servers} did not take the verdict within 30 s")
    click.echo(f"{verdict} {ref}: {len(waiting)} decision(s) ({waiting[0]['action']}); the enforcer applies it")


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
