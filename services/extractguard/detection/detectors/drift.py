"""Mix drift: the extraction-shaped share of the traffic moves, overall or on one model.

Per scope — all traffic, and each model on its own — River detectors watch every event:
ADWIN for the shares (requests asking for logprobs, prompts eliciting step-by-step reasoning,
requests from accounts less than a week old),
Page-Hinkley for the output/input token ratio (log-scaled), which rises when answers are
harvested, and KSWIN for the prompt-template mix of all traffic: each closed window's template
mix is compared with a decayed baseline mix (Jensen-Shannon divergence, 0 = same mix, 1 = no
template in common) and KSWIN tests whether the recent divergences come from another distribution
than the last hour's. The template mix stands in for the capability-topic mix: a sweep through a
capability list sends its mass to templates the traffic did not use. KSWIN runs a two-sample KS
test on every update (~0.6 ms), so it gets one value per window, not one per event; it sees a
new mix within about ten windows (its `stat_size`), a slow signal beside the per-event ones.

A detector flags a change when its test says so; the size of the change is then measured as the
value in the window where it was noticed against the level just before (a slow mean, ~1,000 events),
and reported only when it is also large in absolute terms (`min_effect`, in the statistic's own
units): on a busy stream the tests can prove changes too small to matter.

The finding names the accounts that drove the shift in the window where it was seen: those whose
behaviour is extraction-shaped (and, for the global shares, that used the statistic in at least
half their requests). A shift with fewer than `min_drivers` such accounts is recorded as `info` (a
benchmark run or a launch moves the mix too); the rate of those per day is the false-alarm figure
it states.

>>> from extractguard.detection.windows import ClosedWindow, EntityStats
>>> drift = MixDriftDetector(min_effect=0.1, min_drivers=1)
>>> quiet = {"event_time_ms": 1_000, "request_logprobs": False, "prompt_sketch": {}, "request_model": "m",
...          "input_tokens": 100, "output_tokens": 100}
>>> for _ in range(3000): drift.learn_event(quiet)
>>> drift.update(ClosedWindow(0, 60_000, {("account", "a1"): EntityStats(requests=3000)}, 3000))
[]
>>> harvest = {**quiet, "event_time_ms": 61_000, "request_logprobs": True}
>>> for _ in range(1000): drift.learn_event(harvest)
>>> window = ClosedWindow(60_000, 120_000, {("account", "x1"): EntityStats(requests=1000, logprobs=1000),
...                                         ("model", "m"): EntityStats(requests=1000, logprobs=1000,
...                                                                     accounts={"x1"})}, 1000)
>>> sorted((f.entity_kind, f.entity, f.accounts) for f in drift.update(window))
[('global', 'logprobs_share', ['x1']), ('model', 'm/logprobs_share', ['x1'])]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

from river import drift

from extractguard.contracts.findings import BenignRate, Feature, Finding, Severity
from extractguard.detection.behaviour import AccountBehaviour
from extractguard.detection.detectors.registry import DetectorContext, register
from extractguard.detection.windows import YOUNG_ACCOUNT_MS, ClosedWindow, EntityStats

GLOBAL = ""
#: Share statistics: per event 0 or 1, per window stats a count.
SHARES: dict[str, tuple[Callable[[dict[str, Any]], bool], Callable[[EntityStats], int]]] = {
    "logprobs_share": (lambda e: bool(e["request_logprobs"]), lambda s: s.logprobs),
    "cot_elicitation_share": (
        lambda e: bool((e.get("prompt_sketch") or {}).get("cot_elicitation", False)),
        lambda s: s.cot,
    ),
    "new_account_share": (
        lambda e: (
            e.get("account_created_ms") is not None and e["event_time_ms"] - e["account_created_ms"] < YOUNG_ACCOUNT_MS
        ),
        lambda s: s.young,
    ),
}
OUTPUT_RATIO = "output_ratio"
TOPIC_MIX = "template_mix_divergence"
MIX_WARMUP_WINDOWS = 20
MIX_TEMPLATES = 5000  # templates kept in the baseline mix (up to twice as many between prunings)
MAX_MODELS = 64  # scopes beyond this many models are not tracked (model names come from clients)


def _log_ratio(output_tokens: float, input_tokens: float) -> float:
    return math.log1p(output_tokens / max(input_tokens, 1.0))


class MixDriftDetector:
    name: ClassVar[str] = "mix_drift"
    version: ClassVar[str] = "3"

    def __init__(
        self,
        delta: float = 0.002,
        min_effect: float = 0.05,
        account_min_share: float = 0.5,
        behaviour: AccountBehaviour | None = None,
        min_drivers: int = 3,
        ratio_min_effect: float = 0.5,
        ratio_threshold: float = 50.0,
        mix_min_effect: float = 0.15,
        mix_alpha: float = 0.0001,
    ) -> None:
        self.behaviour = behaviour
        self.min_drivers = min_drivers
        self.benign = BenignRate()  # findings on non-extraction-shaped traffic: the false-alarm rate
        self.delta = delta
        self.min_effect = min_effect
        self.ratio_min_effect = ratio_min_effect
        self.ratio_threshold = ratio_threshold
        self.account_min_share = account_min_share
        # (statistic, scope) -> River detector; scope "" is all traffic, else a model's name.
        self.shares: dict[tuple[str, str], drift.ADWIN] = {}
        self.ratios: dict[str, drift.PageHinkley] = {}
        self.ratio_means: dict[str, float] = {}
        self.share_levels: dict[tuple[str, str], float] = {}  # slow means: the level before a change
        self.mix_min_effect = mix_min_effect
        # The template mix of the last hour or so (per window, 5% of the new window's mix comes in)
        # and a slow mean of the divergences, the level before a change.
        self.mix_baseline: dict[str, float] = {}
        self.mix_scale = 1.0  # the baseline's values are its shares times this (lazy decay)
        self.mix_total = 0.0  # the sum of the baseline's values
        self.mix_divergence_mean: float | None = None
        self.mix_windows = 0
        self.mix_test = drift.KSWIN(alpha=mix_alpha, window_size=40, stat_size=10, seed=42)
        # (statistic, scope) -> (estimate before the change, event time at which it was flagged)
        self.pending: dict[tuple[str, str], tuple[float, int]] = {}
        self._scope(GLOBAL)

    def _scope(self, scope: str) -> bool:
        if scope in self.ratios:
            return True
        if len(self.ratios) > MAX_MODELS:
            return False
        for name in SHARES:
            self.shares[(name, scope)] = drift.ADWIN(delta=self.delta)
        self.ratios[scope] = drift.PageHinkley(min_instances=200, delta=0.05, threshold=self.ratio_threshold, mode="up")
        self.ratio_means[scope] = 0.0
        return True

    def learn_event(self, event: dict[str, Any]) -> None:
        # The hot path: each statistic is computed once per event, not once per scope, and the level
        # before a change is a slow mean kept here (reading ADWIN's estimate costs more than its update).
        ts = event["event_time_ms"]
        values = [statistic(event) for statistic, _count in SHARES.values()]
        ratio = _log_ratio(event["output_tokens"], event["input_tokens"])
        model = event.get("request_model")
        levels, pending = self.share_levels, self.pending
        for scope in (GLOBAL, model) if model else (GLOBAL,):
            if scope not in self.ratios and not self._scope(scope):
                continue
            for name, x in zip(SHARES, values, strict=True):
                key = (name, scope)
                detector = self.shares[key]
                detector.update(x)
                level = levels.get(key)
                levels[key] = x if level is None else level + 0.001 * (x - level)
                if detector.drift_detected and key not in pending:
                    pending[key] = (x if level is None else level, ts)
            page_hinkley = self.ratios[scope]
            before = self.ratio_means[scope]
            page_hinkley.update(ratio)
            # A slow mean of the log ratio: the level before a change, for the size of the change.
            self.ratio_means[scope] = before + 0.001 * (ratio - before) if before else ratio
            if page_hinkley.drift_detected and (OUTPUT_RATIO, scope) not in pending:
                pending[(OUTPUT_RATIO, scope)] = (math.expm1(before), ts)

    def _value(self, window: ClosedWindow, name: str, scope: str) -> float | None:
        if scope == GLOBAL:
            accounts = list(window.of_kind("account").values())
            requests = window.requests
        else:
            stats = window.of_kind("model").get(scope)
            accounts = [stats] if stats is not None else []
            requests = stats.requests if stats is not None else 0
        if not requests:
            return None
        if name == OUTPUT_RATIO:
            out, inp = sum(s.output_tokens for s in accounts), sum(s.input_tokens for s in accounts)
            return out / max(inp, 1)
        count = SHARES[name][1]
        return sum(count(s) for s in accounts) / requests

    def _mix_shift(self, window: ClosedWindow) -> Finding | None:
        counts = {template: stats.requests for template, stats in window.of_kind("template").items()}
        total = sum(counts.values())
        if not total:
            return None
        mix = {template: n / total for template, n in counts.items()}
        baseline = self.mix_baseline
        finding = None
        self.mix_windows += 1
        if self.mix_windows > MIX_WARMUP_WINDOWS:  # until then the baseline is still mostly empty
            divergence = _jensen_shannon(mix, baseline, self.mix_total)
            before = self.mix_divergence_mean
            self.mix_test.update(divergence)
            if self.mix_test.drift_detected and before is not None and divergence - before >= self.mix_min_effect:
                finding = self._finding(window, TOPIC_MIX, GLOBAL, before, divergence)
            self.mix_divergence_mean = divergence if before is None else before + 0.02 * (divergence - before)
        # Decay is lazy: rather than multiplying every kept template by 0.95 each window (thousands
        # of them, each window), new mass is added scaled up by 1/0.95 per window; the baseline is
        # only ever read normalised. Rescaled before the numbers grow large.
        self.mix_scale /= 0.95
        for template, share in mix.items():
            baseline[template] = baseline.get(template, 0.0) + 0.05 * share * self.mix_scale
        self.mix_total += 0.05 * self.mix_scale
        # Pruned to the heaviest MIX_TEMPLATES once it holds twice that many, not at every window
        # past the cap: sorting the baseline at every window was a tenth of the engine's time.
        if self.mix_scale > 1e6 or len(baseline) > 2 * MIX_TEMPLATES:
            kept = sorted(baseline.items(), key=lambda item: item[1], reverse=True)[:MIX_TEMPLATES]
            self.mix_baseline = {t: v / self.mix_scale for t, v in kept}
            self.mix_total = sum(self.mix_baseline.values())
            self.mix_scale = 1.0
        return finding

    def update(self, window: ClosedWindow) -> list[Finding]:
        self.benign.observe(window.start_ms, window.end_ms)
        findings = []
        mix_shift = self._mix_shift(window)
        if mix_shift is not None:
            findings.append(mix_shift)
        for (name, scope), (before, flagged_ms) in sorted(self.pending.items()):
            if flagged_ms >= window.end_ms:
                continue  # flagged in a window that is still open
            del self.pending[(name, scope)]
            after = self._value(window, name, scope)
            effect = self.ratio_min_effect if name == OUTPUT_RATIO else self.min_effect
            if after is not None and abs(after - before) >= effect:
                findings.append(self._finding(window, name, scope, before, after))
        return findings

    def _drivers(self, window: ClosedWindow, name: str, scope: str) -> list[str]:
        behaviour = self.behaviour

        def shaped(account: str) -> bool:
            return behaviour is None or behaviour.is_shaped(account)

        if scope != GLOBAL:
            stats = window.of_kind("model").get(scope)
            return sorted(a for a in (stats.accounts if stats else ()) if shaped(a))
        if name == TOPIC_MIX:
            # Accounts that rarely repeat a template are the ones that moved the mix.
            return [
                account for account in window.of_kind("account")
                if shaped(account) and (behaviour is None or behaviour.tells(account)["template_repeat"] < 0.5)
            ]  # fmt: skip
        if name == OUTPUT_RATIO:
            return [account for account in window.of_kind("account") if shaped(account)]
        count = SHARES[name][1]
        return [
            account
            for account, stats in window.of_kind("account").items()
            if count(stats) > 0 and count(stats) >= self.account_min_share * stats.requests and shaped(account)
        ]

    def _finding(self, window: ClosedWindow, name: str, scope: str, before: float, after: float) -> Finding:
        drivers = self._drivers(window, name, scope) if after > before else []
        severity: Severity = "warning"
        if len(drivers) < self.min_drivers:
            severity = "info"
            self.benign.count()
        where = "all requests" if scope == GLOBAL else f"requests to {scope}"

        def shown(value: float) -> str:
            return f"{value:.2f}" if name in (OUTPUT_RATIO, TOPIC_MIX) else f"{value:.1%}"

        return Finding(
            detector=self.name,
            detector_version=self.version,
            entity_kind="global" if scope == GLOBAL else "model",
            entity=name if scope == GLOBAL else f"{scope}/{name}",
            score=abs(after - before),
            threshold={OUTPUT_RATIO: self.ratio_min_effect, TOPIC_MIX: self.mix_min_effect}.get(name, self.min_effect),
            window_start_ms=window.start_ms,
            window_end_ms=window.end_ms,
            severity=severity,
            summary=(
                f"{name.replace('_', ' ')} of {where} moved from {shown(before)} to {shown(after)}; "
                f"{len(drivers)} extraction-shaped accounts drove it in this window"
            ),
            features=[Feature(name, after, before), Feature("window_requests", window.requests)],
            accounts=drivers,
            expected_false_alarms_per_day=self.benign.per_day(),
        )


def _jensen_shannon(p: dict[str, float], q: dict[str, float], q_total: float | None = None) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) of two mixes; `q` is read normalised by
    `q_total` (its sum). O(len(p)): the keys of `q` that `p` lacks contribute their mass in one term.

    >>> _jensen_shannon({"a": 1.0}, {"a": 0.5}), _jensen_shannon({"a": 1.0}, {"b": 1.0})
    (0.0, 1.0)
    >>> round(_jensen_shannon({"a": 0.5, "b": 0.5}, {"a": 3.0, "c": 1.0}), 4)
    0.3932
    """
    q_total = sum(q.values()) if q_total is None else q_total
    if q_total <= 0:
        return 1.0
    total = 0.0
    shared = 0.0  # normalised mass of q on keys of p
    for key, pk in p.items():
        qk = q.get(key, 0.0) / q_total
        shared += qk
        m = (pk + qk) / 2
        total += pk * math.log2(pk / m)
        if qk:
            total += qk * math.log2(qk / m)
    total += max(1.0 - shared, 0.0)  # each qk alone: qk * log2(qk / (qk / 2)) = qk
    return min(max(total / 2, 0.0), 1.0)


@register("mix_drift")
def _build(context: DetectorContext) -> MixDriftDetector:
    return MixDriftDetector(delta=context.settings.drift_delta, behaviour=context.behaviour)
