"""Fingerprint shares, made by a detection partition each time one of its windows closes.

The windows already know, per entity, which accounts used it; the shares add the fingerprints
that only linking needs — the first MinHash band of each prompt (near-duplicates share it:
4 rows of 64, so prompts of Jaccard 0.8 share it half the time, of 0.3 almost never) and the
signup cohort (accounts created in the same 10 minutes) — and mark each account extraction-shaped
or not, as the partition's behaviour view judges it now.

The worker sends them as envelopes of the `fingerprint.activity` contract
(`contracts.link_activity`), one per partition of that topic and window, empty or not.

>>> from extractguard.detection.windows import EntityWindows
>>> windows, activity = EntityWindows(60_000, 0), LinkActivity(60_000)
>>> event = {"account_id": "a1", "org_id": "o1", "client_ip_prefix": "1.2.3.0/24", "input_tokens": 1,
...          "output_tokens": 1, "request_logprobs": False, "account_created_ms": 0,
...          "prompt_sketch": {"template_hash": "00000000000000t1", "minhash": [1, 2, 3, 4]}}
>>> for ts in (1_000, 61_000):
...     activity.add({**event, "event_time_ms": ts}, windows.closed_until_ms)
...     closed = windows.add({**event, "event_time_ms": ts})
>>> shares, census = activity.shares(closed[0], shaped=lambda account, request_shape: False)
>>> sorted(fp for fp, _, _ in shares), census
(['ip_prefix:1.2.3.0/24', 'prompt_band:08334bdca70af290', 'signup_cohort:0', 'template:00000000000000t1'], (1, 0))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from extractguard.contracts.link_activity import Census, Share
from extractguard.detection.windows import ClosedWindow

#: Entity kinds of the windows that are fingerprints for linking (not accounts, orgs, API keys or
#: models: those are the units and the targets, not shared infrastructure).
WINDOW_KINDS = ("ip_prefix", "asn", "tls_ja4", "sdk", "template")
COHORT_MS = 600_000
MAX_SHARERS = 2000  # sharers listed per fingerprint and window; the count says how many there were


class LinkActivity:
    """The linking-only fingerprints of each account in each open window."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        # Window start -> account -> [its signup cohort, the largest request shape among its
        # requests in the window, then the first MinHash bands of its prompts as integers]: the
        # fingerprint strings are made once per window at its close, not per event. One list an
        # account (a set would cost 216 bytes empty, a tuple beside it 56).
        self.open: dict[int, dict[str, list[Any]]] = {}

    def add(self, event: dict[str, Any], closed_until_ms: int, request_shape: float = 0.0) -> None:
        ts = event["event_time_ms"]
        start = ts - ts % self.window_ms
        if start < closed_until_ms:
            return  # late: the windows do not count it either
        accounts = self.open.get(start)
        if accounts is None:
            accounts = self.open[start] = {}
        seen = accounts.get(event["account_id"])
        if seen is None:
            # An end user behind a reseller has the reseller account's signup time, which says
            # nothing of the end user: every customer of the reseller would be one "cohort".
            created = None if event.get("end_user_id") else event.get("account_created_ms")
            seen = accounts[event["account_id"]] = [None if created is None else created // COHORT_MS, request_shape]
        elif request_shape > seen[1]:
            seen[1] = request_shape
        minhash = (event.get("prompt_sketch") or {}).get("minhash")  # v2: an event may have no sketch
        if minhash and len(minhash) >= 4:
            # Python's hash of a tuple of ints is the same in every process (no hash seed for ints).
            band = hash((minhash[0], minhash[1], minhash[2], minhash[3])) & 0xFFFFFFFFFFFFFFFF
            if band not in seen:  # (a band equal to the cohort number: one chance in 2**64)
                seen.append(band)

    def shares(
        self,
        window: ClosedWindow,
        shaped: Callable[[str, float], bool],
        cadence: Callable[[str], int | None] = lambda account: None,
    ) -> tuple[list[Share], Census]:
        """The window's shares and its census (accounts judged, how many shaped). `shaped` judges
        an account given the largest shape of its requests in the window; `cadence` gives the
        period it keeps, if any (`cadence:<bucket>`: a controller's schedule).

        A fingerprint none of whose sharers here is shaped goes with its count only: the linker
        needs its sharers only when shaped accounts concentrate on it, and then the partitions that
        saw them list them. Most fingerprints of ordinary traffic are like that, and listing every
        sharer of each was most of the cost of sharing (and of the linker's input).
        """
        extras = self.open.pop(window.start_ms, {})
        for start in [s for s in self.open if s < window.start_ms]:
            del self.open[start]  # (windows close in order; nothing older can still be open)
        org_of: dict[str, str] = {}
        sharers: dict[str, list[str]] = {}
        for value, stats in window.of_kind("org").items():
            for account in stats.accounts:
                org_of[account] = value
        for kind in WINDOW_KINDS:
            for value, stats in window.of_kind(kind).items():
                sharers[f"{kind}:{value}"] = list(stats.accounts)
        by_band: dict[int, list[str]] = {}
        by_cohort: dict[int, list[str]] = {}
        for account, seen in extras.items():
            cohort = seen[0]
            if cohort is not None:
                by_cohort.setdefault(cohort, []).append(account)
            for band in seen[2:]:
                by_band.setdefault(band, []).append(account)
        for band, accounts in by_band.items():
            sharers[f"prompt_band:{band:016x}"] = accounts
        by_cadence: dict[int, list[str]] = {}
        for account in extras:
            period = cadence(account)
            if period is not None:
                by_cadence.setdefault(period, []).append(account)
        for period, accounts in by_cadence.items():
            sharers[f"cadence:{period}"] = accounts
        for cohort, accounts in by_cohort.items():
            sharers[f"signup_cohort:{cohort}"] = accounts
        # Each account judged once per window, and its (account, org, judgement) built once.
        sharer = {a: (a, org_of.get(a, a), shaped(a, extras[a][1] if a in extras else 0.0)) for a in window.accounts()}
        for account, seen in extras.items():
            if account not in sharer:
                sharer[account] = (account, org_of.get(account, account), shaped(account, seen[1]))
        leaning = {a for a, (_a, _o, is_shaped) in sharer.items() if is_shaped}
        return [
            (fp, len(accounts), [] if leaning.isdisjoint(accounts) else
             [sharer[a] for a in (accounts if len(accounts) <= MAX_SHARERS else sorted(accounts)[:MAX_SHARERS])])
            for fp, accounts in sharers.items()
        ], (len(sharer), len(leaning))  # fmt: skip
