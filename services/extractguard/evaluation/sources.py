"""What an evaluation replays: a simulated scenario, or any labelled event file.

Both give the same thing to the evaluation: gateway events in event-time order, each with the
ground truth of its account, and the label records that go to `account.labels`. A file is the
format `extractguard simulate` writes (`events.ndjson`, one gateway event per line, and
`labels.jsonl`, one `account_label` record per account) — or an operator's export of their own
traffic and verdicts. Accounts of the event file that no label names count as organic, of class
`unlabelled`, and have no label record.

>>> from extractguard.simulator.scenario import CampaignSpec, OrganicSpec
>>> replay = SimulatedReplay(Scenario(organic=OrganicSpec(accounts=5), duration_s=600,
...     campaigns=[CampaignSpec(name="c", accounts=3, start_s=60, kind="hydra")]), start_ms=1_700_000_000_000)
>>> rows = list(replay.events())
>>> rows[0].event["event_time_ms"] <= rows[-1].event["event_time_ms"], replay.kinds
(True, {'c': 'hydra'})
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import orjson

from extractguard.contracts.subjects import subject_of
from extractguard.evaluation.event_file import EventFileFaults, numbered_lines
from extractguard.gateway.events import build_event
from extractguard.simulator.ground_truth import label_record
from extractguard.simulator.population import SimAccount
from extractguard.simulator.scenario import Scenario
from extractguard.simulator.stream_file import SIMULATION_KEY_SECRET
from extractguard.simulator.traffic import generate

UNLABELLED = "unlabelled"


class LabelledEvent(NamedTuple):
    account_id: str
    label: str  # organic | campaign
    klass: str
    campaign: str | None
    event: dict[str, Any]


class Replay(Protocol):
    """A labelled stream for the evaluation. `events()` may be called once."""

    name: str
    description: str
    duration_s: float
    start_ms: int
    seed: int | None
    launches: list[dict[str, Any]]  # [{"model": ..., "at_ms": ...}], announced to the engine
    kinds: dict[str, str]  # campaign -> what the done-when criteria judge it as

    def events(self) -> Iterator[LabelledEvent]: ...

    def label_records(self) -> list[dict[str, Any]]:
        """The `account_label` records of every account seen so far (call after `events()`)."""
        ...


@dataclass
class SimulatedReplay:
    scenario: Scenario
    start_ms: int
    name: str = ""
    description: str = ""
    duration_s: float = 0.0
    seed: int | None = None
    launches: list[dict[str, Any]] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)
    _accounts: dict[str, SimAccount] = field(default_factory=dict)

    def __post_init__(self) -> None:
        s = self.scenario
        self.name, self.description, self.duration_s, self.seed = s.name, s.description, s.duration_s, s.seed
        if s.launch is not None:
            self.launches = [{"model": s.launch.model, "at_ms": self.start_ms + int(s.launch.at_s * 1000)}]
        self.kinds = {c.name: c.judged_as for c in s.campaigns}

    def events(self) -> Iterator[LabelledEvent]:
        accounts = self._accounts
        for account, request in generate(self.scenario, self.start_ms):
            event = build_event(request, SIMULATION_KEY_SECRET)
            subject = subject_of(event)  # judged, and so scored, per end user behind a reseller
            if subject not in accounts:
                accounts[subject] = account
            yield LabelledEvent(subject, account.label, account.klass, account.campaign, event)

    def label_records(self) -> list[dict[str, Any]]:
        now = int(time.time() * 1000)
        return [label_record(self.name, a, now, subject) for subject, a in self._accounts.items()]


@dataclass
class StreamReplay:
    """A labelled event file. Its events are read twice: once here to find its span (and whether
    it is in event-time order: an export may not be, and is then sorted in memory), once to replay."""

    events_path: Path
    labels_path: Path
    name: str
    description: str = ""
    launches: list[dict[str, Any]] = field(default_factory=list)
    duration_s: float = 0.0
    start_ms: int = 0
    seed: int | None = None
    kinds: dict[str, str] = field(default_factory=dict)
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    _sorted: list[dict[str, Any]] | None = None
    _seen: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.labels = read_labels(self.labels_path)
        self.kinds = {str(r["campaign"]): str(r["campaign"]) for r in self.labels.values() if r.get("campaign")}
        first = last = None
        ordered = True
        count = 0
        # Every line checked as the pipeline would before anything is sent: a file it would refuse
        # is refused here, with the line, the field and how many lines share each fault.
        faults = EventFileFaults()
        for number, line in numbered_lines(self.events_path):
            event = faults.check(number, line)
            if event is None:
                continue
            ts = event["event_time_ms"]
            if last is not None and ts < last:
                ordered = False
            first = ts if first is None else min(first, ts)
            last = ts if last is None else max(last, ts)
            count = number
        if faults.refused:
            raise ValueError(faults.refusal(self.events_path))
        if first is None or last is None:
            raise ValueError(f"{self.events_path}: no events")
        if not ordered:
            self._sorted = sorted((e for _n, e in _read_events(self.events_path)), key=lambda e: e["event_time_ms"])
        self.start_ms = int(first)
        span_s = (int(last) - int(first)) / 1000
        self.duration_s = self.duration_s or max(span_s, 1.0)
        self.description = self.description or f"{count:,} events from {self.events_path}"

    def events(self) -> Iterator[LabelledEvent]:
        stream = self._sorted if self._sorted is not None else (e for _n, e in _read_events(self.events_path))
        for event in stream:
            account = subject_of(event)
            self._seen.add(account)
            record = self.labels.get(account)
            if record is None:
                yield LabelledEvent(account, "organic", UNLABELLED, None, event)
            else:
                klass = record.get("class") or ("campaign" if record["label"] == "campaign" else "regular")
                yield LabelledEvent(account, record["label"], klass, record.get("campaign"), event)

    def label_records(self) -> list[dict[str, Any]]:
        now = int(time.time() * 1000)
        # Stamped with this evaluation's name, so ClickHouse joins them to it as to a scenario.
        seen = sorted(self._seen & set(self.labels))
        return [{**self.labels[a], "scenario": self.name, "labelled_at_ms": now} for a in seen]


def read_labels(path: Path) -> dict[str, dict[str, Any]]:
    """Every `account_label` record of a JSONL file, by account; a file with bad lines is refused
    with each fault's first line, field and how many lines share it."""
    labels: dict[str, dict[str, Any]] = {}
    faults = EventFileFaults("account_label", "account_label records")
    for number, line in numbered_lines(path):
        record = faults.check(number, line)
        if record is not None:
            labels[record["account_id"]] = record
    if faults.refused:
        raise ValueError(faults.refusal(path))
    if not labels:
        raise ValueError(f"{path}: no labels")
    return labels


def _read_events(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                event = orjson.loads(line)
                if not isinstance(event, dict) or not isinstance(event.get("event_time_ms"), int):
                    raise ValueError("expected a gateway event object with an integer event_time_ms")
                if not isinstance(event.get("account_id"), str):
                    raise ValueError("expected a string account_id")
            except (orjson.JSONDecodeError, ValueError) as error:
                raise ValueError(f"{path}:{number}: {error}") from None
            yield number, event
