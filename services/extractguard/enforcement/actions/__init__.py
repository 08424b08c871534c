"""The registry of enforcement actions: every module of this package is imported and registers its
action (`base.register`), so adding an action is adding a module; nothing else names them.

>>> sorted(REGISTRY)
['challenge', 'observe', 'protect_reasoning', 'suspend', 'throttle', 'watermark_canary']
"""

from __future__ import annotations

import importlib
import pkgutil

from extractguard.enforcement.actions.base import Action, Binding, Params, registry

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

REGISTRY = registry()


class UnknownAction(ValueError):
    pass


def action(name: str) -> Action:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownAction(f"unknown action {name!r}; the actions are {sorted(REGISTRY)}") from None


__all__ = ["REGISTRY", "Action", "Binding", "Params", "UnknownAction", "action"]
