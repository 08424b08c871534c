"""Weighing shared fingerprints: when is sharing one evidence that accounts are one actor?

Per fingerprint and window, the shares sent by every detection partition are merged into the set
of accounts that used the fingerprint, each with its org and whether its behaviour is
extraction-shaped. Sharing is evidence only when it is *surprising*:

- the extraction-shaped accounts must be a large part of the sharers (`min_share`): a template
  used by every customer of a popular SDK, or a big cloud's prefix, is shared by thousands of
  ordinary accounts and links nobody, whatever a handful of its users do;
- and more of them than chance explains: the surprise is -log10 of the binomial probability of
  seeing at least that many shaped accounts among the sharers, at the base rate of shaped accounts
  in all traffic (learnt, never below `min_base_rate`). Below `min_surprise` it is chance;
- accounts of one org are expected to look alike: the shaped sharers must span two orgs, unless the
  one org fronts many accounts itself (`router_accounts`: a reseller's end customers are separate
  people).

The surprise is the evidence's weight. A window is weighed once every detection partition has
reported a later window — or, for a partition gone quiet (nothing for `quiet_s` of wall time),
once the others are `max_wait_windows` later — so the count of sharers is complete.

The same test runs over slow horizons (`slow_horizons_s`, an hour and a day): a campaign whose
accounts send a request an hour rarely has three of them in one window, but has dozens in an hour;
one whose accounts send one every few hours has hundreds in a day. Only fingerprints that had a
shaped sharer keep a slow book per horizon (its shaped sharers over the horizon and a decayed count
of the others per window); its evidence names the shaped sharers only, and it needs two orgs,
whatever the routers. A longer horizon speaks only when the shorter ones said nothing in the window.

>>> linker = FingerprintLinker(window_ms=60_000, sources=2)
>>> proxy = [(f"c{i}", f"o{i}", True) for i in range(8)] + [("a1", "oa", False)]
>>> cloud = [(f"c{i}", f"o{i}", True) for i in range(8)] + [(f"u{i}", f"p{i}", False) for i in range(2000)]
>>> for source in (0, 1):
...     _ = linker.add(source, 0, 60_000, [("ip_prefix:185.220.101.0/24", 9, proxy if source == 0 else []),
...                                        ("asn:16509", 2008, cloud if source == 0 else [])])
>>> evidence = linker.add(0, 60_000, 120_000, []) + linker.add(1, 60_000, 120_000, [])
>>> [(e.fingerprint, len(e.accounts), len(e.shaped)) for e in evidence]
[('ip_prefix:185.220.101.0/24', 9, 8)]
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from scipy.stats import binom

from extractguard.campaigns import watchlist as watchlists
from extractguard.campaigns.watchlist import Watchlist
from extractguard.contracts.link_activity import Census, Share

CONTENT_KINDS = frozenset({"template", "prompt_band"})
TIMING_KINDS = frozenset({"signup_cohort", "cadence"})
_LN10 = math.log(10)


@dataclass(frozen=True, slots=True)
class Evidence:
    fingerprint: str  # "<kind>:<value>"
    window_start_ms: int
    window_end_ms: int
    weight: float  # the surprise, in decades
    accounts: list[str]  # every sharer listed
    shaped: list[str]  # those of them that are extraction-shaped
    sharers_total: int  # including sharers beyond the cap
    orgs: int
    fronting_org: str | None = None  # the one org all shaped sharers are behind, when it fronts many
    #: Shaped sharers in all, when `shaped` lists only some (a slow horizon lists those new since
    #: it last spoke): with `sharers_total`, how much of the fingerprint is the shaped accounts'.
    shaped_total: int | None = None

    @property
    def concentration(self) -> float:
        shaped = self.shaped_total if self.shaped_total is not None else len(self.shaped)
        return min(1.0, shaped / max(self.sharers_total, 1))

    @property
    def kind(self) -> str:
        return self.fingerprint.split(":", 1)[0]

    def to_record(self) -> list[Any]:
        """The compact form on `link.evidence` (a list, not an object: there are many per window).

        >>> e = Evidence("tls_ja4:j", 0, 60_000, 7.5, ["a", "b"], ["a"], 2, 2, None)
        >>> Evidence.from_record(e.to_record()) == e, Evidence.from_record(e.to_record()[:9]) == e
        (True, True)
        """
        return [
            self.fingerprint, self.window_start_ms, self.window_end_ms, self.weight, self.accounts, self.shaped,
            self.sharers_total, self.orgs, self.fronting_org, self.shaped_total,
        ]  # fmt: skip

    @classmethod
    def from_record(cls, r: list[Any]) -> Evidence:
        fronting = None if r[8] is None else str(r[8])
        shaped_total = int(r[9]) if len(r) > 9 and r[9] is not None else None  # (records before it had 9)
        return cls(
            str(r[0]),
            int(r[1]),
            int(r[2]),
            float(r[3]),
            list(r[4]),
            list(r[5]),
            int(r[6]),
            int(r[7]),
            fronting,
            shaped_total,
        )


@dataclass(slots=True)
class _Slow:
    """A fingerprint's sharing over the slow horizon: its shaped sharers, each with the end of the
    last window it was seen in, and a decayed count of its other sharers per window (an account
    active in many windows counts in each: that only makes the shaped share look smaller)."""

    created_ms: int
    updated_ms: int
    shaped: dict[str, tuple[str, int]] = field(default_factory=dict)  # account -> (org, last seen)
    others: float = 0.0
    spoke_ms: int = 0  # end of the last window this book gave evidence for


@dataclass(slots=True)
class _Pending:
    total: int = 0
    sharers: dict[str, tuple[str, bool]] = field(default_factory=dict)


def surprise(shaped: int, sharers: int, base_rate: float) -> float:
    """-log10 P(X >= shaped) for X ~ Binomial(sharers, base_rate).

    >>> round(surprise(3, 3, 0.01), 1), round(surprise(3, 1000, 0.01), 1)
    (6.0, 0.0)
    """
    if shaped <= 0:
        return 0.0
    return max(0.0, -float(binom.logsf(shaped - 1, sharers, base_rate)) / _LN10)


class FingerprintLinker:
    def __init__(
        self,
        window_ms: int,
        sources: int = 1,
        min_share: float = 0.3,
        min_shaped: int = 3,
        min_surprise: float = 6.0,
        min_base_rate: float = 0.002,
        router_accounts: int = 20,
        max_wait_windows: int = 3,
        slow_horizons_s: tuple[float, ...] = (3600.0, 86_400.0),
        quiet_s: float = 30.0,
        watchlist: Watchlist | None = None,
    ) -> None:
        self.window_ms = window_ms
        # Peers' indicators: prior evidence added to sharing that passed. None: the data home's
        # (`indicators import`), read as they change and never checkpointed with the state.
        self.watchlist = watchlist
        self.min_share = min_share
        self.min_shaped = min_shaped
        self.min_surprise = min_surprise
        self.min_base_rate = min_base_rate
        self.router_accounts = router_accounts
        self.max_wait_windows = max_wait_windows
        self.quiet_s = quiet_s
        # The slow horizons: campaigns whose accounts send a few requests an hour rarely meet in one
        # window, but do within an hour or a day. Kept only for fingerprints that had a shaped sharer.
        self.slow_horizons_ms = [int(h * 1000) for h in sorted(slow_horizons_s)]
        self.slow: dict[int, dict[str, _Slow]] = {h: {} for h in self.slow_horizons_ms}
        self.pending: dict[int, dict[str, _Pending]] = {}  # window start -> fingerprint -> sharers
        self.census: dict[int, list[int]] = {}  # window start -> [accounts, shaped], summed over partitions
        # Detection partition -> end of the latest window it sent.
        self.reported: dict[int, int] = dict.fromkeys(range(sources), 0)
        self.heard_s: dict[int, float] = {}  # detection partition -> wall time of its last envelope
        self.weighed_until_ms = 0
        # Shaped and all sharers, decayed over windows: the base rate of shaped accounts.
        self.shaped_seen = 0.0
        self.sharers_seen = 0.0

    @property
    def base_rate(self) -> float:
        observed = self.shaped_seen / self.sharers_seen if self.sharers_seen else 0.0
        return max(self.min_base_rate, observed)

    def add(
        self,
        source: int,
        start_ms: int,
        end_ms: int,
        shares: Iterable[Share],
        census: Census | None = None,
        now_s: float | None = None,
    ) -> list[Evidence]:
        """Take one detection partition's shares of one window; returns the evidence of every
        window that is now complete, oldest first. `now_s` is the wall time (default: now)."""
        now = time.time() if now_s is None else now_s
        if start_ms >= self.weighed_until_ms:
            window = self.pending.setdefault(start_ms, {})
            if census is not None:
                counted = self.census.setdefault(start_ms, [0, 0])
                counted[0] += census[0]
                counted[1] += census[1]
            for fingerprint, total, sharers in shares:
                pending = window.get(fingerprint)
                if pending is None:
                    pending = window[fingerprint] = _Pending()
                pending.total += total
                for account, org, shaped in sharers:
                    pending.sharers[account] = (org, shaped)
        # (Shares of a window already weighed are late: the detection partition was restored from
        # an older checkpoint. They are dropped here, and the window keeps the evidence it gave.)
        self.reported[source] = max(self.reported.get(source, 0), end_ms)
        self.heard_s[source] = now
        return self._weigh_complete(now)

    def _weigh_complete(self, now: float) -> list[Evidence]:
        everyone = min(self.reported.values())  # every partition has sent windows ending by then
        newest = max(self.reported.values())
        evidence: list[Evidence] = []
        for start in sorted(self.pending):
            end = start + self.window_ms
            if end < everyone or (end + self.max_wait_windows * self.window_ms <= newest and self._quiet(end, now)):
                evidence += self._weigh(start, end, self.pending.pop(start))
                self.weighed_until_ms = max(self.weighed_until_ms, end)
        return evidence

    def _quiet(self, end: int, now: float) -> bool:
        """Whether every partition yet to report past `end` has gone quiet: sent nothing for
        `quiet_s` of wall time. A partition that is only behind — a replay, or catching up after a
        restart, where partitions drift minutes of event time apart — is waited for; weighing
        without it would drop its shares of the window as late."""
        return all(
            now - self.heard_s.get(source, float("-inf")) >= self.quiet_s
            for source, reported in self.reported.items()
            if reported <= end
        )

    def _weigh(self, start: int, end: int, window: dict[str, _Pending]) -> list[Evidence]:
        # The base rate is counted once per account and window (an account shares many fingerprints):
        # from the partitions' census, or, from senders without one, from the sharers listed.
        counted = self.census.pop(start, None)
        if counted is None:
            seen: dict[str, bool] = {}
            for pending in window.values():
                for account, (_org, is_shaped) in pending.sharers.items():
                    seen[account] = is_shaped
            counted = [len(seen), sum(seen.values())]
        base_rate = self.base_rate
        self.shaped_seen = 0.99 * self.shaped_seen + counted[1]
        self.sharers_seen = 0.99 * self.sharers_seen + counted[0]
        found: list[Evidence] = []
        for fingerprint, pending in window.items():
            sharers = pending.sharers
            n = max(pending.total, len(sharers))
            shaped = [a for a, (_org, is_shaped) in sharers.items() if is_shaped]
            said = self._weigh_window(fingerprint, start, end, sharers, n, shaped, base_rate)
            if said is not None:
                found.append(said)
            for horizon_ms in self.slow_horizons_ms:
                slow = self._weigh_slow(
                    horizon_ms, fingerprint, end, n, sharers, shaped, base_rate, already=said is not None
                )
                if slow is not None:
                    found.append(slow)
                    said = slow
        if end % (10 * self.window_ms) < self.window_ms:
            for horizon_ms, books in self.slow.items():
                if len(books) > 1000:
                    horizon = end - horizon_ms
                    self.slow[horizon_ms] = {f: b for f, b in books.items() if b.updated_ms > horizon}
        return sorted(found, key=lambda e: e.fingerprint)

    def _prior(self, fingerprint: str) -> float:
        return (self.watchlist if self.watchlist is not None else watchlists.current()).prior(fingerprint)

    def _concentrated(self, shaped: int, sharers: int) -> bool:
        return shaped >= self.min_shaped and shaped >= self.min_share * sharers

    def _weigh_window(
        self, fingerprint: str, start: int, end: int, sharers: dict[str, tuple[str, bool]], n: int,
        shaped: list[str], base_rate: float,
    ) -> Evidence | None:  # fmt: skip
        if not self._concentrated(len(shaped), n):
            return None
        shaped_orgs = {sharers[a][0] for a in shaped}
        fronting = None
        if len(shaped_orgs) < 2:
            (fronting,) = shaped_orgs
            if sum(1 for o, _ in sharers.values() if o == fronting) < self.router_accounts:
                return None
        weight = surprise(len(shaped), n, base_rate) + self._prior(fingerprint)
        if weight < self.min_surprise:
            return None
        return Evidence(
            fingerprint=fingerprint,
            window_start_ms=start,
            window_end_ms=end,
            weight=round(weight, 3),
            accounts=sorted(sharers),
            shaped=sorted(shaped),
            sharers_total=n,
            orgs=len({o for o, _ in sharers.values()}),
            fronting_org=fronting,
        )

    def _weigh_slow(
        self, horizon_ms: int, fingerprint: str, end: int, n: int, sharers: dict[str, tuple[str, bool]],
        shaped: list[str], base_rate: float, already: bool,
    ) -> Evidence | None:  # fmt: skip
        """Update the fingerprint's book of one slow horizon with this window; its evidence over the
        horizon, if any (`already`: a shorter view gave evidence this window, so this one need not)."""
        books = self.slow[horizon_ms]
        book = books.get(fingerprint)
        if book is None:
            if not shaped:
                return None
            book = books[fingerprint] = _Slow(created_ms=end, updated_ms=end)
        keep = 0.5 ** (self.window_ms / (horizon_ms / 2))  # per window; half-life half the horizon
        book.others = book.others * keep ** ((end - book.updated_ms) / self.window_ms)
        book.others += n - len(shaped)
        book.updated_ms = end
        for account in shaped:
            book.shaped[account] = (sharers[account][0], end)
        if not shaped or already or end - book.created_ms < horizon_ms / 4:
            return None  # nothing new, already evidence this window, or too young to know its sharers
        horizon = end - horizon_ms
        book.shaped = {a: v for a, v in book.shaped.items() if v[1] > horizon}
        k = len(book.shaped)
        n_slow = k + int(book.others)
        if not self._concentrated(k, n_slow):
            return None
        orgs = {org for org, _ in book.shaped.values()}
        if len(orgs) < 2:
            return None  # one org over an hour: its own accounts, not a campaign by this alone
        weight = surprise(k, n_slow, base_rate) + self._prior(fingerprint)
        if weight < self.min_surprise:
            return None
        # Only the sharers seen since the book last spoke: the resolver keeps every account it was
        # told of (for its own horizon), and listing the whole day's thousands again every window
        # would make each message as large as the campaign.
        accounts = sorted(a for a, (_org, seen) in book.shaped.items() if seen > book.spoke_ms)
        book.spoke_ms = end
        return Evidence(fingerprint, horizon, end, round(weight, 3), accounts, accounts, n_slow, len(orgs), None, k)
