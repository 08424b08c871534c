"""Peers' indicators as prior evidence for the linker: fingerprints a peer's campaign was held
together by (`extractguard indicators import`), each with the peer's confidence and its bundle.

A watchlisted fingerprint weighs more: its evidence gets `prior` decades on top of its surprise.
The prior is a head start, never a verdict: it is added only to sharing that already passed the
linker's own tests (enough extraction-shaped sharers, a large part of all sharers, two orgs), so a
peer's list of fingerprints that thousands of honest accounts share links none of them, and it is
below the linker's threshold on its own (`MAX_PRIOR` < `min_surprise`).

>>> watchlist = Watchlist({"ip_prefix:185.220.101.0/24": ("bundle--1", 80)})
>>> watchlist.prior("ip_prefix:185.220.101.0/24"), watchlist.prior("asn:16509")
(2.4, 0.0)
>>> watchlist.bundle("ip_prefix:185.220.101.0/24")
'bundle--1'

The campaign record names the bundles its fingerprints came from (`named_in`):

>>> record = {"fingerprints": [{"fingerprint": "ip_prefix:185.220.101.0/24", "weight": 9.0, "sharers": 8}]}
>>> named_in(record, watchlist)["watchlists"]
[{'bundle': 'bundle--1', 'fingerprints': ['ip_prefix:185.220.101.0/24']}]

The linker reads the data home's watchlists (`current`), which an import changes while it runs:
they are read again when the folder changes, looked at no more than every `RECHECK_S`. They are
never part of the linker's checkpointed state.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from extractguard.paths import data_home

#: Decades of prior evidence at full confidence (the linker's own threshold is 6).
MAX_PRIOR = 3.0
RECHECK_S = 10.0


def watchlist_dir() -> Path:
    return data_home() / "watchlists"


class Watchlist:
    def __init__(self, entries: dict[str, tuple[str, int]] | None = None) -> None:
        self.entries = entries or {}  # fingerprint -> (bundle id, confidence 0-100)

    @classmethod
    def load(cls, directory: Path | None = None) -> Watchlist:
        """Every imported watchlist file of `directory` (the data home's `watchlists/`); the most
        confident bundle wins a fingerprint that several name."""
        entries: dict[str, tuple[str, int]] = {}
        folder = directory or watchlist_dir()
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            document = orjson.loads(path.read_bytes())
            for fingerprint, confidence in document["fingerprints"].items():
                held = entries.get(fingerprint)
                if held is None or confidence > held[1]:
                    entries[fingerprint] = (str(document["bundle"]), int(confidence))
        return cls(entries)

    def prior(self, fingerprint: str) -> float:
        """Decades of prior evidence the watchlist gives this fingerprint (0: not on it)."""
        held = self.entries.get(fingerprint)
        return 0.0 if held is None else round(MAX_PRIOR * max(0, min(100, held[1])) / 100, 3)

    def bundle(self, fingerprint: str) -> str | None:
        held = self.entries.get(fingerprint)
        return None if held is None else held[0]


def named_in(record: dict[str, Any], watchlist: Watchlist | None = None) -> dict[str, Any]:
    """The campaign record with `watchlists`: each bundle some of its fingerprints are on, and
    which (absent when none are)."""
    watchlist = watchlist if watchlist is not None else current()
    by_bundle: dict[str, list[str]] = {}
    for entry in record.get("fingerprints") or []:
        bundle = watchlist.bundle(entry["fingerprint"])
        if bundle is not None:
            by_bundle.setdefault(bundle, []).append(entry["fingerprint"])
    if not by_bundle:
        return record
    return {**record, "watchlists": [{"bundle": b, "fingerprints": f} for b, f in sorted(by_bundle.items())]}


class _Current:
    """The data home's watchlists, read again when the folder changes."""

    def __init__(self) -> None:
        self.watchlist = Watchlist()
        self.checked_s = float("-inf")
        self.stamp: tuple[int, int] | None = None

    def get(self) -> Watchlist:
        now = time.monotonic()
        if now - self.checked_s < RECHECK_S:
            return self.watchlist
        self.checked_s = now
        folder = watchlist_dir()
        stamp = (folder.stat().st_mtime_ns, sum(1 for _ in folder.glob("*.json"))) if folder.is_dir() else None
        if stamp != self.stamp:
            self.stamp, self.watchlist = stamp, Watchlist.load(folder)
        return self.watchlist


_CURRENT = _Current()


def current() -> Watchlist:
    """The watchlists imported into the data home (`extractguard indicators import`)."""
    return _CURRENT.get()
