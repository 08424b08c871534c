"""How each kind of account behaves: when it sends (a rate profile) and what (a request style).

Organic timing is a non-homogeneous Poisson process, drawn by thinning: candidates come at the
profile's peak rate and each is kept with probability rate(t) / peak. Campaign timing is a paced
loop (from metronome to Poisson by `pacing_jitter`) that never exceeds the per-account limit in
any sliding minute, because staying under it is the point of a hydra campaign.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from extractguard.gateway.events import ObservedRequest
from extractguard.gateway.sketch import elicits_reasoning
from extractguard.simulator import prompts
from extractguard.simulator.corpora import BENCHMARK_MIX, ArrivalShape, RealText, RequestSizes, Sweep, TextMix
from extractguard.simulator.population import SimAccount, residential_asns, residential_ip
from extractguard.simulator.scenario import CampaignSpec, Scenario

DAY_MS = 86_400_000
MINUTE_MS = 60_000
PEAK_HOUR_UTC = 15
#: Organic prompts that copy a public chain-of-thought recipe (people and apps use them too).
ORGANIC_COT = 0.04


def event_id(rng: random.Random) -> str:
    # From the scenario's generator, not uuid4: the same seed must give the same stream, byte for byte.
    return f"{rng.getrandbits(128):032x}"


# --- when ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Diurnal:
    """A daily cycle around a mean rate, busiest at 15:00 UTC; optionally a launch ramp."""

    per_min: float
    amplitude: float
    ramp_at_ms: int | None = None
    ramp_ms: int = 1
    factor: float = 1.0
    shape: ArrivalShape | None = None  # the real traffic's minute-by-minute swing around the rate

    def rate(self, ts: int) -> float:
        hour = (ts % DAY_MS) / 3_600_000
        rate = self.per_min * (1 + self.amplitude * math.cos(2 * math.pi * (hour - PEAK_HOUR_UTC) / 24))
        if self.ramp_at_ms is not None and ts > self.ramp_at_ms:
            rate *= 1 + (self.factor - 1) * min((ts - self.ramp_at_ms) / self.ramp_ms, 1.0)
        if self.shape is not None:
            rate *= self.shape.factor(ts)
        return rate

    def peak(self) -> float:
        peak = self.per_min * (1 + self.amplitude) * self.factor
        return peak * self.shape.peak if self.shape is not None else peak

    def active_from(self, ts: int) -> int:
        return ts


@dataclass(frozen=True, slots=True)
class Runs:
    """Active only during scheduled runs (a nightly batch, a benchmark), at a steady rate."""

    per_min: float
    first_ms: int
    run_ms: int
    every_ms: int | None = None

    def _run_start(self, ts: int) -> int | None:
        if ts < self.first_ms:
            return self.first_ms
        if self.every_ms is None:
            return self.first_ms if ts < self.first_ms + self.run_ms else None
        index = (ts - self.first_ms) // self.every_ms
        start = self.first_ms + index * self.every_ms
        return start if ts < start + self.run_ms else start + self.every_ms

    def rate(self, ts: int) -> float:
        start = self._run_start(ts)
        return self.per_min if start is not None and start <= ts else 0.0

    def peak(self) -> float:
        return self.per_min

    def active_from(self, ts: int) -> int | None:
        start = self._run_start(ts)
        return None if start is None else max(start, ts)


Profile = Diurnal | Runs


# --- what ------------------------------------------------------------------------------------


#: The share of an answer that is reasoning when the prompt asks for it step by step. The world's
#: models are reasoning models that think aloud when asked: what protect_reasoning withholds, and
#: the scorecard counts (drawn from no random stream, so every scenario keeps its exact requests).
REASONING_SHARE = 0.6
MIN_REASONED_OUTPUT = 100  # a one-token harness answer or a short label has no reasoning


def reasoning_part(prompt: str, output_tokens: object) -> int | None:
    """
    >>> reasoning_part("What is 6 x 7? Let's think step by step.", 500), reasoning_part("Hi there", 500)
    (300, None)
    """
    if not isinstance(output_tokens, int) or output_tokens < MIN_REASONED_OUTPUT or not elicits_reasoning(prompt):
        return None
    return round(output_tokens * REASONING_SHARE)


@dataclass(slots=True)
class Actor:
    account: SimAccount
    models: list[str]
    launch: tuple[str, int, float] | None  # (model, at_ms, organic adoption)
    created_visible: bool = True  # False: the gateway passes no signup time

    def model(self, ts: int, rng: random.Random) -> str:
        if self.launch is not None and ts >= self.launch[1] and rng.random() < self.launch[2]:
            return self.launch[0]
        return rng.choice(self.models)

    def address(self, rng: random.Random) -> tuple[str, int]:
        return self.account.ip, self.account.asn

    def request(self, ts: int, rng: random.Random, prompt: str, **shape: object) -> ObservedRequest:
        a = self.account
        ip, asn = self.address(rng)
        # An end user of a reseller's account: the gateway sees that account and key, and the
        # reseller's own id for its customer as the end-user id (hashed by the gateway).
        account_id, api_key, created, end_user = a.account_id, a.api_key, a.created_ms, None
        if a.via is not None:
            (account_id, api_key, created), end_user = a.via, a.account_id
        if "reasoning_tokens" not in shape:
            shape["reasoning_tokens"] = reasoning_part(prompt, shape.get("output_tokens"))
        return ObservedRequest(
            account_id=account_id, org_id=a.org_id, api_key=api_key, client_ip=ip, client_asn=asn,
            end_user_id=end_user,
            prompt=prompt, event_time_ms=ts, account_created_ms=created if self.created_visible else None,
            user_agent=a.user_agent,
            tls_ja4=a.ja4, sdk_name=a.sdk, client_country=a.country, event_id=event_id(rng),
            **shape,  # type: ignore[arg-type]
        )  # fmt: skip


@dataclass(slots=True)
class OrganicActor(Actor):
    """A person or an app: multi-turn chat in its domain, or one of the look-alike styles."""

    profile: Profile = field(default_factory=lambda: Diurnal(1.0, 0.0))
    style: str = "chat"
    follow_up: float = 0.6
    corpus: prompts.Corpus | None = None
    conversation: tuple[str, int] | None = None
    sweep: prompts.CapabilitySweep | None = None
    batch_template: str = ""
    #: Real text (`OrganicSpec.text`): what this account's org leans to, and the world's whole mix.
    text: RealText | None = None
    sizes: RequestSizes | None = None
    #: Sittings: after a request, another follows within a think time with this probability.
    session_continue: float = 0.0
    think_ms: float = 45_000.0
    continuing: bool = False
    sent: bool = False  # whether the last candidate was sent (not thinned)

    def first(self, start_ms: int, rng: random.Random) -> int | None:
        return self.next(start_ms, rng)

    def next(self, ts: int, rng: random.Random) -> int | None:
        peak = self.profile.peak()
        if self.session_continue:
            # Only a request sent goes on into a sitting; a candidate thinned away sent nothing.
            self.continuing = self.sent and rng.random() < self.session_continue
            if self.continuing:
                return ts + max(int(self.think_ms * rng.lognormvariate(0.0, 0.8)), 1_000)
            # A new sitting: sittings start at the rate over the requests a sitting holds.
            peak *= 1 - self.session_continue
        candidate = ts + max(int(rng.expovariate(peak / MINUTE_MS)), 1)
        active = self.profile.active_from(candidate)
        if active is None:
            return None  # no more runs
        if active > candidate:
            candidate = active + int(rng.expovariate(peak / MINUTE_MS))
        return candidate

    def act(self, ts: int, rng: random.Random) -> ObservedRequest | None:
        self.sent = self.continuing or rng.random() * self.profile.peak() <= self.profile.rate(ts)
        if not self.sent:
            return None  # thinned: the profile is below its peak now
        match self.style:
            case "batch":
                return self._batch(ts, rng)
            case "harness":
                return self._harness(ts, rng)
            case "researcher":
                return self._researcher(ts, rng)
            case "synthetic":
                return self._synthetic(ts, rng)
            case "student":
                return self._student(ts, rng)
            case _:
                return self._chat(ts, rng)

    def _chat(self, ts: int, rng: random.Random) -> ObservedRequest:
        conv, turn = self.conversation or ("", -1)
        # With sittings, a conversation goes on only within one; without, whenever the account returns.
        if turn >= 0 and (self.continuing or not self.session_continue) and rng.random() < self.follow_up:
            turn += 1
            prompt = self.text.follow_up(rng) if self.text else prompts.follow_up_prompt(rng)
        else:
            conv, turn = f"conv_{rng.getrandbits(48):012x}", 0
            if self.text is not None:
                prompt = self.text.opening(rng)
                if rng.random() < ORGANIC_COT:
                    prompt = prompts.with_public_cot(prompt, rng)
            else:
                prompt = self.corpus.draw(rng) if self.corpus else prompts.organic_prompt(self.account.domain, rng)
        self.conversation = (conv, turn)
        if self.sizes is not None:
            context, output = self.sizes.draw(rng)
        else:
            context, output = -1, rng.randint(30, 700)
        return self.request(
            ts, rng, prompt, request_model=self.model(ts, rng),
            input_tokens=(context if context > 0 else rng.randint(40, 900)) + 150 * turn,
            output_tokens=output, latency_ms=rng.randint(300, 4000), conversation_id=conv, turn_index=turn,
            max_tokens=rng.choice([None, 512, 1024, 2048]), temperature=rng.choice([None, 0.2, 0.7, 1.0]),
            logprobs=rng.random() < 0.01, finish_reason="stop", refusal=rng.random() < 0.005,
        )  # fmt: skip

    def _batch(self, ts: int, rng: random.Random) -> ObservedRequest:
        return self.request(
            ts, rng, prompts.batch_prompt(self.batch_template, rng), request_model=self.models[-1],
            input_tokens=rng.randint(180, 420), output_tokens=rng.randint(3, 40), latency_ms=rng.randint(200, 900),
            max_tokens=64, temperature=0.0, finish_reason="stop",
        )  # fmt: skip

    def _harness(self, ts: int, rng: random.Random) -> ObservedRequest:
        sweep = self.sweep or prompts.CapabilitySweep(items_per_leaf=40)
        self.sweep = sweep
        _area, leaf = sweep.next_leaf()
        benchmark = prompts.BENCHMARKS[sweep.position // 400 % len(prompts.BENCHMARKS)]
        prompt = prompts.harness_prompt(benchmark, sweep.position, leaf)
        if self.text is not None:  # the public benchmarks' own items, in order
            prompt = self.text.benchmark_item()
        return self.request(
            ts, rng, prompt, request_model=self.models[0],
            input_tokens=rng.randint(150, 900), output_tokens=1, latency_ms=rng.randint(200, 1500), max_tokens=1,
            temperature=0.0, logprobs=True, top_logprobs=5, finish_reason="length",
        )  # fmt: skip

    def _synthetic(self, ts: int, rng: random.Random) -> ObservedRequest:
        """A data-generation job: public instructions, long reasoned answers, one call each."""
        prompt = self.text.opening(rng) if self.text is not None else prompts.organic_prompt("writing", rng)
        if rng.random() < 0.5:
            prompt = prompts.with_public_cot(prompt, rng)
        output = rng.randint(800, 3000)
        return self.request(
            ts, rng, prompt, request_model=self.models[0], input_tokens=max(len(prompt) // 4, 8) + 120,
            output_tokens=output, latency_ms=rng.randint(4000, 25000), turn_index=0, max_tokens=4096,
            temperature=rng.choice([0.7, 1.0]), finish_reason="stop",
        )  # fmt: skip

    def _student(self, ts: int, rng: random.Random) -> ObservedRequest:
        """Homework in class: maths and reasoning questions, often step by step, with follow-ups."""
        request = self._chat(ts, rng)
        prompt = request.prompt or ""
        if request.turn_index == 0 and rng.random() < 0.4 and not prompt.endswith(tuple(prompts.PUBLIC_COT)):
            prompt = prompts.with_public_cot(prompt, rng)
            reasoning = reasoning_part(prompt, request.output_tokens)
            request = dataclasses.replace(request, prompt=prompt, reasoning_tokens=reasoning)
        return request

    def _researcher(self, ts: int, rng: random.Random) -> ObservedRequest:
        conv, turn = self.conversation or ("", -1)
        if turn >= 0 and rng.random() < 0.4:
            turn += 1
        else:
            conv, turn = f"conv_{rng.getrandbits(48):012x}", 0
        self.conversation = (conv, turn)
        refused = rng.random() < 0.45
        output = rng.randint(20, 80) if refused else rng.randint(200, 900)
        probe = self.text.probe(rng) if self.text is not None else prompts.refusal_probe_prompt(rng)
        return self.request(
            ts, rng, probe, request_model=self.model(ts, rng),
            input_tokens=rng.randint(40, 300) + 200 * turn, output_tokens=output, latency_ms=rng.randint(400, 5000),
            conversation_id=conv, turn_index=turn, temperature=rng.choice([None, 1.0]), finish_reason="stop",
            refusal=refused,
        )  # fmt: skip


@dataclass(slots=True)
class CampaignActor(Actor):
    """One account of an extraction campaign: paced under its limit, single-turn, output-heavy."""

    spec: CampaignSpec | None = None
    sweep: prompts.CapabilitySweep | None = None  # shared by the whole campaign
    start_ms: int = 0
    end_ms: int = 0
    pivot_ms: int = 0
    limit: int = 10
    corpus: prompts.Corpus | None = None
    organic_corpus: prompts.Corpus | None = None
    #: Real text: the campaign controller's walk through its datasets (shared by its accounts), and
    #: the organic world's text, which camouflage copies.
    harvest: Sweep | None = None
    organic_text: RealText | None = None
    recent: deque[int] = field(default_factory=deque)
    pool: list[tuple[str, int]] = field(default_factory=list)  # the proxy pool ([] = residential)
    residential_asns: list[int] = field(default_factory=list)
    current: tuple[str, int] | None = None
    # Round-robin dispatch: the controller's schedule for this account (its next slot, the period).
    slot_ms: float = 0.0
    period_ms: float = 0.0
    phase: float = 0.0  # i / N for account i of the campaign's N
    campaign_start_ms: int = 0

    def address(self, rng: random.Random) -> tuple[str, int]:
        """The account's exit address, moved to another one of the pool at the rotation rate."""
        if self.current is None:
            self.current = (self.account.ip, self.account.asn)
        rotate = self.campaign.proxy.rotate_probability
        if rotate and not self.campaign.evasion.via_reseller and rng.random() < rotate:
            if self.pool:
                prefix, asn = rng.choice(self.pool)
                self.current = (f"{prefix}.{rng.randint(1, 254)}", asn)
            else:
                self.current = residential_ip(rng, self.residential_asns or residential_asns())
        return self.current

    @property
    def campaign(self) -> CampaignSpec:
        assert self.spec is not None
        return self.spec

    def first(self, _start_ms: int, rng: random.Random) -> int | None:
        if self.campaign.dispatch == "round_robin":
            # The controller's grid: account i of N at phase i/N of every period since the campaign
            # began; an account of a later signup wave takes its first slot after it goes live.
            grid = self.campaign_start_ms + self.phase * self.period_ms
            skipped = max(0, math.ceil((self.start_ms - grid) / self.period_ms))
            self.slot_ms = grid + skipped * self.period_ms
            return self._on_slot(self.slot_ms, rng)
        return self.start_ms + int(rng.uniform(0, MINUTE_MS / self.account.rate_per_min))

    def _on_slot(self, slot_ms: float, rng: random.Random) -> int | None:
        # Queueing and network delay move a request around its slot by up to half the jitter's share of a period.
        sent = int(slot_ms + self.campaign.evasion.pacing_jitter * self.period_ms * (rng.random() - 0.5))
        return sent if sent < self.end_ms else None

    def next(self, ts: int, rng: random.Random) -> int | None:
        if self.campaign.dispatch == "round_robin":
            self.slot_ms += self.period_ms
            following = self._on_slot(self.slot_ms, rng)
            if following is not None and len(self.recent) >= self.limit:
                following = max(following, self.recent[0] + MINUTE_MS)
            return None if following is None or following >= self.end_ms else max(following, ts + 1)
        base = MINUTE_MS / self.account.rate_per_min
        jitter = self.campaign.evasion.pacing_jitter
        candidate = ts + max(int(base * ((1 - jitter) * rng.uniform(0.95, 1.05) + jitter * rng.expovariate(1.0))), 1)
        # Never more than `limit` requests in any 60 s: wait for the oldest of them to age out.
        if len(self.recent) >= self.limit:
            candidate = max(candidate, self.recent[0] + MINUTE_MS)
        return candidate if candidate < self.end_ms else None

    def act(self, ts: int, rng: random.Random) -> ObservedRequest | None:
        self.recent.append(ts)
        if len(self.recent) > self.limit:
            self.recent.popleft()
        spec = self.campaign
        shape = spec.strategies
        probing = False
        if rng.random() < spec.evasion.camouflage:
            prompt = self._camouflage(rng)
        elif self.corpus is not None:
            prompt = self.corpus.draw(rng)
        elif self.harvest is not None:
            prompt, probing = self._harvest_prompt(rng)
        else:
            prompt, probing = self._strategy_prompt(rng)
        if rng.random() < shape.cot:
            prompt = prompts.with_public_cot(prompt, rng) if self.harvest else prompts.with_cot(prompt, rng)
        if rng.random() < spec.evasion.paraphrase_rate:
            prompt = prompts.paraphrase(prompt, rng)
        model = self.models[0]
        if spec.pivot is not None and ts >= self.pivot_ms and rng.random() < spec.pivot.share:
            model = spec.pivot.model
        longest = rng.random() < shape.max_output
        output = rng.randint(2500, 4096) if longest else rng.randint(300, 1500)
        # Drawn only when the scenario asks, so scenarios without refusals keep their exact streams.
        refused = probing and shape.refusal_rate > 0 and rng.random() < shape.refusal_rate
        if refused:
            output = rng.randint(20, 120)
        logprobs = rng.random() < shape.logprobs
        return self.request(
            ts, rng, prompt, request_model=model, input_tokens=self._input_tokens(prompt, rng), output_tokens=output,
            latency_ms=rng.randint(6000, 30000), conversation_id=None, turn_index=0,
            max_tokens=4096 if longest else rng.choice([1024, 2048]), temperature=rng.choice([0.0, 0.7, 1.0]),
            logprobs=logprobs, top_logprobs=rng.choice([5, 20]) if logprobs else 0,
            logit_bias=rng.random() < shape.logit_bias, finish_reason="length" if output >= 4096 else "stop",
            refusal=refused,
        )  # fmt: skip

    def _input_tokens(self, prompt: str, rng: random.Random) -> int:
        # Real text carries its own length (about four characters a token); the generators' do not.
        return max(len(prompt) // 4, 8) if self.harvest is not None else rng.randint(60, 220)

    def _camouflage(self, rng: random.Random) -> str:
        """An organic-looking prompt: from the organic corpus when the world has one, as a mimic would draw."""
        if self.organic_text is not None:
            return self.organic_text.opening(rng)
        if self.organic_corpus is not None:
            return self.organic_corpus.draw(rng)
        return prompts.organic_prompt(rng.choice(list(prompts.ORGANIC_DOMAINS)), rng)

    def _harvest_prompt(self, rng: random.Random) -> tuple[str, bool]:
        """The controller's next dataset item; a safety probe is framed as a boundary probe at the
        `refusal_map` share of the strategies (its level of detail swept with the items)."""
        assert self.harvest is not None
        part, item = self.harvest.next()
        if not part.startswith("refusal"):
            return item.text, False
        s = self.campaign.strategies
        if rng.random() < s.refusal_map / s.total_weight:
            return prompts.refusal_frame(item.text, self.harvest.sent, rng), True
        return item.text, True

    def _strategy_prompt(self, rng: random.Random) -> tuple[str, bool]:
        """A prompt of one of the campaign's strategies, and whether it probes a refusal boundary."""
        s = self.campaign.strategies
        assert self.sweep is not None
        _area, leaf = self.sweep.next_leaf()
        pick = rng.uniform(0, s.total_weight)
        if pick < s.self_instruct:
            return prompts.self_instruct_prompt(leaf, rng), False
        pick -= s.self_instruct
        if pick < s.templated:
            return prompts.templated_prompt(leaf, rng), False
        pick -= s.templated
        if pick < s.paraphrase:
            return prompts.paraphrase_family_prompt(leaf, rng), False
        pick -= s.paraphrase
        if pick < s.refusal_probe or (s.refusal_map + s.rubric) == 0:
            return prompts.refusal_probe_prompt(rng), True
        pick -= s.refusal_probe
        if pick < s.refusal_map or s.rubric == 0:
            return prompts.refusal_map_prompt(self.sweep.position, rng), True
        return prompts.rubric_prompt(leaf, rng), False


def cast(
    scenario: Scenario,
    accounts: list[SimAccount],
    start_ms: int,
    proxy_pools: dict[str, list[tuple[str, int]]] | None = None,
) -> list[OrganicActor | CampaignActor]:
    """An actor for every account, configured from the scenario."""

    def at(seconds: float) -> int:
        return start_ms + int(seconds * 1000)

    launch = (
        (scenario.launch.model, at(scenario.launch.at_s), scenario.launch.organic_adoption) if scenario.launch else None
    )
    models = list(scenario.models)
    organic_corpus = prompts.Corpus(scenario.organic.corpus) if scenario.organic.corpus else None
    spec_organic = scenario.organic
    texts = _organic_texts(scenario)
    shape = ArrivalShape.traced("azure_conv") if spec_organic.traced else None
    sessions = 1 - 1 / spec_organic.session_requests
    extra = scenario.lookalikes
    campaigns = {c.name: c for c in scenario.campaigns}
    sweeps = {name: prompts.CapabilitySweep() for name in campaigns}
    corpora = {c.name: prompts.Corpus(c.corpus) for c in scenario.campaigns if c.corpus}
    # Each controller walks its datasets in its own order (seeded by the campaign, not the stream).
    harvests = {
        c.name: Sweep(TextMix.of(c.text), random.Random(f"{scenario.seed}:{c.name}"))
        for c in scenario.campaigns
        if c.text
    }
    amplitude = scenario.organic.diurnal_amplitude
    batch_templates = 0
    visible = scenario.gateway.account_created
    wide = residential_asns(scenario.residential_asns)
    members: Counter[str] = Counter()
    actors: list[OrganicActor | CampaignActor] = []
    for account in accounts:
        if account.klass == "campaign":
            spec = campaigns[str(account.campaign)]
            index = members[spec.name]
            members[spec.name] += 1
            actors.append(
                CampaignActor(
                    account, models, launch, visible, spec=spec, sweep=sweeps[spec.name], start_ms=account.active_ms,
                    end_ms=at(spec.end_s if spec.end_s is not None else scenario.duration_s),
                    pivot_ms=at(spec.pivot.at_s) if spec.pivot else 0,
                    limit=math.floor(scenario.rate_limit(spec)), corpus=corpora.get(spec.name),
                    organic_corpus=organic_corpus, pool=(proxy_pools or {}).get(spec.name, []),
                    harvest=harvests.get(spec.name), organic_text=texts(None) if texts else None,
                    residential_asns=wide, phase=index / spec.accounts, campaign_start_ms=at(spec.start_s),
                    period_ms=MINUTE_MS / min(spec.rate_per_min, scenario.rate_limit(spec) * 0.9),
                )
            )  # fmt: skip
            continue
        actor = OrganicActor(
            account, models, launch, visible, profile=Diurnal(account.rate_per_min, amplitude, shape=shape),
            follow_up=scenario.organic.follow_up_probability, corpus=organic_corpus,
            text=texts(account.domain) if texts else None, session_continue=sessions,
            think_ms=spec_organic.think_time_s * 1000,
            sizes=RequestSizes.traced("azure_code" if account.domain == "code" else "azure_conv")
            if spec_organic.traced else None,
        )  # fmt: skip
        if account.klass == "viral_launch" and extra.viral_launch:
            v = extra.viral_launch
            actor.profile = Diurnal(
                account.rate_per_min, amplitude, at(v.at_s), max(int(v.ramp_s * 1000), 1), v.factor, shape
            )
        elif account.klass == "enterprise_batch" and extra.enterprise_batch:
            b = extra.enterprise_batch
            actor.profile = Runs(b.rate_per_min, at(b.first_run_s), int(b.run_s * 1000), int(b.every_s * 1000))
            actor.style, actor.session_continue = "batch", 0.0
            actor.batch_template = prompts.BATCH_TEMPLATES[batch_templates % len(prompts.BATCH_TEMPLATES)]
            batch_templates += 1
        elif account.klass == "eval_harness" and extra.eval_harness:
            h = extra.eval_harness
            every = int(h.every_s * 1000) if h.every_s is not None else None
            actor.profile = Runs(h.rate_per_min, at(h.at_s), int(h.run_s * 1000), every)
            actor.style, actor.session_continue = "harness", 0.0
        elif account.klass == "researcher":
            actor.style = "researcher"
        elif account.klass == "app_backend":
            # One call per request from a backend: no sittings, hardly any follow-up turns.
            actor.follow_up, actor.session_continue = 0.05, 0.0
        elif account.klass == "synthetic_data" and extra.synthetic_data:
            j = extra.synthetic_data
            actor.profile = Runs(j.rate_per_min, at(j.first_run_s), int(j.run_s * 1000), int(j.every_s * 1000))
            actor.style, actor.session_continue = "synthetic", 0.0
        elif account.klass == "student" and extra.students:
            c = extra.students
            actor.profile = Runs(c.rate_per_min, at(c.first_run_s), int(c.run_s * 1000), int(c.every_s * 1000))
            actor.style = "student"
        actors.append(actor)
    return actors


def _organic_texts(scenario: Scenario) -> Callable[[str | None], RealText] | None:
    """Real text for organic accounts by their org's leaning pool (None: the world's mix alone)."""
    weights = scenario.organic.text
    if weights is None:
        return None
    world = TextMix.of({name: w for name, w in weights.items() if not name.startswith("follow_ups")})
    follow_ups, probes = TextMix.of({"follow_ups": 1.0}), TextMix.of({"refusal": 1.0})
    # One benchmark order for every harness, as one public suite is run by all who run it.
    benchmarks = Sweep(TextMix.of(BENCHMARK_MIX), random.Random(f"{scenario.seed}:benchmarks"))
    leans: dict[str | None, TextMix | None] = {None: None}

    def text(domain: str | None) -> RealText:
        if domain not in leans:
            leans[domain] = world.only(domain) if domain in world.names else None
        return RealText(world, leans[domain], follow_ups, probes, benchmarks)

    return text
