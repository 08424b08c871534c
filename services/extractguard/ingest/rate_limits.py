"""Per-gateway rate limits of the ingest: events per second for each token, so one broken gateway
cannot flood Kafka. Over the limit, a request is refused whole with 429 and `Retry-After`; nothing
of it is produced. The bucket is pyrate-limiter's GCRA, which allows a burst of `burst_s` seconds'
worth of events and says how long until a refused request would fit.

>>> limits = GatewayRateLimits(events_per_s=10, burst_s=1)
>>> limits.admit("gw-a", 8), limits.admit("gw-b", 8)
(None, None)
>>> 0 < limits.admit("gw-a", 8) <= 2
True
"""

from __future__ import annotations

import math
import threading
import time

from pyrate_limiter import GCRA, Decision, Duration, Rate, RateItem, StateBucket


class GatewayRateLimits:
    def __init__(self, events_per_s: float, burst_s: int = 10) -> None:
        self.rate = Rate(max(1, int(events_per_s * burst_s)), Duration.SECOND * burst_s)
        self._buckets: dict[str, StateBucket] = {}
        self._lock = threading.Lock()

    def admit(self, gateway: str, events: int) -> int | None:
        """None when the gateway may send `events` now (they are counted); else whole seconds to wait."""
        with self._lock:
            bucket = self._buckets.get(gateway)
            if bucket is None:
                bucket = self._buckets[gateway] = StateBucket([self.rate], algorithm=GCRA())
            weight = min(max(events, 1), self.rate.limit)  # a request bigger than a burst waits a full burst
            decision = bucket.put_decision(RateItem(gateway, int(time.time() * 1000), weight))
        assert isinstance(decision, Decision), "an in-memory bucket decides at once"
        if decision.failing_rate is None:
            return None
        return max(1, math.ceil((decision.retry_after_ms or 1000) / 1000))
