"""The fault table: each faulted run against the clean run of the same seed.

Columns (the goal is zero in every cell):

- `events_lost`: events published minus the events in ClickHouse (`count() FROM events FINAL`);
- `rows_duplicated`: rows of `events` and `detections` that only `FINAL` folds (`count()` minus
  `count() ... FINAL`): a duplicate the lander's idempotent inserts should have prevented;
- `detections_missing` / `detections_extra`: ids of the per-entity detections (every detector but
  `campaign`) of the clean run absent from this run, and ids this run made that the clean one did not;
- `campaigns_differ`: campaigns still standing (latest record not merged or closed) whose member
  set the other run has no campaign with. Compared by members, not by id: the resolver reads the
  evidence of both linker partitions as it arrives, and a different interleaving names the same
  campaign differently (two clean runs showed it), so an id says nothing about a fault;
- `pages_twice`: deliveries to on-call identical to an earlier one of the same dedup key (same
  status, severity, accounts, first and last seen), beyond what the clean run had;
- `dlq_difference`: dead letters written in this run minus the clean run's.

A row whose fault has a by-design bound carries `bound_documented: true`, the bound and whether the
run stayed within it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from extractguard.chaos.faults import Fault
from extractguard.chaos.run import Outcome

COLUMNS = (
    "events_lost",
    "rows_duplicated",
    "detections_missing",
    "detections_extra",
    "campaigns_differ",
    "pages_twice",
    "dlq_difference",
)


@dataclass(frozen=True, slots=True)
class FaultRow:
    fault: str
    events_lost: int
    rows_duplicated: int
    detections_missing: int
    detections_extra: int
    campaigns_differ: int
    pages_twice: int
    dlq_difference: int
    fault_at_s: float | None
    services_died: list[str]
    wall_s: float
    bound_documented: bool = False
    bound: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        row = asdict(self)
        if not self.bound_documented:
            row.pop("bound")
        return row

    def clean(self) -> bool:
        """Zero in every cell, or within its documented bound."""
        for column in COLUMNS:
            value = getattr(self, column)
            if self.bound is not None and self.bound["column"] == column:
                if value > self.bound["at_most"]:
                    return False
            elif value != 0:
                return False
        return True


def _standing(outcome: Outcome) -> set[tuple[str, ...]]:
    return {tuple(members) for status, members in outcome.campaigns.values() if status not in ("merged", "closed")}


def _repeats(outcome: Outcome) -> int:
    return sum(n - 1 for n in outcome.pages.values() if n > 1)


def compare(clean: Outcome, run: Outcome, fault: Fault) -> FaultRow:
    differ = _standing(clean) ^ _standing(run)
    bound = None
    if fault.bound is not None:
        column, per_kill, why = fault.bound
        # Each dedup key of the batch in flight is paged at most once more per kill; the batch in
        # flight is among the keys paged in the seconds before the kill.
        bound = {"column": column, "at_most": per_kill * run.in_flight_keys, "why": why}
    return FaultRow(
        fault=fault.name,
        events_lost=run.events_sent - run.events_final,
        rows_duplicated=(run.events_rows - run.events_final) + (run.detections_rows - run.detections_final),
        detections_missing=len(clean.detection_ids - run.detection_ids),
        detections_extra=len(run.detection_ids - clean.detection_ids),
        campaigns_differ=len(differ),
        pages_twice=max(0, _repeats(run) - _repeats(clean)),
        dlq_difference=run.dlq_messages - clean.dlq_messages,
        fault_at_s=run.fault_at_s,
        services_died=run.died,
        wall_s=run.wall_s,
        bound_documented=bound is not None,
        bound=bound,
    )


def markdown(rows: list[FaultRow], header: dict[str, Any]) -> str:
    lines = [
        "# ExtractGuard chaos run",
        "",
        f"`{header['command']}` on {header['generated_at']}"
        + (f", {header['brokers']} brokers" if header.get("brokers", 1) > 1 else "")
        + f": scenario `{header['scenario']}` (seed {header['seed']}, "
        f"{header['events']:,} events published over {header['publish_s']:.0f} s), each fault once, against a clean "
        f"run of the same seed ({header['clean_wall_s']:.0f} s)"
        + (f"; {header['total_wall_s']:.0f} s in all." if "total_wall_s" in header else "."),
        "",
        "| fault | " + " | ".join(COLUMNS) + " | bound | fault at (s) | run (s) |",
        "|---|" + "---|" * (len(COLUMNS) + 3),
    ]
    for row in rows:
        cells = [str(getattr(row, c)) for c in COLUMNS]
        bound = f"{row.bound['column']} <= {row.bound['at_most']}" if row.bound else ""
        died = f" (died: {', '.join(row.services_died)})" if row.services_died else ""
        lines.append(f"| {row.fault}{died} | " + " | ".join(cells) + f" | {bound} | {row.fault_at_s} | {row.wall_s} |")
    lines += ["", __doc__ or ""]
    bounded = [row for row in rows if row.bound]
    if bounded:
        lines += ["## Bounds by design", ""]
        lines += [f"- **{row.fault}**: {row.bound['why']}." for row in bounded if row.bound]
    return "\n".join(lines) + "\n"
