"""Linker and resolver at full scale: a 25,000-account campaign among 250,000 organic accounts.

Synthetic fingerprint shares, as two detection partitions would send them, per one-minute window:
organic accounts active at ~10% per minute spread over 20,000 /24s, 40 ASNs, 30 SDKs, 500 popular
templates and their own prompt bands; the campaign's accounts (each active at 1 request/min, i.e.
all of them every window) behind a 200-prefix proxy pool with one client and a capability sweep of
400 templates. Prints the time per window of each stage, what the resolver found, and the resident
memory of both stages' state after `WINDOWS` windows.

    .venv/bin/python benchmarks/campaign_linking.py [windows]
"""

from __future__ import annotations

import gc
import pickle
import random
import sys
import time
import tracemalloc
from typing import Any

from extractguard.campaigns.linking import FingerprintLinker
from extractguard.campaigns.resolver import CampaignResolver
from extractguard.contracts.link_activity import Share

ORGANIC, CAMPAIGN, SOURCES, W = 250_000, 25_000, 2, 60_000


def window_shares(rng: random.Random, minute: int) -> dict[int, list[Share]]:
    sharers: dict[int, dict[str, list[tuple[str, str, bool]]]] = {s: {} for s in range(SOURCES)}

    def share(account: str, org: str, shaped: bool, fingerprints: list[str]) -> None:
        source = hash(account) % SOURCES
        for fp in fingerprints:
            sharers[source].setdefault(fp, []).append((account, org, shaped))

    for i in rng.sample(range(ORGANIC), ORGANIC // 10):
        account = f"o{i}"
        share(account, f"org{i // 3}", rng.random() < 0.001, [
            f"ip_prefix:{i % 20_000}", f"asn:{i % 40}", f"sdk:{i % 30}", f"template:{rng.randrange(500)}",
            f"prompt_band:{rng.getrandbits(48):x}",
        ])  # fmt: skip
    for i in range(CAMPAIGN):
        account = f"c{i}"
        share(account, f"corg{i}", minute >= 2 or rng.random() < 0.5, [
            f"ip_prefix:proxy{rng.randrange(200)}", "asn:proxy", "sdk:httpx", "tls_ja4:proxy",
            f"template:sweep{rng.randrange(400)}", f"prompt_band:{rng.getrandbits(48):x}",
        ])  # fmt: skip
    return {s: [(fp, len(v), v) for fp, v in fps.items()] for s, fps in sharers.items()}


def main() -> None:
    windows = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    rng = random.Random(1)
    linker = FingerprintLinker(window_ms=W, sources=SOURCES)
    resolver = CampaignResolver()
    link_s = resolve_s = 0.0
    found: list[Any] = []
    tracemalloc.start()
    for minute in range(windows + 1):
        shares = window_shares(rng, minute)
        start = time.perf_counter()
        evidence = []
        for source, listed in shares.items():
            evidence += linker.add(source, minute * W, (minute + 1) * W, listed)
        link_s += time.perf_counter() - start
        start = time.perf_counter()
        resolver.add_many(evidence)
        found = resolver.resolve((minute + 1) * W) or found
        resolve_s += time.perf_counter() - start
        del shares
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    campaign = max(resolver.campaigns.values(), key=lambda c: len(c.members))
    organic = sum(1 for c in resolver.campaigns.values() for a in c.members if a.startswith("o"))
    print(f"windows: {windows} (each: {ORGANIC // 10:,} organic + {CAMPAIGN:,} campaign accounts active)")
    print(f"linker:   {link_s / (windows + 1) * 1000:,.0f} ms per window (both partitions' shares)")
    print(f"resolver: {resolve_s / (windows + 1) * 1000:,.0f} ms per window")
    print(f"campaigns: {len(resolver.campaigns)}; largest {len(campaign.members):,} members; organic members {organic}")
    print(f"state: linker {len(pickle.dumps(linker)) / 1e6:.1f} MB pickled, resolver "
          f"{len(pickle.dumps(resolver)) / 1e6:.1f} MB pickled; traced Python heap now {current / 1e6:.0f} MB, "
          f"peak {peak / 1e6:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
