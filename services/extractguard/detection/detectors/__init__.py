"""Detectors: one small protocol (`base.Detector`), one module per detector, found through
`registry`: importing a detector's module registers it (the burst detector imports the launch
detector, which so registers and is built first)."""

from extractguard.detection.detectors.base import Detector
from extractguard.detection.detectors.burst import BurstDetector
from extractguard.detection.detectors.drift import MixDriftDetector
from extractguard.detection.detectors.extraction import ExtractionDetector
from extractguard.detection.detectors.launch import LaunchDetector
from extractguard.detection.detectors.registry import build, registered

__all__ = [
    "BurstDetector",
    "Detector",
    "ExtractionDetector",
    "LaunchDetector",
    "MixDriftDetector",
    "build",
    "registered",
]
