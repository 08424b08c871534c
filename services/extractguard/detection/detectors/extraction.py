"""Extraction behaviour: accounts whose way of using the model is harvesting-shaped.

Every closed window, each account active in it is scored by `AccountBehaviour` (the tells of
extraction over a decayed horizon). An account at or above the calibrated threshold is a finding;
while it stays there it is reported again at most every `repeat_windows` windows, so an hour of
harvesting is a handful of findings, not sixty. Verdicts on accounts (the `account.labels` topic, see
`verdicts`) teach a River model how the tells weigh; once it has learnt from both kinds, its
probability is blended into the score. The evidence lists every tell with its value and
the benign baseline (the prior an unknown account is assumed to have), the score against the
threshold, and the false alarms per day expected at that threshold on the benign reference.

>>> from extractguard.detection.windows import ClosedWindow, EntityStats
>>> detector = ExtractionDetector()
>>> harvest = {"account_id": "x1", "account_created_ms": 0, "turn_index": 0, "output_tokens": 4000,
...            "input_tokens": 120, "request_logprobs": True, "prompt_sketch": {"cot_elicitation": True}}
>>> for i in range(12): detector.learn_event({**harvest, "event_time_ms": 3_600_000 + i * 5_000})
>>> window = ClosedWindow(3_600_000, 3_660_000, {("account", "x1"): EntityStats(requests=12)}, 12)
>>> [(f.entity, f.severity) for f in detector.update(window)]
[('x1', 'critical')]
>>> detector.update(ClosedWindow(3_660_000, 3_720_000, {("account", "x1"): EntityStats(requests=1)}, 1))
[]
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from extractguard.contracts.findings import Feature, Finding, Severity
from extractguard.detection.behaviour import PRIORS, TELLS, WEIGHTS, AccountBehaviour
from extractguard.detection.detectors.registry import DetectorContext, register
from extractguard.detection.verdicts import VerdictModel
from extractguard.detection.windows import ClosedWindow


class VerdictSource(Protocol):
    def get(self, account: str) -> bool | None: ...


class ExtractionDetector:
    name: ClassVar[str] = "extraction"
    version: ClassVar[str] = "1"

    def __init__(
        self, behaviour: AccountBehaviour | None = None, repeat_windows: int = 30, critical_score: float = 0.75
    ) -> None:
        # Given a behaviour, the engine that shares it feeds it; without one, this detector owns
        # and feeds its own, so it can also run alone.
        self.owns_behaviour = behaviour is None
        self.behaviour = behaviour if behaviour is not None else AccountBehaviour()
        self.repeat_windows = repeat_windows
        self.critical_score = critical_score
        self.reported: dict[str, int] = {}  # account -> window index of its last finding
        self.windows_seen = 0
        self.model = VerdictModel()
        self.verdicts: VerdictSource | None = None  # attached by the worker; not part of the state

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["verdicts"] = None  # rebuilt from the labels topic, never checkpointed
        return state

    def score(self, base: float, tells: dict[str, float] | None) -> float:
        """The unsupervised score, blended half and half with what verdicts taught, once they taught enough."""
        if tells is None or not self.model.ready():
            return base
        return 0.5 * base + 0.5 * self.model.proba(tells)

    def learn_event(self, event: dict[str, Any]) -> None:
        if self.owns_behaviour:
            self.behaviour.learn_event(event)

    def update(self, window: ClosedWindow) -> list[Finding]:
        behaviour = self.behaviour
        findings = []
        for account, stats in window.of_kind("account").items():
            judged = behaviour.evaluate(account, window.end_ms)
            if judged is None:
                continue
            base, horizon = judged
            threshold = behaviour.threshold(horizon)
            verdict = self.verdicts.get(account) if self.verdicts is not None else None
            # The tells only when a verdict teaches from them or the taught model reads them.
            tells = behaviour.tells(account, horizon) if verdict is not None or self.model.ready() else None
            if verdict is not None and tells is not None:
                self.model.learn(tells, verdict)
            score = self.score(base, tells)
            if score < threshold:
                continue
            last = self.reported.get(account)
            if last is not None and self.windows_seen - last < self.repeat_windows:
                continue
            self.reported[account] = self.windows_seen
            findings.append(self._finding(window, account, score, threshold, horizon, stats.requests))
        self.windows_seen += 1
        if self.windows_seen % 64 == 0:
            self.reported = {a: w for a, w in self.reported.items() if self.windows_seen - w < self.repeat_windows}
        return findings

    def _finding(
        self, window: ClosedWindow, account: str, score: float, threshold: float, horizon: int, in_window: int
    ) -> Finding:
        behaviour = self.behaviour
        tells = behaviour.tells(account, horizon)
        recent = behaviour.requests(account, horizon)
        horizon_s = behaviour.half_lives_ms[horizon] // 1000
        top = sorted(TELLS, key=lambda t: WEIGHTS[t] * tells[t], reverse=True)
        severity: Severity = "critical" if score >= self.critical_score else "warning"
        described = ", ".join(f"{t.replace('_', ' ')} {tells[t]:.0%}" for t in top[:4])
        return Finding(
            detector=self.name,
            detector_version=self.version,
            entity_kind="account",
            entity=account,
            score=score,
            threshold=threshold,
            window_start_ms=window.start_ms,
            window_end_ms=window.end_ms,
            severity=severity,
            summary=(
                f"account {account}: extraction-shaped use (score {score:.2f} >= {threshold:.2f}): {described}; "
                f"{recent:.0f} recent requests (half-life {_duration(horizon_s)}), "
                f"output/input {behaviour.output_ratio(account):.1f}"
            ),
            features=[
                *(Feature(t, tells[t], PRIORS[t]) for t in top),
                Feature("recent_requests", recent),
                Feature("horizon_s", horizon_s),
                Feature("requests_in_window", in_window),
                Feature("output_input_ratio", behaviour.output_ratio(account)),
            ],
            accounts=[account],
            expected_false_alarms_per_day=behaviour.expected_false_alarms_per_day(),
        )


def _duration(seconds: int) -> str:
    """
    >>> _duration(3600), _duration(86_400), _duration(604_800), _duration(90)
    ('1 h', '1 d', '7 d', '90 s')
    """
    if seconds >= 86_400 and seconds % 86_400 == 0:
        return f"{seconds // 86_400} d"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds} s"


@register("extraction")
def _build(context: DetectorContext) -> ExtractionDetector:
    return ExtractionDetector(context.behaviour)
