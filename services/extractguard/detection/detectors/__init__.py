"""Detectors: one small protocol (`base.Detector`), one module per detector."""

from extractguard.detection.detectors.base import Detector
from extractguard.detection.detectors.burst import BurstDetector
from extractguard.detection.detectors.drift import MixDriftDetector
from extractguard.detection.detectors.extraction import ExtractionDetector
from extractguard.detection.detectors.launch import LaunchDetector

__all__ = ["BurstDetector", "Detector", "ExtractionDetector", "LaunchDetector", "MixDriftDetector"]
