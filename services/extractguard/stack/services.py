"""Which services a gateway needs, what each is for, and when each counts as up.

The order is the order of start: the lander first, as it owns the embedded ClickHouse and serves
the SQL door every other reader (the alerter's SQL rules, `extractguard sql`) goes through; the
alerter last, so its first SQL rule finds the door open.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, replace

from extractguard.settings import (
    AlerterSettings,
    CampaignSettings,
    DetectionSettings,
    EnforcerSettings,
    IngestSettings,
    LanderSettings,
    StackSettings,
)

START_ORDER = ("lander", "ingest", "detect", "campaigns", "enforcer", "alerter")


@dataclass(frozen=True, slots=True)
class StackService:
    name: str
    role: str
    env: dict[str, str]
    #: Answers 200 once the service can do its job (the Faust workers' web page opens once their
    #: checkpoint topics exist and the worker runs); None: alive is all that can be asked.
    ready_url: str | None
    #: Where a person or a gateway reaches it (shown by `status`).
    endpoint: str | None


def _port_env(variable: str, port: int | None) -> dict[str, str]:
    return {} if port is None else {variable: str(port)}


def _web_service(
    name: str, role: str, variable: str, port: int | None, default_port: int, ready_path: str
) -> StackService:
    """A service whose web page listens on the loopback: `port` if the stack sets one (passed to it
    in `variable`), else its own default; ready once `ready_path` answers."""
    url = f"http://127.0.0.1:{port or default_port}"
    return StackService(name, role, _port_env(variable, port), f"{url}{ready_path}", url)


def stack_services(stack: StackSettings) -> list[StackService]:
    """The services `stack.services` names, in the order of start, with their ports applied."""
    lander = LanderSettings()
    ingest = IngestSettings()
    sql_port = stack.lander_sql_port or lander.sql_port
    ingest_port = stack.ingest_port or ingest.port
    sql_door = f"http://{lander.sql_host}:{sql_port}"
    known = {
        "lander": StackService(
            "lander", "lands every topic in ClickHouse; serves read-only SQL while it owns the embedded database",
            _port_env("EXTRACTGUARD_LANDER_SQL_PORT", stack.lander_sql_port), f"{sql_door}/healthz", sql_door,
        ),
        "ingest": StackService(
            "ingest", "takes the gateway's events over HTTP (/v1/events, OTLP /v1/logs, Kong http-log)",
            _port_env("EXTRACTGUARD_INGEST_PORT", stack.ingest_port),
            f"http://{ingest.host}:{ingest_port}/healthz", f"http://{ingest.host}:{ingest_port}",
        ),
        "detect": _web_service(
            "detect", "per-account and per-prefix detectors over gateway.events (Faust)",
            "EXTRACTGUARD_DETECT_WEB_PORT", stack.detect_web_port, DetectionSettings().web_port, "/metrics",
        ),
        "campaigns": _web_service(
            "campaigns", "links accounts that share infrastructure, content and timing into campaigns (Faust)",
            "EXTRACTGUARD_CAMPAIGNS_WEB_PORT", stack.campaigns_web_port, CampaignSettings().web_port, "/metrics",
        ),
        "enforcer": _web_service(
            "enforcer", "turns campaigns and detections into decisions on enforcement.decisions (the bouncers' feed)",
            "EXTRACTGUARD_ENFORCER_WEB_PORT", stack.enforcer_web_port, EnforcerSettings().web_port, "/readyz",
        ),
        "alerter": _web_service(
            "alerter", "turns detections into alerts for on-call (webhook, PagerDuty, Slack, Alertmanager)",
            "EXTRACTGUARD_ALERTER_WEB_PORT", stack.alerter_web_port, AlerterSettings().web_port, "/readyz",
        ),
    }  # fmt: skip
    # Every reader of ClickHouse (the alerter's rules, the enforcer's facts) must find the door where
    # the lander opened it.
    door = _port_env("EXTRACTGUARD_LANDER_SQL_PORT", stack.lander_sql_port)
    return [
        replace(known[name], env={**door, **_static_membership(name), **known[name].env})
        for name in START_ORDER
        if name in stack.services
    ]


#: The services that read as members of a consumer group through librdkafka, by their settings'
#: prefix. (The Faust workers' sessions are short already, `session_timeout_s`.)
_GROUP_MEMBERS = {
    "lander": ("EXTRACTGUARD_LANDER_", LanderSettings),
    "enforcer": ("EXTRACTGUARD_ENFORCER_", EnforcerSettings),
    "alerter": ("EXTRACTGUARD_ALERTER_", AlerterSettings),
}


def _static_membership(name: str) -> dict[str, str]:
    """A group member restarted by the supervisor comes back under the same `group.instance.id`,
    so the broker hands it its partitions at once rather than after the killed member's session
    times out (45 s by default: a killed lander's events waited that long to land). One member of
    each group runs per stack, so the host and the service's name make the id unique; an id the
    operator set is kept."""
    if name not in _GROUP_MEMBERS:
        return {}
    prefix, settings = _GROUP_MEMBERS[name]
    instance_id = settings().group_instance_id or f"{socket.gethostname()}-{name}"
    return {f"{prefix}GROUP_INSTANCE_ID": instance_id}
