"""One partition's detection state: its windows and its detectors, checkpointable as bytes.

The Faust agent keeps one engine per assigned partition of `gateway.events`. Because events are
partitioned by account, every account's windows live in exactly one engine. The engine remembers
the offset of the last envelope it processed, so a restored checkpoint says exactly which part of
the partition it already holds.
"""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Iterable
from sys import intern
from typing import Any

from extractguard.contracts.link_activity import Census, Share
from extractguard.contracts.subjects import subject_of
from extractguard.detection.behaviour import AccountBehaviour
from extractguard.detection.detectors import Detector, ExtractionDetector
from extractguard.detection.detectors import build as build_detectors
from extractguard.detection.detectors.extraction import VerdictSource
from extractguard.detection.link_activity import LinkActivity
from extractguard.detection.windows import EntityWindows
from extractguard.settings import DetectionSettings

# Bumped when the pickled layout changes; an old checkpoint is then discarded, not misread.
CHECKPOINT_FORMAT = 12


class DetectionEngine:
    def __init__(self, settings: DetectionSettings) -> None:
        self.windows = EntityWindows(settings.window_s * 1000, settings.allowed_lateness_s * 1000)
        # One view of each account's behaviour, shared by the detectors that judge by it.
        self.behaviour = AccountBehaviour(horizons_s=tuple(settings.behaviour_horizons_s))
        self.detectors: list[Detector] = build_detectors(settings.detectors, settings, self.behaviour)
        # Fingerprint shares of each closed window, for the campaign linker (taken by the worker).
        self.activity = LinkActivity(settings.window_s * 1000) if settings.link_accounts else None
        self.link_shares: list[tuple[int, int, list[Share], Census]] = []
        self.link_score_factor = settings.link_score_factor
        self.link_min_requests = settings.link_min_requests
        self.link_request_shape = settings.link_request_shape
        self.events_seen = 0
        self.windows_closed = 0
        self.last_offset = -1

    def process(
        self, events: Iterable[dict[str, Any]], partition: int, offset: int | None = None
    ) -> list[dict[str, Any]]:
        """Feed validated events in order; returns the detections of every window they closed.

        `offset` is the Kafka offset of the envelope the events came in, when there is one.
        """
        detections: list[dict[str, Any]] = []
        detectors = self.detectors
        add = self.windows.add
        learn = self.behaviour.learn_event
        activity = self.activity
        for event in events:
            self.events_seen += 1
            # Judged per subject: the account, or the end user behind it when the gateway passes one
            # (see contracts.subjects). Every event brings its own copy of the id; the state keeps
            # it in several places (tallies, windows, sets), and one shared copy saves ~60 bytes each.
            event["account_id"] = intern(subject_of(event))
            shape = learn(event)
            for detector in detectors:
                detector.learn_event(event)
            if activity is not None:
                activity.add(event, self.windows.closed_until_ms, shape)
            for window in add(event):
                self.windows_closed += 1
                for detector in detectors:
                    for finding in detector.update(window):
                        detections.append(finding.to_detection(partition, self.windows.watermark_ms))
                if activity is not None:
                    shares = activity.shares(window, self.leaning, self.behaviour.cadence)
                    self.link_shares.append((window.start_ms, window.end_ms, *shares))
        if offset is not None:
            self.last_offset = offset
        self.behaviour.forget_idle()
        return detections

    def leaning(self, account: str, request_shape: float) -> bool:
        """Whether linking counts the account as extraction-shaped in a window: by its behaviour at
        some horizon when it has requests enough to be judged, else by the shape of its requests in
        the window (a faint account's one vote; the linker's base rate counts such votes too)."""
        leans = self.behaviour.leans(account, self.link_score_factor, self.link_min_requests)
        if leans is None:
            return request_shape >= self.link_request_shape
        return leans

    def take_link_shares(self) -> list[tuple[int, int, list[Share], Census]]:
        taken, self.link_shares = self.link_shares, []
        return taken

    def attach_verdicts(self, verdicts: VerdictSource) -> None:
        """Let the detectors that learn from verdicts read them (they are not part of the checkpoint)."""
        for detector in self.detectors:
            if isinstance(detector, ExtractionDetector):
                detector.verdicts = verdicts

    def checkpoint(self) -> bytes:
        return zlib.compress(pickle.dumps((CHECKPOINT_FORMAT, self), protocol=pickle.HIGHEST_PROTOCOL), 1)

    @staticmethod
    def restore(blob: bytes, settings: DetectionSettings) -> DetectionEngine:
        # Checkpoints come from our own changelog topic, never from outside input.
        fmt, engine = pickle.loads(zlib.decompress(blob))
        if fmt != CHECKPOINT_FORMAT or not isinstance(engine, DetectionEngine):
            return DetectionEngine(settings)
        return engine
