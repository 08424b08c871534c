"""Send events from the gateway without ever making the gateway wait: batched, checked, bounded.

`submit` is all the gateway's request path calls: it puts the observation in a bounded buffer and
returns at once (no I/O, no lock held across anything slow). One background thread sketches,
checks (`events.build`: a bad optional field is dropped with a reason, an event with a bad
required field is refused) and sends batches through a `Transport` (the HTTP ingest or Kafka).

When the backend is down the batch goes to a local spool if one is configured (bounded in bytes,
resent oldest first once the backend answers again), otherwise it is dropped and counted. When the
buffer is full new observations are dropped and counted. Every observation ends in exactly one of
the counters of `SenderStats`, so a gateway operator can always account for what was observed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from extractguard_gateway.contract import InvalidEvent
from extractguard_gateway.events import ObservedRequest, build

log = logging.getLogger("extractguard_gateway")

#: What one queued observation is assumed to cost beyond its prompt (the dataclass, its strings).
OBSERVATION_OVERHEAD_BYTES = 1024


class TransportUnavailable(RuntimeError):
    """The backend could not be reached or answered that it cannot take the batch now (retry later)."""


@dataclass(slots=True)
class Delivery:
    """The backend's answer for one batch: how many it took, and the reason of each it refused."""

    accepted: int
    rejected: list[str] = field(default_factory=list)


class Transport(Protocol):
    """Carries batches of encoded events to ExtractGuard.

    `send` is called from the sender's thread only; it may block (with a timeout of its own) and
    raises `TransportUnavailable` when the batch should be kept and retried. Any other failure is
    final for that batch.
    """

    def send(self, lines: list[bytes]) -> Delivery: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class SenderSettings:
    max_buffered_bytes: int = 16 * 1024 * 1024  # observations waiting to be built, prompts included
    batch_max_events: int = 500
    linger_ms: int = 200  # a partial batch waits at most this long
    spool_dir: Path | None = None  # keep batches the backend could not take (None: drop and count)
    spool_max_bytes: int = 256 * 1024 * 1024
    retry_max_s: float = 30.0  # backoff ceiling while the backend is down


@dataclass(slots=True)
class SenderStats:
    """Counters; every submitted observation ends in `delivered`, `rejected`, `refused`, `dropped`
    or (while the backend is down) `spooled`. `fields_dropped` counts fields left out of events
    that were still sent. Reasons are codes, never accounts or keys."""

    submitted: int = 0
    delivered: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # refused by the backend, by reason
    refused: Counter[str] = field(default_factory=Counter)  # not sendable, refused here, by reason
    dropped: Counter[str] = field(default_factory=Counter)  # lost: buffer full, backend down, spool full
    fields_dropped: Counter[str] = field(default_factory=Counter)  # "<field>:<reason>"
    spooled: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "submitted": self.submitted,
            "delivered": self.delivered,
            "rejected": dict(self.rejected),
            "refused": dict(self.refused),
            "dropped": dict(self.dropped),
            "fields_dropped": dict(self.fields_dropped),
            "spooled": self.spooled,
        }


