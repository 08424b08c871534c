"""The cyclic garbage collector, set for stream workers that hold millions of long-lived objects.

CPython's cyclic collector runs a young-generation pass every 700 net allocations, and older passes
walk every tracked object of the generations they cover. A detection worker allocates a few dozen
objects per event (window tallies, sets of accounts, per-account state) and keeps most of them for
minutes to hours, so with the defaults a large part of its CPU went into walking the same live
state again and again. `benchmarks/gc_policy.py` (hydra's 142,005 events, held in memory like a
long-lived state): counting them into windows costs 18.6 us of CPU an event with the default
thresholds and 10.5 us with this policy; the whole engine 146 and 90 us.

Nothing the workers keep needs the cyclic collector: their state is trees of dicts, lists, sets and
slotted objects, freed by reference counting when dropped. So the young threshold is raised, and
the state restored from a checkpoint — the bulk of the long-lived objects — is frozen out of the
collector's view (`gc.freeze`; frozen objects are still freed by reference counting).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000


def for_streaming() -> None:
    """Collect young objects every 50,000 allocations instead of 700; older generations as usual."""
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def settle_restored_state() -> None:
    """After a restore: collect what loading left behind, then stop walking the restored objects."""
    gc.collect()
    gc.freeze()
