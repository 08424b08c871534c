"""The faults `make chaos` injects, one per run, at a random moment while the campaign is active.

Each is a name, what it does, and — where an exact zero in the table is impossible by design — the
bound that is documented and checked instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Action = Literal["none", "sigkill", "broker_stop", "broker_kill", "sigstop"]


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


def by_name(names: list[str]) -> list[Fault]:
    known = {fault.name.replace(" ", "-").replace("/", "-"): fault for fault in FAULTS}
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"no fault {unknown}; there are {sorted(known)}")
    return [known[name] for name in names]
