"""The `fingerprint.activity` contract: what a detection partition tells the campaign linker.

Detection workers (`detection.link_activity`) make the shares of each closed window; the linker
(`campaigns.linking`) weighs them. Both sides speak only this module, so neither imports the
other (schema `fingerprint_activity/v1`, golden examples beside it).

>>> shares = [("ip_prefix:185.220.101.0/24", 2, [("a1", "o1", True), ("a2", "o2", False)])]
>>> by_partition = envelopes(0, 0, 60_000, shares, (10, 1), partitions=2)
>>> sorted(by_partition) == [0, 1]
True
>>> [decode(raw).shares for raw in by_partition.values() if decode(raw).shares]
[[('ip_prefix:185.220.101.0/24', 2, [('a1', 'o1', True), ('a2', 'o2', False)])]]
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import xxhash

from extractguard.contracts.schemas import decode_json, validate

PAYLOAD = "fingerprint_activity"

#: (account, org, extraction-shaped) of one sharer, as the detection workers send it.
Sharer = tuple[str, str, bool]
#: One fingerprint's sharers in one window of one detection partition: (fingerprint, how many
#: accounts shared it in that partition, the sharers listed, possibly capped; none when no sharer
#: in that partition is extraction-shaped).
Share = tuple[str, int, list[Sharer]]
#: A detection partition's census of one window: (accounts active in it, how many of them shaped).
Census = tuple[int, int]


@dataclass(frozen=True, slots=True)
class ActivityEnvelope:
    source: int
    window_start_ms: int
    window_end_ms: int
    shares: list[Share]
    census: Census | None  # absent from workers that listed every sharer; the linker counts those


def partition_of(fingerprint: str, partitions: int) -> int:
    """The partition of `fingerprint.activity` a fingerprint's shares go to."""
    return xxhash.xxh64_intdigest(fingerprint.encode()) % partitions


def envelopes(
    source: int, start_ms: int, end_ms: int, shares: list[Share], census: Census, partitions: int
) -> dict[int, bytes]:
    """One envelope per partition of `fingerprint.activity`, every one of them, empty or not, each
    with the window's census (every linker partition learns the base rate from it)."""
    grouped: dict[int, list[Share]] = {p: [] for p in range(partitions)}
    for share in shares:
        grouped[partition_of(share[0], partitions)].append(share)
    return {
        p: orjson.dumps({
            "schema_version": 1, "source": source, "window_start_ms": start_ms, "window_end_ms": end_ms,
            "census": census, "shares": s,
        })
        for p, s in grouped.items()
    }  # fmt: skip


def decode(raw: bytes) -> ActivityEnvelope:
    """Decode and check one envelope; raises `InvalidMessage` with the reason when it is not one."""
    document = decode_json(raw)
    if isinstance(document, dict):
        document.setdefault("schema_version", 1)  # workers before the schema sent no version
    doc = validate(PAYLOAD, document)
    census = doc.get("census")
    return ActivityEnvelope(
        source=doc["source"],
        window_start_ms=doc["window_start_ms"],
        window_end_ms=doc["window_end_ms"],
        shares=[(fp, n, [(a, o, s) for a, o, s in sharers]) for fp, n, sharers in doc["shares"]],
        census=None if census is None else (census[0], census[1]),
    )
