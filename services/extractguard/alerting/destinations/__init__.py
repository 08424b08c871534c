"""The registry of on-call destinations: configuration's `kind` names the module.

>>> sorted(REGISTRY)
['alertmanager', 'pagerduty', 'slack', 'webhook']
>>> build_destination({"kind": "slack", "url": "http://127.0.0.1:9/x"}, None).name
'slack'
"""

from __future__ import annotations

from typing import Any

from extractguard.alerting.destination import Destination, DestinationConfig
from extractguard.alerting.destinations import alertmanager, pagerduty, slack, webhook

REGISTRY: dict[str, type[DestinationConfig]] = {
    module.KIND: module.Config for module in (webhook, alertmanager, pagerduty, slack)
}


class UnknownDestination(ValueError):
    pass


def build_destination(config: dict[str, Any], case_base_url: str | None) -> Destination:
    kind = config.get("kind")
    model = REGISTRY.get(str(kind))
    if model is None:
        raise UnknownDestination(f"destination kind {kind!r} is not one of {sorted(REGISTRY)}")
    return model.model_validate(config).build(case_base_url)
