"""What a simulation holds: the organic world, its hard look-alikes, and the extraction campaigns.

A scenario is a YAML file (see `scenarios/`); every setting has a default, unknown settings are an
error that names them, and the seed makes the stream reproducible. Times are seconds from the
scenario's start; rates are requests per minute.

>>> s = Scenario.model_validate({"name": "x", "campaigns": [{"name": "c", "accounts": 10}]})
>>> s.rate_limit(s.campaigns[0]) == s.rate_limit_per_min
True
>>> try:
...     Scenario.model_validate({"campaigns": [{"name": "c", "accounts": 1, "acounts": 2}]})
... except ValidationError as error:
...     print(error.errors()[0]["loc"], error.errors()[0]["type"])
('campaigns', 0, 'acounts') extra_forbidden
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from extractguard.simulator.clients import CLIENTS
from extractguard.simulator.corpora import TextMix

Seconds = Annotated[float, Field(ge=0)]
PerMinute = Annotated[float, Field(gt=0)]
Share = Annotated[float, Field(ge=0, le=1)]
#: Weights of prompt pools (`pool` or `pool/source+source`, see `simulator.corpora`).
TextWeights = dict[str, Annotated[float, Field(ge=0)]]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrganicSpec(_Spec):
    """The ordinary population: orgs with narrow application domains, heavy-tailed account rates."""

    accounts: int = Field(default=600, ge=0)
    accounts_per_org: float = Field(default=12.0, ge=1)
    rate_median_per_min: PerMinute = 0.6
    rate_sigma: float = Field(default=1.0, ge=0, description="Log-normal sigma of account rates: the tail.")
    rate_max_per_min: PerMinute = 12.0
    app_org_share: Share = Field(default=0.4, description="Orgs that call from an app backend in a cloud.")
    diurnal_amplitude: Share = Field(default=0.5, description="0 = flat; busiest at 15:00 UTC.")
    follow_up_probability: Share = 0.6
    corpus: Path | None = Field(default=None, description="JSONL of {'text': ...} prompts to draw from.")
    text: TextWeights | None = Field(
        default=None,
        description="Draw prompts from the real corpora (`scenarios/corpora`): pool weights such as "
        "{chat: 0.5, code: 0.2}; each org leans to one pool. Look-alikes then draw real text too: "
        "researchers from `refusal`, evaluation harnesses from public benchmarks, follow-ups from `follow_ups`.",
    )
    traced: bool = Field(
        default=False,
        description="Request sizes (context, generated tokens) and the minute-scale shape of arrivals from the "
        "real Azure LLM traces, instead of uniform sizes and a smooth rate.",
    )
    session_requests: float = Field(
        default=1.0,
        ge=1,
        description="Mean requests a person sends per sitting (geometric); 1 = every request on its own, as before.",
    )
    think_time_s: float = Field(default=45.0, gt=0, description="Median pause between requests of one sitting.")
    clients: Literal["classic", "commodity"] = Field(
        default="classic",
        description="commodity: the client stacks real API traffic is made of (the OpenAI SDKs, httpx, requests, "
        "aiohttp, LangChain, curl, browsers), shared by everyone, campaigns included.",
    )
    client_zipf: float = Field(
        default=0.0,
        ge=0,
        description="0 = every client (SDK, browser, TLS stack) equally common; s > 0 = Zipf weights 1/rank^s, "
        "so one client dominates as openai-python does in real API traffic.",
    )


class ViralLaunch(_Spec):
    """A legitimate app whose traffic jumps `factor` times within `ramp_s`, then stays there."""

    accounts: int = Field(default=30, ge=1)
    rate_per_min: PerMinute = 0.5
    at_s: Seconds = 3600
    ramp_s: Seconds = 3600
    factor: float = Field(default=20.0, ge=1)


class EnterpriseBatch(_Spec):
    """One org's scheduled batch job: high steady volume of one templated prompt from one subnet."""

    accounts: int = Field(default=4, ge=1)
    rate_per_min: PerMinute = 30.0
    first_run_s: Seconds = 1800
    every_s: float = Field(default=86_400, gt=0)
    run_s: float = Field(default=3600, gt=0)


