"""Release-aware: after a model launch, who moves to it in lockstep.

A launch is announced to the engine (`EXTRACTGUARD_DETECT_LAUNCHES`: model and time). For
`grace_s` after it, the surge of traffic on the new model is expected — the burst detector records
it as `info`, never as a page — and this detector watches each account's share of requests on the
new model (decayed, half-life `half_life_s`) against the population's (established accounts'). Organic users adopt a new
model gradually and partially; a campaign pivots a fixed share of every account's traffic at once.
An account *moves* when it has sent at least `min_requests` to the new model and its share is at
least `lift` times the population's (and at least `min_share`). Movers are reported together once
there are `min_movers` of them not yet reported: one finding per cohort, naming its accounts.
Severity is `warning` when most movers are extraction-shaped or the cohort is large
(`min_movers * 3`), else `info`.

>>> launch = LaunchDetector([("m-new", 0)], min_movers=3, lift=3)
>>> from extractguard.detection.windows import ClosedWindow
>>> for i in range(300):  # 300 organic requests, 5% on the new model
...     launch.learn_event({"event_time_ms": i * 100, "account_id": f"o{i % 50}",
...                         "request_model": "m-new" if i % 20 == 0 else "m-old"})
>>> for i in range(80):  # 4 accounts sending half their traffic to it
...     launch.learn_event({"event_time_ms": 30_000 + i * 100, "account_id": f"c{i % 4}",
...                         "request_model": "m-new" if i % 8 < 4 else "m-old"})
>>> [(f.entity, sorted(f.accounts)) for f in launch.update(ClosedWindow(0, 60_000, {}, 340))]
[('m-new', ['c0', 'c1', 'c2', 'c3'])]
"""

from __future__ import annotations

from typing import Any, ClassVar

from extractguard.contracts.findings import Feature, Finding, Severity
from extractguard.detection.behaviour import DAY_MS, AccountBehaviour
from extractguard.detection.detectors.registry import DetectorContext, register
from extractguard.detection.windows import ClosedWindow


class _Launch:
    __slots__ = ("accounts", "at_ms", "model", "new", "reported", "total", "until_ms")

    def __init__(self, model: str, at_ms: int, grace_ms: int) -> None:
        self.model = model
        self.at_ms = at_ms
        self.until_ms = at_ms + grace_ms
        self.new = 0.0  # population: requests on the new model, all requests (decayed)
        self.total = 0.0
        self.accounts: dict[str, list[float]] = {}  # account -> [on new model, all, last event ms]
        self.reported: set[str] = set()


class LaunchDetector:
    name: ClassVar[str] = "launch"
    version: ClassVar[str] = "1"

    def __init__(
        self,
        launches: list[tuple[str, int]],
        grace_s: float = 6 * 3600,
        half_life_s: float = 1800,
        min_requests: int = 5,
        min_share: float = 0.3,
        lift: float = 5.0,
        min_movers: int = 10,
        behaviour: AccountBehaviour | None = None,
    ) -> None:
        self.launches = [_Launch(model, at_ms, int(grace_s * 1000)) for model, at_ms in launches]
        self.half_life_ms = half_life_s * 1000
        self.min_requests = min_requests
        self.min_share = min_share
        self.lift = lift
        self.min_movers = min_movers
        self.behaviour = behaviour
        self.benign_cohorts = 0
        self.watermark_ms = 0

    def expected_surge(self, model: str, ts: int) -> bool:
        """Whether traffic on `model` at `ts` is the surge that follows its launch."""
        return any(launch.model == model and launch.at_ms <= ts < launch.until_ms for launch in self.launches)

    def learn_event(self, event: dict[str, Any]) -> None:
        ts = event["event_time_ms"]
        if ts > self.watermark_ms:
            self.watermark_ms = ts
        for launch in self.launches:
            if not launch.at_ms <= ts < launch.until_ms:
                continue
            on_new = 1.0 if event["request_model"] == launch.model else 0.0
            # The population's adoption, from established accounts when the behaviour view can tell
            # them: a campaign's own pivot must not raise the bar it is measured against.
            if self.behaviour is None or self.behaviour.is_reference(event["account_id"], ts):
                launch.new += on_new
                launch.total += 1.0
            tally = launch.accounts.get(event["account_id"])
            if tally is None:
                launch.accounts[event["account_id"]] = [on_new, 1.0, ts]
                continue
            factor = 0.5 ** ((ts - tally[2]) / self.half_life_ms)
            tally[0] = tally[0] * factor + on_new
            tally[1] = tally[1] * factor + 1.0
            tally[2] = ts

    def update(self, window: ClosedWindow) -> list[Finding]:
        findings = []
        for launch in self.launches:
            if window.start_ms >= launch.until_ms and launch.accounts:
                launch.accounts = {}  # the grace period is over: nothing more to watch
            if window.end_ms <= launch.at_ms or window.start_ms >= launch.until_ms or launch.total <= 0:
                continue
            adoption = launch.new / launch.total
            bar = max(self.min_share, self.lift * adoption)
            movers = [
                account
                for account, (new, total, _last) in launch.accounts.items()
                if account not in launch.reported and new >= self.min_requests and new / total >= bar
            ]
            if len(movers) >= self.min_movers:
                launch.reported.update(movers)
                findings.append(self._finding(window, launch, movers, adoption, bar))
        return findings

    def _finding(
        self, window: ClosedWindow, launch: _Launch, movers: list[str], adoption: float, bar: float
    ) -> Finding:
        shaped = len(self.behaviour.shaped(set(movers))) / len(movers) if self.behaviour is not None else 0.0
        severity: Severity = "warning" if shaped >= 0.5 or len(movers) >= 3 * self.min_movers else "info"
        if severity == "info":
            self.benign_cohorts += 1
        shares = [launch.accounts[a][0] / launch.accounts[a][1] for a in movers]
        elapsed = max(window.end_ms - launch.at_ms, 3_600_000)
        return Finding(
            detector=self.name,
            detector_version=self.version,
            entity_kind="model",
            entity=launch.model,
            score=sum(shares) / len(shares) / max(adoption, 1e-6),
            threshold=self.lift,
            window_start_ms=window.start_ms,
            window_end_ms=window.end_ms,
            severity=severity,
            summary=(
                f"{len(movers)} accounts moved {sum(shares) / len(shares):.0%} of their traffic to {launch.model} "
                f"within {(window.end_ms - launch.at_ms) / 3_600_000:.1f} h of its launch, where the population "
                f"moved {adoption:.1%}; {shaped:.0%} of them extraction-shaped"
            ),
            features=[
                Feature("movers", len(movers), self.min_movers),
                Feature("mover_share_on_new_model", sum(shares) / len(shares), adoption),
                Feature("share_bar", bar),
                Feature("extraction_shaped_share", shaped),
            ],
            accounts=movers,
            expected_false_alarms_per_day=round(self.benign_cohorts * DAY_MS / elapsed, 3),
        )


@register("launch")
def _build(context: DetectorContext) -> LaunchDetector:
    settings = context.settings
    return LaunchDetector(
        [(launch.model, launch.at_ms) for launch in settings.launches],
        grace_s=settings.launch_grace_s,
        behaviour=context.behaviour,
    )
