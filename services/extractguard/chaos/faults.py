"""The faults `make chaos` injects, one per run, at a random moment while the campaign is active.

Each is a name, what it does, and — where an exact zero in the table is impossible by design — the
bound that is documented and checked instead. `FAULTS` are those of the single local broker;
`CLUSTER_FAULTS` those of a replicated cluster (`make chaos CLUSTER=3`), where the faults that lose
data are a leader dying under its writes, a broker away while the others carry on, every broker
restarted in turn, and the KRaft controller dying.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Action = Literal[
    "none", "sigkill", "broker_stop", "broker_kill", "sigstop",
    # Of a cluster's nodes:
    "leader_kill", "node_stop", "rolling_restart", "controller_kill",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    action: Action
    target: str | None  # the service it is done to; None for the broker or no fault
    description: str
    #: A by-design bound on one cell of the table, as (column, the bound, why).
    bound: tuple[str, int, str] | None = None


#: The alerter pages before it records: a webhook delivered but not yet on `alerts` when the
#: alerter dies is delivered again by its successor (which rebuilds its book from `alerts`).
ALERTER_PAGES_TWICE = (
    "pages_twice",
    1,
    "a page delivered but not yet recorded on `alerts` when the alerter dies is sent again by the restarted "
    "alerter: at most the dedup keys of the one batch in flight, each at most once more per kill",
)

FAULTS: tuple[Fault, ...] = (
    Fault("none", "none", None, "a second uninterrupted run: what the comparison itself varies by"),
    Fault("sigkill detect", "sigkill", "detect", "SIGKILL a detection worker, then restart it"),
    Fault("sigkill campaigns", "sigkill", "campaigns", "SIGKILL the campaign service, then restart it"),
    Fault("sigkill lander", "sigkill", "lander", "SIGKILL the lander (it owns ClickHouse), then restart it"),
    Fault("sigkill alerter", "sigkill", "alerter", "SIGKILL the alerter, then restart it", ALERTER_PAGES_TWICE),
    Fault("broker stop/start", "broker_stop", None, "stop the Kafka broker cleanly, start it again"),
    Fault("broker sigkill", "broker_kill", None, "SIGKILL the Kafka broker, start it again"),
    Fault(
        "sigstop detect",
        "sigstop",
        "detect",
        "freeze one of two detection workers past its session timeout (the group rebalances), then SIGCONT",
    ),
)


CLUSTER_FAULTS: tuple[Fault, ...] = (
    Fault("none", "none", None, "a second uninterrupted run: what the comparison itself varies by"),
    Fault(
        "leader sigkill",
        "leader_kill",
        None,
        "SIGKILL the node leading gateway.events partition 0 (the others elect a new leader), start it again",
    ),
    Fault("node stop/start", "node_stop", None, "stop one node cleanly for 20 s under load, start it again"),
    Fault(
        "rolling restart",
        "rolling_restart",
        None,
        "stop and start every node in turn, each once every partition is back in sync",
    ),
    Fault("controller sigkill", "controller_kill", None, "SIGKILL the active KRaft controller's node, start it again"),
)


def by_name(names: list[str], faults: tuple[Fault, ...] = FAULTS) -> list[Fault]:
    known = {fault.name.replace(" ", "-").replace("/", "-"): fault for fault in faults}
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"no fault {unknown}; there are {sorted(known)}")
    return [known[name] for name in names]
