"""Where detectors are found: each detector module registers how to build itself, once.

The engine builds the detectors the settings name (`EXTRACTGUARD_DETECT_DETECTORS`, every
registered one by default), in registration order, each from a `DetectorContext`: the settings,
the partition's shared behaviour view and the detectors built so far (the burst detector reads the
launch detector's expected surges). Adding a detector is one module that calls `register` and one
import line in `detectors/__init__.py`; the contract test (`tests/unit/test_detector_contract.py`)
runs over every name registered here, and each name must be declared in `contracts.detectors`
so that alert rules naming it can be checked without importing detection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from extractguard.detection.behaviour import AccountBehaviour
from extractguard.detection.detectors.base import Detector
from extractguard.settings import DetectionSettings

D = TypeVar("D", bound=Detector)


@dataclass(slots=True)
class DetectorContext:
    settings: DetectionSettings
    behaviour: AccountBehaviour
    built: dict[str, Detector] = field(default_factory=dict)

    def get(self, name: str, kind: type[D]) -> D | None:
        """A detector built before this one, when the settings enabled it."""
        found = self.built.get(name)
        return found if isinstance(found, kind) else None


Factory = Callable[[DetectorContext], Detector]
_FACTORIES: dict[str, Factory] = {}


class UnknownDetector(ValueError):
    pass


def register(name: str) -> Callable[[Factory], Factory]:
    """Register a detector's factory under its name (the `name` of the detector it builds)."""

    def decorate(factory: Factory) -> Factory:
        if name in _FACTORIES:
            raise ValueError(f"detector {name!r} is registered twice")
        _FACTORIES[name] = factory
        return factory

    return decorate


def registered() -> tuple[str, ...]:
    """Every registered detector's name, in the order they are built."""
    return tuple(_FACTORIES)


def build(names: list[str] | None, settings: DetectionSettings, behaviour: AccountBehaviour) -> list[Detector]:
    """The named detectors (every registered one when `names` is None), built in registration order."""
    wanted = list(registered()) if names is None else names
    unknown = sorted(set(wanted) - set(_FACTORIES))
    if unknown:
        raise UnknownDetector(f"unknown detectors {unknown}; registered: {list(registered())}")
    context = DetectorContext(settings, behaviour)
    for name in registered():
        if name in wanted:
            detector = _FACTORIES[name](context)
            if detector.name != name:
                raise ValueError(f"the factory registered as {name!r} built a {detector.name!r} detector")
            context.built[name] = detector
    return list(context.built.values())
