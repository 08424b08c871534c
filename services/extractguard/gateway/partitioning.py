"""Which partition of `gateway.events` an account's events go to.

Kafka's Java default: murmur2 of the key, made positive, modulo the partition count. Every producer
(SDK, HTTP ingest, Faust) must agree, because per-account state lives in the partition's worker.

>>> partition_for("acct-1", 4) == partition_for("acct-1", 4)
True
>>> 0 <= partition_for("acct-2", 4) < 4
True
"""

from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import murmur2


@lru_cache(maxsize=1 << 16)
def _positive_hash(account: str) -> int:
    return int(murmur2(account.encode())) & 0x7FFFFFFF


def partition_for(account: str, partitions: int) -> int:
    return _positive_hash(account) % partitions