class EvalHarness(_Spec):
    """A benchmark run: systematic prompts across the capability list, temperature 0, logprobs."""

    accounts: int = Field(default=2, ge=1)
    rate_per_min: PerMinute = 40.0
    at_s: Seconds = 5400
    run_s: float = Field(default=3600, gt=0)
    every_s: float | None = Field(default=None, gt=0, description="Run again every so often (a nightly suite).")


class Researchers(_Spec):
    """Red-teamers probing refusals at small volume."""

    accounts: int = Field(default=6, ge=1)
    rate_per_min: PerMinute = 0.3


class SyntheticData(_Spec):
    """A legitimate data-generation job: one org asking for long, reasoned answers to public instructions,
    single-turn, from one cloud subnet, for hours a day — distillation's honest twin."""

    accounts: int = Field(default=3, ge=1)
    rate_per_min: PerMinute = 2.0
    first_run_s: Seconds = 3600
    every_s: float = Field(default=86_400, gt=0)
    run_s: float = Field(default=6 * 3600, gt=0)


class Students(_Spec):
    """A class on one campus network, all on one browser, first seen in the same hour and asking maths and
    reasoning questions step by step during the class, every day."""

    accounts: int = Field(default=120, ge=1)
    rate_per_min: PerMinute = 0.1
    first_run_s: Seconds = 32_400
    every_s: float = Field(default=86_400, gt=0)
    run_s: float = Field(default=2 * 3600, gt=0)


class Reseller(_Spec):
    """A router org fronting many unrelated end customers from a few egress addresses."""

    accounts: int = Field(default=120, ge=1)
    rate_median_per_min: PerMinute = 0.3
    egress_prefixes: int = Field(default=2, ge=1)
    end_user_accounts: int = Field(
        default=0,
        ge=0,
        description="0: each end customer is an account of its own; N: every customer (and a campaign via the "
        "reseller) is an end user of one of the reseller's N accounts, and the gateway passes a hashed end-user id.",
    )


class LookAlikes(_Spec):
    """The legitimate traffic that naive extraction detectors flag; each is absent unless set."""

    viral_launch: ViralLaunch | None = None
    enterprise_batch: EnterpriseBatch | None = None
    eval_harness: EvalHarness | None = None
    researchers: Researchers | None = None
    reseller: Reseller | None = None
    synthetic_data: SyntheticData | None = None
    students: Students | None = None


class ProxyPool(_Spec):
    prefixes: int = Field(default=4, ge=1, description="/24 prefixes the campaign's addresses come from.")
    asns: list[int] = Field(default_factory=lambda: [209588], min_length=1)
    residential: bool = Field(default=False, description="Addresses spread over residential ISPs' ranges.")
    rotate_probability: Share = Field(default=0.0, description="Chance a request leaves from a new address.")


class Fingerprint(_Spec):
    user_agents: list[str] = Field(default_factory=lambda: ["python-httpx/0.27.0"], min_length=1)
    sdk: str = "httpx"
    ja4_pool: int = Field(default=1, ge=1, description="Distinct TLS fingerprints across the fleet.")
    clients: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Commodity client stacks (names in `population.CLIENTS`) the accounts pick from: the same "
        "user agent, SDK and TLS fingerprint as every organic user of that stack.",
    )
    mimic_organic: bool = Field(default=False, description="Draw fingerprints from organic clients instead.")
    mimic_top_organic: bool = Field(
        default=False,
        description="Every account uses the organic population's most common (user agent, SDK, JA4): "
        "an attacker who knows which client hides best.",
    )


