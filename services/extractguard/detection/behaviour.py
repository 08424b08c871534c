"""How each account uses the model, and how extraction-shaped that is.

Per account, every event updates exponentially decayed tallies over several horizons (half-lives
`horizons_s` of event time: an hour, a day and a week by default): sliding horizons that cost O(1)
per event and per account, where hopping windows would keep one bucket per hop. An account busy
enough is judged over the hour; one sending a request an hour (the public case's rate) has too few
requests in an hour ever to be judged there, but has five in the day horizon within five hours,
and one sending a request every four hours has them in the week horizon within a day. From the
tallies come the *tells* of harvesting, each a share in [0, 1]:

- `single_turn`     requests with no earlier turn in context
- `output_heavy`    answers of 1,000 tokens or more
- `logprobs`        requests asking for logprobs, top_logprobs or a logit_bias
- `cot`             prompts eliciting step-by-step reasoning (from the sketch)
- `young_account`   requests from an account less than a week old
- `template_repeat` requests on a template among its last 8 (template concentration: a batch
                    job or a narrow app repeats itself; a capability sweep rarely does)
- `near_duplicate`  requests whose prompt shares a MinHash band (4 rows, Jaccard ~0.7 and up) with
                    one of its last 8 prompts (a paraphrase family, a retry loop)
- `refusals`, `temperature_zero`, `multi_choice` (n > 1), `around_the_clock` (how evenly its
  requests spread over the hours of the day, over a 12 h half-life) and `young_at_heavy_use`
  (it became a heavy user in its first week), `template_diversity` and `topic_coverage`
  (HyperLogLog distinct templates and MinHash first bands per request since first seen):
  evidence, and features the verdict model learns from, but no weight on their own
- `machine_pacing`  1 - coefficient of variation of the gaps between requests (a metronome is 1,
                    a person or a Poisson process about 0)

The extraction score is their weighted mean, each share shrunk towards a prior by `prior_weight`
pseudo-requests so that an account with three requests cannot look extreme. Each horizon's scores
are compared to a threshold calibrated on a benign reference population at that horizon:
established accounts (older than `reference_age_days`), whose score distribution is kept as a
decayed histogram. The threshold is the reference's `1 - reference_tail` quantile, held between
`min_threshold` and `max_threshold` (the reference can hold bought aged accounts, which must not
raise the bar above themselves). An account is judged at the horizon where it stands furthest
above that horizon's threshold, and every score comes with the false alarms per day expected of
the rule "any horizon over its threshold", measured on the reference.

Each request also has a *request shape*: the weighted share of the tells one request shows by
itself (single turn, output-heavy, logprobs, chain of thought), or 1 for a probe — a single-turn
request the model refused (a boundary sweep's requests are refused often and harvest little), from
an account rather than an end user behind a reseller (whose egress ties its customers already).
Linking uses it for accounts too new or too faint to be judged yet: one such request proves
nothing, but hundreds of faint accounts
whose requests are shaped, on one fingerprint, are a population (see `campaigns.linking`).

>>> b = AccountBehaviour()
>>> day = 86_400_000
>>> base = {"account_id": "a", "account_created_ms": -60 * day, "turn_index": 0, "output_tokens": 3000,
...         "input_tokens": 100, "request_logprobs": True, "request_top_logprobs": 5, "request_logit_bias": False,
...         "prompt_sketch": {"cot_elicitation": True}}
>>> shapes = [b.learn_event({**base, "event_time_ms": 2 * day + i * 60_000}) for i in range(20)]
>>> round(b.score("a"), 2), shapes[-1]  # everything but its age gives it away
(0.75, 1.0)
>>> b.tells("a")["young_account"] < 0.2 and b.tells("a")["machine_pacing"] > 0.8
True
>>> hourly = AccountBehaviour()
>>> for i in range(6): _ = hourly.learn_event({**base, "account_id": "h", "event_time_ms": 2 * day + i * 3_600_000})
>>> hourly.scoreable("h", horizon=0), hourly.scoreable("h", horizon=1)  # too few in an hour, enough in a day
(False, True)
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from extractguard.detection.sketches import REGISTERS, add_hashed, estimate
from extractguard.detection.windows import YOUNG_ACCOUNT_MS

#: Shares tallied per account (the order of `AccountState.shares`), then machine pacing.
TELLS: tuple[str, ...] = (
    "single_turn", "output_heavy", "logprobs", "cot", "young_account", "refusals", "temperature_zero",
    "multi_choice", "template_repeat", "near_duplicate", "machine_pacing", "around_the_clock",
    "young_at_heavy_use", "template_diversity", "topic_coverage",
)  # fmt: skip
#: Weights of the unsupervised score. Refusals, temperature 0, n > 1, repeated templates and
#: near-duplicates are shown as evidence and learnt from verdicts, but weigh nothing on their own:
#: red-teamers, benchmarks, batch jobs and retrying apps have them too.
WEIGHTS: dict[str, float] = {
    "single_turn": 1.0,
    "output_heavy": 1.5,
    "logprobs": 1.0,
    "cot": 1.0,
    "young_account": 1.0,
    "refusals": 0.0,
    "temperature_zero": 0.0,
    "multi_choice": 0.0,
    "template_repeat": 0.0,
    "near_duplicate": 0.0,
    "machine_pacing": 1.0,
    "around_the_clock": 0.0,
    "young_at_heavy_use": 0.0,
    "template_diversity": 0.0,
    "topic_coverage": 0.0,
}
#: What an unknown account is assumed to look like before its own requests say otherwise.
PRIORS: dict[str, float] = {
    "single_turn": 0.4,
    "output_heavy": 0.05,
    "logprobs": 0.02,
    "cot": 0.02,
    "young_account": 0.05,
    "refusals": 0.01,
    "temperature_zero": 0.1,
    "multi_choice": 0.01,
    "template_repeat": 0.3,
    "near_duplicate": 0.1,
    "machine_pacing": 0.0,
    "around_the_clock": 0.0,
    "young_at_heavy_use": 0.0,
    "template_diversity": 0.0,
    "topic_coverage": 0.0,
}
OUTPUT_HEAVY_TOKENS = 1000
DAY_MS = 86_400_000
_SHARES = TELLS[:-5]
CLOCK_HALF_LIFE_MS = 12 * 3_600_000  # activity around the clock needs a horizon of many hours
HEAVY_USE_REQUESTS = 20.0
_BINS = 100
RECENT = 8  # prompts remembered per account for template repeats and near-duplicates
_RADIANS_PER_MS = 2 * math.pi / 86_400_000
_WEIGHT_LIST = [WEIGHTS[name] for name in _SHARES]
_PRIOR_LIST = [PRIORS[name] for name in _SHARES]
_WEIGHT_SUM = sum(WEIGHTS.values())
_PRIOR_SCORE = sum(WEIGHTS[name] * PRIORS[name] for name in TELLS) / _WEIGHT_SUM


# Where each tally sits in `AccountState.values`: first what every horizon shares, then one block
# per horizon (offsets within a block below, the block of horizon h at _BLOCK0 + h * _BLOCK).
_LAST_MS = 0
_CLOCK_N, _CLOCK_COS, _CLOCK_SIN = 1, 2, 3  # decayed (12 h) count and sums of the hour angle's cos, sin
_HEAVY_AGE_MS = 4  # account age when it first became a heavy user (NaN: not yet)
_CREATED_MS = 5  # signup time (NaN: unknown)
_SEEN = 6  # requests since first seen (not decayed), against the distinct counts
_BLOCK0 = 7
_COUNT, _TOKENS_IN, _TOKENS_OUT, _GAP_COUNT, _GAP_MEAN, _GAP_VAR = range(6)
_SHARE = 6  # the shares, in the order of `_SHARES`
_BLOCK = _SHARE + len(_SHARES)
_DECAYED = (_COUNT, _TOKENS_IN, _TOKENS_OUT, *range(_SHARE, _BLOCK))
_TEMPLATES, _TOPICS = 0, REGISTERS  # offsets of the two distinct counters in `registers`
_NO_SKETCH: dict[str, Any] = {}  # an event without a prompt sketch (gateway_event v2)
#: The tells one request shows by itself, with their weights: its request shape.
REQUEST_TELLS: tuple[str, ...] = ("single_turn", "output_heavy", "logprobs", "cot")
_REQUEST_WEIGHT_SUM = sum(WEIGHTS[name] for name in REQUEST_TELLS)
_W_SINGLE, _W_HEAVY, _W_LOGPROBS, _W_COT = (WEIGHTS[name] / _REQUEST_WEIGHT_SUM for name in REQUEST_TELLS)
DEFAULT_HORIZONS_S: tuple[float, ...] = (3600.0, 86_400.0, 7 * 86_400.0)


#: A period kept by a controller: buckets of 5% in log scale. One controller's accounts spread over
#: a few neighbouring buckets (the resolver clusters them); an hour and 75 minutes are far apart.
CADENCE_STEP = math.log(1.05)
CADENCE_MIN_GAPS = 3.0
CADENCE_MAX_CV = 0.3


def cadence_bucket(period_ms: float) -> int:
    """The bucket of a sending period: `cadence:<bucket>` fingerprints share it.

    >>> cadence_bucket(3_600_000), cadence_bucket(3_700_000), cadence_bucket(4_500_000)
    (168, 168, 172)
    """
    return round(math.log(period_ms / 1000) / CADENCE_STEP)


def _fresh(horizons: int) -> array[float]:
    fresh = array("d", [0.0] * (_BLOCK0 + horizons * _BLOCK))
    fresh[_HEAVY_AGE_MS] = fresh[_CREATED_MS] = math.nan
    return fresh


class AccountState:
    """Decayed tallies of one account, packed: there are millions of them.

    The numbers live in one array of doubles (8 bytes each, where a float in a slot or a list
    costs 32), the two distinct counters (prompt templates; MinHash first bands, so near-duplicate
    prompts count once and topics spread) in one bytearray, and 16-bit hashes of its last RECENT
    templates and of the first two MinHash bands of its last RECENT prompts in two small arrays
    (a false match is one in 4,000). 585 bytes an account with one horizon (each more adds 128);
    packing took the engine's resident
    memory at 100,000 accounts from 4,014 to 3,131 bytes an account, learning from 9.7 to 9.1 us
    an event, and pickling hydra's accounts from 29 to 2 ms.
    """

    __slots__ = ("recent_bands", "recent_templates", "registers", "values")

    def __init__(self, ts: int, created_ms: int | None, fresh: array[float]) -> None:
        self.values = array("d", fresh)
        self.values[_LAST_MS] = ts
        if created_ms is not None:
            self.values[_CREATED_MS] = created_ms
        self.registers = bytearray(2 * REGISTERS)
        self.recent_templates = array("H")
        self.recent_bands = array("H")


@dataclass(slots=True)
class ScoreReference:
    """A decayed histogram of the scores of benign reference accounts, and how often they are scored."""

    half_life_ms: int
    bins: list[float] = field(default_factory=lambda: [0.0] * _BINS)
    last_ms: int = 0
    first_ms: int | None = None
    evaluations: int = 0  # every scoring of any account, reference or not

    def add(self, score: float, ts: int) -> None:
        if self.first_ms is None:
            self.first_ms = ts
        if ts > self.last_ms:
            if self.last_ms:
                factor = 0.5 ** ((ts - self.last_ms) / self.half_life_ms)
                self.bins = [b * factor for b in self.bins]
            self.last_ms = ts
        self.bins[min(int(score * _BINS), _BINS - 1)] += 1.0

    @property
    def weight(self) -> float:
        return sum(self.bins)

    def quantile(self, q: float) -> float:
        total = self.weight
        if total <= 0:
            return 0.0
        running = 0.0
        for i, b in enumerate(self.bins):
            running += b
            if running >= q * total:
                return (i + 1) / _BINS
        return 1.0

    def exceedance(self, threshold: float) -> float:
        total = self.weight
        if total <= 0:
            return 0.0
        return sum(self.bins[min(int(threshold * _BINS), _BINS) :]) / total

    def evaluations_per_day(self) -> float:
        if self.first_ms is None:
            return 0.0
        elapsed = max(self.last_ms - self.first_ms, 3_600_000)
        return self.evaluations * DAY_MS / elapsed


def _machine_pacing(v: array[float], b: int, k: float) -> float:
    """1 - the coefficient of variation of the gaps in the block at `b`, shrunk like the shares (by
    `k` pseudo-gaps): a few regular gaps are weak evidence."""
    gap_count, gap_mean = v[b + _GAP_COUNT], v[b + _GAP_MEAN]
    if gap_count < 3 or gap_mean <= 0:
        return PRIORS["machine_pacing"]
    cv = math.sqrt(max(v[b + _GAP_VAR], 0.0) / gap_count) / gap_mean
    return max(0.0, 1.0 - cv) * gap_count / (gap_count + k)


class AccountBehaviour:
    def __init__(
        self,
        horizons_s: tuple[float, ...] = DEFAULT_HORIZONS_S,
        prior_weight: float = 3.0,
        min_requests: float = 5.0,
        min_threshold: float = 0.45,
        max_threshold: float = 0.6,
        reference_tail: float = 0.001,
        reference_age_days: float = 30.0,
        forget_after_half_lives: float = 3.0,
    ) -> None:
        if not horizons_s or list(horizons_s) != sorted(horizons_s):
            raise ValueError(f"horizons must be given shortest first, got {horizons_s}")
        self.half_lives_ms = [int(h * 1000) for h in horizons_s]
        self.prior_weight = prior_weight
        self.min_requests = min_requests
        self.min_threshold = min_threshold
        self.max_threshold = max_threshold
        self.reference_tail = reference_tail
        self.reference_age_ms = int(reference_age_days * DAY_MS)
        # An account is forgotten once even its longest horizon has mostly decayed.
        self.forget_ms = int(forget_after_half_lives * self.half_lives_ms[-1])
        self.accounts: dict[str, AccountState] = {}
        self.references = [ScoreReference(half_life_ms=24 * 3_600_000) for _ in horizons_s]
        self.watermark_ms = 0
        self._swept_ms = 0
        self._fresh = _fresh(len(horizons_s))
        self._blocks = [(_BLOCK0 + h * _BLOCK, half_life) for h, half_life in enumerate(self.half_lives_ms)]

    @property
    def horizons(self) -> int:
        return len(self.half_lives_ms)

    def __getstate__(self) -> dict[str, Any]:
        # Checkpoints pickle this every few seconds; one pickled object per account costs several
        # microseconds, so the accounts go as one array of numbers, one of counters and the
        # recent hashes as bytes.
        state = self.__dict__.copy()
        values, registers = array("d"), bytearray()
        recent: list[tuple[bytes, bytes]] = []
        for account in self.accounts.values():
            values += account.values
            registers += account.registers
            recent.append((account.recent_templates.tobytes(), account.recent_bands.tobytes()))
        state["accounts"] = (list(self.accounts), values, bytes(registers), recent)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        names, values, registers, recent = state["accounts"]
        width, counters = len(state["_fresh"]), 2 * REGISTERS
        accounts: dict[str, AccountState] = {}
        for i, name in enumerate(names):
            account = accounts[name] = AccountState.__new__(AccountState)
            account.values = values[i * width : (i + 1) * width]
            account.registers = bytearray(registers[i * counters : (i + 1) * counters])
            account.recent_templates = array("H", recent[i][0])
            account.recent_bands = array("H", recent[i][1])
        self.__dict__.update(state)
        self.accounts = accounts

    # --- learning, once per event (the hot path) ---

    def learn_event(self, event: dict[str, Any]) -> float:
        """Add one request to its account's tallies; returns the request's shape in [0, 1]."""
        ts: int = event["event_time_ms"]
        account: str = event["account_id"]
        state = self.accounts.get(account)
        blocks = self._blocks
        if state is None:
            state = self.accounts[account] = AccountState(ts, event.get("account_created_ms"), self._fresh)
            v = state.values
        else:
            v = state.values
            if ts > v[_LAST_MS]:
                gap = ts - v[_LAST_MS]
                for b, half_life in blocks:
                    factor = 0.5 ** (gap / half_life)
                    for i in _DECAYED:
                        v[b + i] *= factor
                    # Decayed Welford over the gaps between requests.
                    gap_count = v[b + _GAP_COUNT] * factor + 1.0
                    delta = gap - v[b + _GAP_MEAN]
                    gap_mean = v[b + _GAP_MEAN] + delta / gap_count
                    v[b + _GAP_VAR] = v[b + _GAP_VAR] * factor + delta * (gap - gap_mean)
                    v[b + _GAP_COUNT], v[b + _GAP_MEAN] = gap_count, gap_mean
                slow = 0.5 ** (gap / CLOCK_HALF_LIFE_MS)
                v[_CLOCK_N] *= slow
                v[_CLOCK_COS] *= slow
                v[_CLOCK_SIN] *= slow
                v[_LAST_MS] = ts
        created = v[_CREATED_MS]  # NaN when unknown: every comparison with it is False
        # Which tells this request shows, in the order of `_SHARES` (the first ten).
        single = event.get("turn_index", 0) == 0
        heavy = event["output_tokens"] >= OUTPUT_HEAVY_TOKENS
        logprobs = bool(
            event["request_logprobs"] or event.get("request_top_logprobs") or event.get("request_logit_bias")
        )
        sketch = event.get("prompt_sketch") or _NO_SKETCH  # v2: a gateway that logs no prompt
        cot = bool(sketch.get("cot_elicitation"))
        flags = [
            single, heavy, logprobs, cot, ts - created < YOUNG_ACCOUNT_MS, bool(event.get("refusal")),
            event.get("request_temperature") == 0, event.get("request_choice_count", 1) > 1, False, False,
        ]  # fmt: skip
        template = sketch.get("template_hash")
        if template:
            hashed = int(template[:16], 16)
            add_hashed(state.registers, _TEMPLATES, hashed)
            short = hashed & 0xFFFF
            recent = state.recent_templates
            flags[8] = short in recent
            recent.append(short)
            if len(recent) > RECENT:
                del recent[0]
        minhash = sketch.get("minhash")
        if minhash and len(minhash) >= 8:
            first = hash((minhash[0], minhash[1], minhash[2], minhash[3])) & 0xFFFFFFFFFFFFFFFF
            add_hashed(state.registers, _TOPICS, first)
            band1, band2 = first & 0xFFFF, hash((minhash[4], minhash[5], minhash[6], minhash[7])) & 0xFFFF
            bands = state.recent_bands
            flags[9] = band1 in bands or band2 in bands
            bands.append(band1)
            bands.append(band2)
            if len(bands) > 2 * RECENT:
                del bands[:2]
        tokens_in, tokens_out = event["input_tokens"], event["output_tokens"]
        for b, _half_life in blocks:
            v[b + _COUNT] += 1.0
            v[b + _TOKENS_IN] += tokens_in
            v[b + _TOKENS_OUT] += tokens_out
            for i, flag in enumerate(flags):
                if flag:
                    v[b + _SHARE + i] += 1.0
        angle = (ts % DAY_MS) * _RADIANS_PER_MS
        v[_CLOCK_N] += 1.0
        v[_CLOCK_COS] += math.cos(angle)
        v[_CLOCK_SIN] += math.sin(angle)
        v[_SEEN] += 1.0
        if v[_BLOCK0 + _COUNT] >= HEAVY_USE_REQUESTS and math.isnan(v[_HEAVY_AGE_MS]) and not math.isnan(created):
            v[_HEAVY_AGE_MS] = ts - created
        if ts > self.watermark_ms:
            self.watermark_ms = ts
        harvest = single * _W_SINGLE + heavy * _W_HEAVY + logprobs * _W_LOGPROBS + cot * _W_COT
        # A refused single-turn request is a probe's shape: one asked cold, and refused (flags[5]).
        # Not for an end user behind a reseller: the reseller's egress already ties its many faint
        # customers together, and one refused question must not make an honest one a member.
        probe = single and flags[5] and not event.get("end_user_id")
        return 1.0 if probe else harvest

    # --- reading ---

    def requests(self, account: str, horizon: int | None = None) -> float:
        """Decayed requests at `horizon` (default: the one the account is judged at, else the longest)."""
        state = self.accounts.get(account)
        if state is None:
            return 0.0
        if horizon is None:
            horizon = self.judged(account)
            horizon = self.horizons - 1 if horizon is None else horizon
        return state.values[_BLOCK0 + horizon * _BLOCK + _COUNT]

    def tells(self, account: str, horizon: int | None = None) -> dict[str, float]:
        state = self.accounts.get(account)
        if state is None:
            return dict(PRIORS)
        if horizon is None:
            horizon = self.judged(account)
            horizon = self.horizons - 1 if horizon is None else horizon
        k = self.prior_weight
        v = state.values
        b = _BLOCK0 + horizon * _BLOCK
        n = v[b + _COUNT]
        values = {name: (v[b + _SHARE + i] + PRIORS[name] * k) / (n + k) for i, name in enumerate(_SHARES)}
        values["machine_pacing"] = _machine_pacing(v, b, k)
        # 1 - the mean resultant length of the hours it is active at: 0 = always the same hour,
        # near 1 = spread around the clock. Shrunk: a few requests say nothing about a day.
        clock_n = v[_CLOCK_N]
        if clock_n > 0:
            resultant = math.hypot(v[_CLOCK_COS], v[_CLOCK_SIN]) / clock_n
            values["around_the_clock"] = (1.0 - resultant) * clock_n / (clock_n + 4 * k)
        else:
            values["around_the_clock"] = 0.0
        values["young_at_heavy_use"] = 1.0 if v[_HEAVY_AGE_MS] < YOUNG_ACCOUNT_MS else 0.0  # False for NaN
        # Distinct templates and prompt topics per request (capped at 1): a batch job repeats one
        # template, a narrow app a few topics; a self-instruct sweep is new almost every time.
        seen = v[_SEEN] + k
        values["template_diversity"] = min(estimate(state.registers, _TEMPLATES) / seen, 1.0)
        values["topic_coverage"] = min(estimate(state.registers, _TOPICS) / seen, 1.0)
        return values

    def _score_at(self, v: array[float], horizon: int) -> float:
        # The same as the weighted mean of `tells`, without building the dict: this runs for every
        # active account and horizon in every window.
        k = self.prior_weight
        b = _BLOCK0 + horizon * _BLOCK
        s = b + _SHARE
        n = v[b + _COUNT] + k
        total = 0.0
        for i in range(len(_SHARES)):
            total += _WEIGHT_LIST[i] * (v[s + i] + _PRIOR_LIST[i] * k) / n
        total += WEIGHTS["machine_pacing"] * _machine_pacing(v, b, k)
        return total / _WEIGHT_SUM

    def score(self, account: str, horizon: int | None = None) -> float:
        """The score at `horizon` (default: the horizon the account is judged at, else the longest)."""
        state = self.accounts.get(account)
        if state is None:
            return _PRIOR_SCORE
        if horizon is None:
            horizon = self.judged(account)
            horizon = self.horizons - 1 if horizon is None else horizon
        return self._score_at(state.values, horizon)

    def cadence(self, account: str) -> int | None:
        """The account's sending period as a bucket (CADENCE_STEP wide in log scale), when it keeps one.

        A controller's schedule, not a person's: at least CADENCE_MIN_GAPS gaps over the day
        horizon, their coefficient of variation at most CADENCE_MAX_CV, and a period of a minute or
        more. None otherwise. Accounts of one controller keep one period; a person or a Poisson
        process keeps none.

        >>> b = AccountBehaviour()
        >>> request = {"account_id": "m", "turn_index": 0, "output_tokens": 900, "input_tokens": 100,
        ...            "request_logprobs": False, "prompt_sketch": {}}
        >>> for i in range(6): _ = b.learn_event({**request, "event_time_ms": i * 3_600_000})
        >>> b.cadence("m") == cadence_bucket(3_600_000), b.cadence("nobody")
        (True, None)
        """
        state = self.accounts.get(account)
        if state is None:
            return None
        v = state.values
        b = _BLOCK0 + min(1, self.horizons - 1) * _BLOCK
        count, mean = v[b + _GAP_COUNT], v[b + _GAP_MEAN]
        if count < CADENCE_MIN_GAPS or mean < 60_000:
            return None
        if math.sqrt(max(v[b + _GAP_VAR], 0.0) / count) > CADENCE_MAX_CV * mean:
            return None
        return cadence_bucket(mean)

    def output_ratio(self, account: str) -> float:
        state = self.accounts.get(account)
        if state is None:
            return 0.0
        b = _BLOCK0 + (self.horizons - 1) * _BLOCK
        if state.values[b + _TOKENS_IN] <= 0:
            return 0.0
        return state.values[b + _TOKENS_OUT] / state.values[b + _TOKENS_IN]

    def scoreable(self, account: str, horizon: int | None = None) -> bool:
        """Whether the account has enough requests to be judged at `horizon` (default: at any)."""
        state = self.accounts.get(account)
        if state is None:
            return False
        if horizon is not None:
            return state.values[_BLOCK0 + horizon * _BLOCK + _COUNT] >= self.min_requests
        # The longest horizon holds the most requests: scoreable anywhere iff scoreable there.
        return state.values[_BLOCK0 + (self.horizons - 1) * _BLOCK + _COUNT] >= self.min_requests

    def judged(self, account: str, min_requests: float | None = None) -> int | None:
        """The horizon at which the account stands furthest above that horizon's threshold, among
        those where it has `min_requests` (default `self.min_requests`); None when it has too few
        requests at every horizon."""
        state = self.accounts.get(account)
        if state is None:
            return None
        bar = self.min_requests if min_requests is None else min_requests
        v = state.values
        best, best_margin = None, -math.inf
        for h in range(self.horizons):
            if v[_BLOCK0 + h * _BLOCK + _COUNT] < bar:
                continue
            margin = self._score_at(v, h) - self.threshold(h)
            if margin > best_margin:
                best, best_margin = h, margin
        return best

    def is_reference(self, account: str, ts: int) -> bool:
        state = self.accounts.get(account)
        return state is not None and ts - state.values[_CREATED_MS] >= self.reference_age_ms  # False for NaN

    # --- calibration ---

    def threshold(self, horizon: int = 0) -> float:
        """The calibrated threshold of scores at `horizon`."""
        reference = self.references[horizon]
        calibrated = reference.quantile(1.0 - self.reference_tail) if reference.weight >= 200 else 0.0
        # Bounded: aged accounts bought by a campaign sit in the reference too, and must not be
        # able to drag the threshold above their own scores.
        return min(max(self.min_threshold, calibrated), self.max_threshold)

    def expected_false_alarms_per_day(self) -> float:
        """False alarms a day expected of the rule "any horizon over its threshold", on the reference."""
        return round(
            sum(r.exceedance(self.threshold(h)) * r.evaluations_per_day() for h, r in enumerate(self.references)), 3
        )

    def evaluate(self, account: str, ts: int) -> tuple[float, int] | None:
        """Score an account for a closed window: (score, horizon) at the horizon where it stands
        furthest above its threshold, None when it has too few requests at every horizon. Each
        horizon's score of an established account joins that horizon's benign reference."""
        state = self.accounts.get(account)
        if state is None:
            return None
        v = state.values
        reference = self.is_reference(account, ts)
        best: tuple[float, int] | None = None
        best_margin = -math.inf
        for h in range(self.horizons):
            if v[_BLOCK0 + h * _BLOCK + _COUNT] < self.min_requests:
                continue
            score = self._score_at(v, h)
            self.references[h].evaluations += 1
            if reference:
                self.references[h].add(score, ts)
            margin = score - self.threshold(h)
            if margin > best_margin:
                best, best_margin = (score, h), margin
        return best

    def leans(self, account: str, factor: float, min_requests: float = 2.0) -> bool | None:
        """Whether an account leans towards extraction-shaped: at some horizon where it has
        `min_requests`, its score is at least `factor` times that horizon's threshold — the weaker
        bar linking uses. None when it has too few requests at every horizon to say. One leaning
        account proves nothing; thirty on one proxy prefix do, and linking judges them together,
        which is how it can name a campaign before each of its accounts could be judged alone."""
        state = self.accounts.get(account)
        if state is None:
            return None
        v = state.values
        known = False
        for h in range(self.horizons):
            if v[_BLOCK0 + h * _BLOCK + _COUNT] < min_requests:
                continue
            known = True
            if self._score_at(v, h) >= factor * self.threshold(h):
                return True
        return False if known else None

    def is_shaped(self, account: str) -> bool:
        """Whether the account's behaviour is extraction-shaped now, at some horizon."""
        return self.leans(account, 1.0, self.min_requests) is True

    def shaped(self, accounts: Collection[str]) -> list[str]:
        """Those of `accounts` whose behaviour is extraction-shaped now."""
        return [a for a in accounts if self.is_shaped(a)]

    def shaped_share(self, accounts: Collection[str]) -> float:
        """The share of `accounts` whose behaviour is extraction-shaped now."""
        return len(self.shaped(accounts)) / len(accounts) if accounts else 0.0

    def forget_idle(self) -> int:
        """Drop accounts idle for `forget_after_half_lives` of the longest half-life; returns how many."""
        if self.watermark_ms - self._swept_ms < self.half_lives_ms[0]:
            return 0
        self._swept_ms = self.watermark_ms
        horizon = self.watermark_ms - self.forget_ms
        idle = [a for a, s in self.accounts.items() if s.values[_LAST_MS] < horizon]
        for account in idle:
            del self.accounts[account]
        return len(idle)
