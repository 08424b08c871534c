"""How many copies of a topic the cluster at hand keeps, and how many must have a write before it
is acknowledged.

Three brokers or more: 3 replicas and `min.insync.replicas` 2, what production runs. With producers
on `acks=all` (every producer here), a write is acknowledged only once two replicas have it, so the
leader that took it can die and another in-sync replica, which has it too, takes over; one broker
may be down (stopped, restarting, partitioned away) and the topic still takes writes. Fewer brokers
(a laptop's single one): 1 replica, as many as there are.

>>> replication_for(1)
Replication(factor=1, min_insync=1)
>>> replication_for(3), replication_for(5)
(Replication(factor=3, min_insync=2), Replication(factor=3, min_insync=2))
>>> replication_for(3).topic_config()
{'min.insync.replicas': '2'}
"""

from __future__ import annotations

from typing import NamedTuple


class Replication(NamedTuple):
    factor: int
    min_insync: int

    def topic_config(self) -> dict[str, str]:
        """The topic-level setting that goes with the factor (nothing to set for a single copy)."""
        return {"min.insync.replicas": str(self.min_insync)} if self.factor > 1 else {}


def replication_for(brokers: int) -> Replication:
    """The replication of a topic created on a cluster of `brokers` brokers."""
    if brokers >= 3:
        return Replication(3, 2)
    return Replication(max(1, brokers), 1)