class EventSender:
    """Thread-safe. Starts its thread on the first `submit`; `close` sends what is left."""

    def __init__(self, transport: Transport, key_secret: bytes, settings: SenderSettings | None = None) -> None:
        self.transport = transport
        self.key_secret = key_secret
        self.settings = settings or SenderSettings()
        self.stats = SenderStats()
        self._queue: deque[tuple[ObservedRequest, int]] = deque()
        self._queued_bytes = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_at = 0.0
        self._backoff_s = 0.5
        if self.settings.spool_dir is not None:
            self.settings.spool_dir.mkdir(parents=True, exist_ok=True)

    # --- the gateway's side: must never block ---

    def submit(self, request: ObservedRequest) -> bool:
        """Queue one observation; False when it was dropped because the buffer is full."""
        cost = OBSERVATION_OVERHEAD_BYTES + (len(request.prompt) if request.prompt else 0)
        with self._lock:
            self.stats.submitted += 1
            if self._closing.is_set() or self._queued_bytes + cost > self.settings.max_buffered_bytes:
                self.stats.dropped["buffer_full" if not self._closing.is_set() else "closed"] += 1
                return False
            self._queue.append((request, cost))
            self._queued_bytes += cost
            full = len(self._queue) >= self.settings.batch_max_events
        if self._thread is None:
            self._start()
        if full:
            self._wake.set()
        return True

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="extractguard-sender", daemon=True)
                self._thread.start()

    # --- the sender's thread ---

    def _take(self) -> list[ObservedRequest]:
        with self._lock:
            batch: list[ObservedRequest] = []
            while self._queue and len(batch) < self.settings.batch_max_events:
                request, cost = self._queue.popleft()
                self._queued_bytes -= cost
                batch.append(request)
            return batch

    def _run(self) -> None:
        linger = self.settings.linger_ms / 1000
        while True:
            closing = self._closing.is_set()
            self._wake.wait(linger)
            self._wake.clear()
            while True:
                requests = self._take()
                if requests:
                    self._send(self._encode(requests))
                if len(self._queue) < self.settings.batch_max_events:
                    break
            self._drain_spool()
            if closing and not self._queue:
                return

    def _encode(self, requests: list[ObservedRequest]) -> list[bytes]:
        lines = []
        for request in requests:
            try:
                built = build(request, self.key_secret)
            except InvalidEvent as error:
                self.stats.refused[f"{error.field or 'event'}:{error.code}"] += 1
                continue
            except Exception as error:  # an adapter's observation the builder cannot use at all
                self.stats.refused[f"event:{type(error).__name__}"] += 1
                continue
            for name, reason in built.dropped:
                self.stats.fields_dropped[f"{name}:{reason}"] += 1
            lines.append(json.dumps(built.event, separators=(",", ":"), ensure_ascii=False).encode())
        return lines

    def _deliver(self, lines: list[bytes]) -> bool:
        """Send one batch; False when the backend is unavailable (the caller keeps the batch)."""
        if time.monotonic() < self._retry_at:
            return False
        try:
            delivery = self.transport.send(lines)
        except TransportUnavailable as error:
            log.warning("extractguard backend unavailable: %s", error)
            self._retry_at = time.monotonic() + self._backoff_s
            self._backoff_s = min(self._backoff_s * 2, self.settings.retry_max_s)
            return False
        except Exception as error:
            log.error("extractguard batch refused: %s", error)
            self.stats.dropped[f"transport:{type(error).__name__}"] += len(lines)
            return True
        self._retry_at, self._backoff_s = 0.0, 0.5
        self.stats.delivered += delivery.accepted
        for reason in delivery.rejected:
            self.stats.rejected[reason] += 1
        return True

    def _send(self, lines: list[bytes]) -> None:
        if not lines or self._deliver(lines):
            return
        if self.settings.spool_dir is None:
            self.stats.dropped["backend_unavailable"] += len(lines)
            return
        body = b"\n".join(lines)
        if self._spool_bytes() + len(body) > self.settings.spool_max_bytes:
            self.stats.dropped["spool_full"] += len(lines)
            return
        path = self.settings.spool_dir / f"{time.time_ns():020d}.ndjson"
        path.with_suffix(".part").write_bytes(body)
        path.with_suffix(".part").rename(path)  # whole files only: a crash leaves no half batch
        self.stats.spooled += len(lines)

    def _spool_bytes(self) -> int:
        assert self.settings.spool_dir is not None
        return sum(p.stat().st_size for p in self.settings.spool_dir.glob("*.ndjson"))

    def _drain_spool(self) -> None:
        if self.settings.spool_dir is None:
            return
        for path in sorted(self.settings.spool_dir.glob("*.ndjson")):
            lines = [line for line in path.read_bytes().split(b"\n") if line]
            if not self._deliver(lines):
                return
            path.unlink()
            self.stats.spooled -= len(lines)

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait (up to `timeout_s`) until what was submitted so far has been handled. Not for the
        request path: for shutdown and tests."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                idle = not self._queue and self._idle_handled()
            if idle:
                return
            self._wake.set()
            time.sleep(0.02)

    def _idle_handled(self) -> bool:
        s = self.stats
        handled = s.delivered + sum(s.rejected.values()) + sum(s.refused.values()) + sum(s.dropped.values())
        return handled + s.spooled >= s.submitted

    def close(self, timeout_s: float = 10.0) -> None:
        """Send what is buffered (up to `timeout_s`), then stop the thread and the transport."""
        self.flush(timeout_s)
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.transport.close()