class Strategies(_Spec):
    """Weights of the prompt strategies (normalised), and request-shape probabilities."""

    self_instruct: float = Field(default=0.3, ge=0)
    templated: float = Field(default=0.4, ge=0)
    paraphrase: float = Field(default=0.2, ge=0)
    refusal_probe: float = Field(default=0.1, ge=0)
    refusal_map: float = Field(default=0.0, ge=0, description="Systematic sweep of refusal boundaries.")
    rubric: float = Field(default=0.0, ge=0, description="Grading/rubric and reasoning-trace harvesting.")
    refusal_rate: Share = Field(default=0.0, description="Chance a refusal probe or boundary-map prompt is refused.")
    cot: Share = Field(default=0.6, description="Chance a prompt asks for step-by-step reasoning.")
    logprobs: Share = 0.7
    logit_bias: Share = 0.0
    max_output: Share = Field(default=0.8, description="Chance a request asks for the longest answer.")

    @property
    def total_weight(self) -> float:
        # In this order: older scenarios (the last two 0) must draw exactly as before.
        plain = self.self_instruct + self.templated + self.paraphrase + self.refusal_probe
        return plain + self.refusal_map + self.rubric

    @model_validator(mode="after")
    def _some_weight(self) -> Strategies:
        if self.total_weight <= 0:
            raise ValueError("at least one prompt strategy needs a positive weight")
        return self


class Evasion(_Spec):
    paraphrase_rate: Share = Field(default=0.0, description="Prompts reworded so their template differs.")
    camouflage: Share = Field(default=0.0, description="Share of organic-looking prompts mixed in.")
    pacing_jitter: Share = Field(default=0.1, description="0 = metronome, 1 = Poisson like a person.")
    via_reseller: bool = Field(default=False, description="Accounts are end customers of the reseller org.")
    aged_accounts: Share = Field(default=0.0, description="Share of bought or taken-over accounts months old.")


class Pivot(_Spec):
    """Move a share of the campaign's traffic to a newly launched model."""

    at_s: Seconds
    model: str = "guard-large-3"
    share: Share = 0.5


class CampaignSpec(_Spec):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    kind: str | None = Field(
        default=None,
        max_length=64,
        description="What the scorecard's done-when criteria judge it as (hydra, low_and_slow, ...); default: name.",
    )
    accounts: int = Field(ge=1)
    start_s: Seconds = 420
    end_s: Seconds | None = None
    rate_per_min: PerMinute = 4.0
    rate_limit_per_min: float | None = Field(default=None, gt=0, description="Defaults to the scenario's.")
    signup_waves: int = Field(default=1, ge=1)
    wave_interval_s: Seconds = 1800
    proxy: ProxyPool = Field(default_factory=ProxyPool)
    fingerprint: Fingerprint = Field(default_factory=Fingerprint)
    strategies: Strategies = Field(default_factory=Strategies)
    evasion: Evasion = Field(default_factory=Evasion)
    pivot: Pivot | None = None
    corpus: Path | None = None
    text: TextWeights | None = Field(
        default=None,
        description="Harvest the real corpora: pool weights; the controller walks each dataset item by item. "
        "Refusal-pool items are framed as boundary probes at the `refusal_map` share of the strategies.",
    )
    dispatch: Literal["independent", "round_robin"] = Field(
        default="independent",
        description="independent: each account paces itself; round_robin: a controller hands work to its accounts "
        "in turn like a load balancer, so account i of N sends at phase i/N of every period.",
    )

    @property
    def judged_as(self) -> str:
        return self.kind or self.name


class ModelLaunch(_Spec):
    model: str = "guard-large-3"
    at_s: Seconds = 3600
    organic_adoption: Share = Field(default=0.05, description="Share of organic requests that try it.")


class Gateway(_Spec):
    """What the gateway in front of the API passes on, which real ones differ in."""

    account_created: bool = Field(
        default=True, description="False: the gateway knows no signup time; every event omits account_created_ms."
    )


