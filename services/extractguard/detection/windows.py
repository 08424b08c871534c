"""Tumbling event-time windows of per-entity activity, closed by a watermark.

Each event counts towards several entities at once (its account, org, API key, IP prefix, ASN, TLS
fingerprint, SDK, model and prompt template), so one pass over an envelope updates every entity's
window. The watermark is the highest event time seen minus the allowed lateness; a window closes
when the watermark passes its end, and events older than the oldest open window are counted as
late, not silently merged.

>>> w = EntityWindows(window_ms=60_000, lateness_ms=0)
>>> base = {"account_id": "a1", "client_ip_prefix": "1.2.3.0/24", "client_asn": 64500,
...         "tls_ja4": None, "input_tokens": 10, "output_tokens": 90, "request_logprobs": False,
...         "prompt_sketch": {"template_hash": "t1", "cot_elicitation": False}}
>>> w.add({**base, "event_time_ms": 1_000})
[]
>>> closed = w.add({**base, "event_time_ms": 61_000})
>>> [(c.start_ms, c.kinds["account"]["a1"].requests) for c in closed]
[(0, 1)]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

EntityKey = tuple[str, str]

#: Which event field gives which entity. Accounts are listed first: every entity tracks its accounts.
ENTITY_FIELDS: tuple[tuple[str, str], ...] = (
    ("account", "account_id"),
    ("org", "org_id"),
    ("api_key", "api_key_hash"),
    ("ip_prefix", "client_ip_prefix"),
    ("asn", "client_asn"),
    ("tls_ja4", "tls_ja4"),
    ("sdk", "sdk_name"),
    ("model", "request_model"),
)
YOUNG_ACCOUNT_MS = 7 * 86_400_000
#: Every entity kind a window tracks: the event fields above, and the prompt template.
ENTITY_KINDS: tuple[str, ...] = (*(kind for kind, _ in ENTITY_FIELDS), "template")
_FIELD_NAMES = tuple(name for _, name in ENTITY_FIELDS)
_NO_SKETCH: dict[str, Any] = {}


@dataclass(slots=True)
class EntityStats:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    logprobs: int = 0
    cot: int = 0
    young: int = 0  # requests from accounts less than a week old
    # The accounts behind the entity: a 1-tuple while there is one (an account itself, most API
    # keys and templates), a set from the second on. An empty set costs 216 bytes, a 1-tuple 48,
    # and every active account has a few such entities in the open window.
    accounts: tuple[str] | set[str] = field(default_factory=set)


class ClosedWindow:
    """A closed window's entities, by kind: `kinds[kind][name]` (e.g. `kinds["ip_prefix"]["1.2.3.0/24"]`).

    Each detector reads the kinds it judges, so none walks every entity of the window to find
    its own; `items()` walks them all, keyed by (kind, name), for those that judge every kind.
    """

    __slots__ = ("end_ms", "kinds", "requests", "start_ms")

    def __init__(
        self,
        start_ms: int,
        end_ms: int,
        entities: dict[EntityKey, EntityStats] | None = None,
        requests: int = 0,
        kinds: dict[str, dict[str, EntityStats]] | None = None,
    ) -> None:
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.requests = requests
        self.kinds: dict[str, dict[str, EntityStats]] = kinds if kinds is not None else {k: {} for k in ENTITY_KINDS}
        for (kind, name), stats in (entities or {}).items():
            self.kinds.setdefault(kind, {})[name] = stats

    def of_kind(self, kind: str) -> dict[str, EntityStats]:
        return self.kinds.get(kind) or {}

    def items(self) -> Iterator[tuple[EntityKey, EntityStats]]:
        """Every entity of the window with its (kind, name) key, kind by kind."""
        for kind, table in self.kinds.items():
            for name, stats in table.items():
                yield (kind, name), stats

    def accounts(self) -> list[str]:
        """The accounts active in the window."""
        return list(self.of_kind("account"))


class _OpenWindow:
    __slots__ = ("requests", "start_ms", "tables")

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.tables: tuple[dict[str, EntityStats], ...] = tuple({} for _ in ENTITY_KINDS)
        self.requests = 0


class EntityWindows:
    def __init__(self, window_ms: int, lateness_ms: int) -> None:
        self.window_ms = window_ms
        self.lateness_ms = lateness_ms
        self.open: dict[int, _OpenWindow] = {}
        self.max_event_ms = 0
        self.late_events = 0
        self.closed_until_ms = 0
        self.earliest_open_ms: float = float("inf")  # start of the oldest open window

    @property
    def watermark_ms(self) -> int:
        return self.max_event_ms - self.lateness_ms

    def add(self, event: dict[str, Any]) -> list[ClosedWindow]:
        """Count one event; returns the windows its watermark advance closed, oldest first."""
        ts = event["event_time_ms"]
        start = ts - ts % self.window_ms
        if start < self.closed_until_ms:
            self.late_events += 1
            return []
        window = self.open.get(start)
        if window is None:
            window = self.open[start] = _OpenWindow(start)
            if start < self.earliest_open_ms:
                self.earliest_open_ms = start
        window.requests += 1
        account = event["account_id"]
        sketch = event.get("prompt_sketch") or _NO_SKETCH  # v2: a gateway that logs no prompt
        logprobs = event["request_logprobs"]
        cot = sketch.get("cot_elicitation", False)
        created = event.get("account_created_ms")
        young = created is not None and ts - created < YOUNG_ACCOUNT_MS
        single = (account,)  # one tuple for every entity this event starts (tuples are immutable)
        names = [event.get(attribute) for attribute in _FIELD_NAMES]
        names.append(sketch.get("template_hash"))
        for table, name in zip(window.tables, names, strict=True):
            if name is None:
                continue
            if type(name) is not str:
                name = str(name)  # the ASN
            stats = table.get(name)
            if stats is None:
                stats = table[name] = EntityStats(accounts=single)
            else:
                accounts = stats.accounts
                if type(accounts) is tuple:
                    if accounts[0] != account:
                        stats.accounts = {accounts[0], account}
                else:
                    accounts.add(account)  # type: ignore[union-attr]
            stats.requests += 1
            stats.input_tokens += event["input_tokens"]
            stats.output_tokens += event["output_tokens"]
            stats.logprobs += logprobs
            stats.cot += cot
            stats.young += young
        if ts > self.max_event_ms:
            self.max_event_ms = ts
            return self._close_due()
        return []

    def _close_due(self) -> list[ClosedWindow]:
        watermark = self.watermark_ms
        if self.earliest_open_ms + self.window_ms > watermark:
            return []  # the common case, checked per event: nothing is due yet
        due = sorted(s for s in self.open if s + self.window_ms <= watermark)
        closed = []
        for start in due:
            window = self.open.pop(start)
            kinds = dict(zip(ENTITY_KINDS, window.tables, strict=True))
            closed.append(ClosedWindow(start, start + self.window_ms, requests=window.requests, kinds=kinds))
            self.closed_until_ms = start + self.window_ms
        self.earliest_open_ms = min(self.open, default=float("inf"))
        return closed

    def add_many(self, events: Iterable[dict[str, Any]]) -> list[ClosedWindow]:
        closed: list[ClosedWindow] = []
        for event in events:
            closed += self.add(event)
        return closed
