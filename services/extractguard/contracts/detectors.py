"""The detectors whose findings travel on `detections`: the names alert rules may refer to.

Declared here, below every stage, so the alerter can check its rules at start without importing
the detection stage; a test holds the detection registry to this list.
"""

from __future__ import annotations

#: Detectors of the detection workers, in the order they are built.
STREAM_DETECTORS: tuple[str, ...] = ("launch", "burst", "mix_drift", "extraction")
#: The campaign resolver's detections.
CAMPAIGN_DETECTOR = "campaign"
DETECTORS: frozenset[str] = frozenset({*STREAM_DETECTORS, CAMPAIGN_DETECTOR})