class Scenario(_Spec):
    """What to simulate; `Scenario.from_yaml` reads one from a file (see `scenarios/`).

    A file may say `extends: other.yaml` (relative to itself): the other file's top-level settings
    are the defaults, and the file's own replace them whole, so several scenarios can share one
    organic world and differ only in their campaigns.
    """

    name: str = Field(default="demo", min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    seed: int = 7
    duration_s: float = Field(default=1200.0, gt=0)
    start_hour_utc: float = Field(default=9.0, ge=0, lt=24, description="Time of day the scenario starts.")
    rate_limit_per_min: PerMinute = 10.0
    models: list[str] = Field(default_factory=lambda: ["guard-large-2", "guard-small-2"], min_length=1)
    launch: ModelLaunch | None = None
    gateway: Gateway = Field(default_factory=Gateway)
    residential_asns: int = Field(
        default=10,
        ge=1,
        le=64,
        description="How many residential ISPs' ASNs home users and residential proxies come from (both alike).",
    )
    organic: OrganicSpec = Field(default_factory=OrganicSpec)
    lookalikes: LookAlikes = Field(default_factory=LookAlikes)
    campaigns: list[CampaignSpec] = Field(default_factory=lambda: [CampaignSpec(name="campaign", accounts=300)])

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        names = [c.name for c in self.campaigns]
        if len(set(names)) != len(names):
            raise ValueError(f"campaign names must be unique, got {names}")
        known = set(CLIENTS)
        for campaign in self.campaigns:
            unknown = set(campaign.fingerprint.clients or ()) - known
            if unknown:
                raise ValueError(f"campaign {campaign.name}: unknown clients {sorted(unknown)}; known: {sorted(known)}")
        for weights in [self.organic.text, *(c.text for c in self.campaigns)]:
            if weights is not None:
                TextMix.of(weights)  # names an unknown pool or source now, not mid-replay
        for campaign in self.campaigns:
            if campaign.evasion.via_reseller and self.lookalikes.reseller is None:
                raise ValueError(f"campaign {campaign.name} routes via a reseller, but lookalikes.reseller is not set")
        return self

    def rate_limit(self, campaign: CampaignSpec) -> float:
        """The per-account limit a campaign's accounts stay under."""
        return campaign.rate_limit_per_min or self.rate_limit_per_min

    @classmethod
    def from_yaml(cls, path: Path) -> Scenario:
        raw = _load_extended(path, ())
        try:
            scenario = cls.model_validate(raw)
        except ValidationError as error:
            raise ValueError(f"{path}: {error}") from None
        return scenario.with_paths_relative_to(path.parent)

    def with_paths_relative_to(self, base: Path) -> Scenario:
        """Corpus paths in a file are relative to that file."""

        def resolve(path: Path | None) -> Path | None:
            return path if path is None or path.is_absolute() else base / path

        organic = self.organic.model_copy(update={"corpus": resolve(self.organic.corpus)})
        campaigns = [c.model_copy(update={"corpus": resolve(c.corpus)}) for c in self.campaigns]
        return self.model_copy(update={"organic": organic, "campaigns": campaigns})

    @property
    def duration_days(self) -> float:
        return self.duration_s / 86_400

    @property
    def campaign_accounts(self) -> int:
        return sum(c.accounts for c in self.campaigns)

    @property
    def organic_accounts(self) -> int:
        extra = self.lookalikes
        return self.organic.accounts + sum(
            spec.accounts
            for spec in (
                extra.viral_launch,
                extra.enterprise_batch,
                extra.eval_harness,
                extra.researchers,
                extra.reseller,
                extra.synthetic_data,
                extra.students,
            )
            if spec is not None
        )


def _load_extended(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """A scenario file's settings over those of the file it `extends`, recursively."""
    resolved = path.resolve()
    if resolved in seen:
        raise ValueError(f"{path}: 'extends' loops back to itself through {[str(p) for p in seen]}")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a scenario file holds a mapping of settings")
    base = raw.pop("extends", None)
    if base is None:
        return raw
    base_path = path.parent / str(base)
    if not base_path.is_file():
        raise ValueError(f"{path}: extends {base}, which is not a file")
    inherited = _load_extended(base_path, (*seen, resolved))
    # A corpus in the base file is relative to the base file.
    organic = inherited.get("organic")
    if isinstance(organic, dict) and organic.get("corpus") and not Path(organic["corpus"]).is_absolute():
        inherited["organic"] = {**organic, "corpus": str((base_path.parent / organic["corpus"]).resolve())}
    return {**inherited, **raw}
