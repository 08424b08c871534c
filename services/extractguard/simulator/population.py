"""Who sends traffic: accounts with their org, class, infrastructure and client fingerprint.

Organic orgs either call from an app backend (a cloud /24, one SDK) or are people on residential
networks with browsers and SDKs. Look-alike classes have the infrastructure that makes them look
suspicious (a reseller's few egress addresses, a batch job's one subnet). Campaign accounts are
fresh orgs created in signup waves behind a proxy pool, with one or a few client fingerprints,
or end customers of the reseller when they hide behind it.

Identifiers are opaque and drawn from the scenario's generator, as real ones are: nothing in an id
tells organic from campaign.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, replace
from typing import TypeVar

from extractguard.simulator.clients import CLIENTS, SERVER_CLIENTS
from extractguard.simulator.prompts import ORGANIC_DOMAINS
from extractguard.simulator.scenario import CampaignSpec, Scenario

_T = TypeVar("_T")

ORGANIC_JA4 = [
    "t13d1516h2_8daaf6152771_02713d6af862",
    "t13d1517h2_8daaf6152771_b0da82dd1658",
    "t13d1715h2_5b57614c22b0_3d5424432f57",
    "t13d1516h2_8daaf6152771_e5627efa2ab1",
]
ORGANIC_AGENTS = [
    ("openai-python/1.54.0", "openai-python"),
    ("anthropic-sdk-ts/0.30", "anthropic-ts"),
    ("Mozilla/5.0 (Macintosh) Chrome/131", "browser"),
    ("Mozilla/5.0 (Windows NT 10.0) Firefox/133", "browser"),
    ("langchain/0.3.7", "langchain"),
]
RESIDENTIAL_ASNS = [7922, 3320, 12322, 2856, 5089, 3215, 701, 6830, 4134, 9121]
#: Residential ISPs beyond the first ten, for worlds where home users (and the residential proxy
#: networks that resell their addresses) spread over many ASNs (`Scenario.residential_asns`).
MORE_RESIDENTIAL_ASNS = [
    7018,
    20115,
    22773,
    11427,
    6327,
    812,
    5650,
    1221,
    4837,
    4808,
    17676,
    2516,
    4713,
    9829,
    45609,
    55836,
    18881,
    26599,
    28573,
    8151,
    7303,
    27699,
    6739,
    3352,
    12479,
    3269,
    1136,
    6805,
    3301,
    5432,
    2119,
    8881,
    12389,
    8402,
    31213,
    9198,
    5607,
    7552,
    45899,
    17974,
    23969,
    9299,
    4766,
    9318,
    2018,
    36903,
    37457,
    36935,
    24560,
    38266,
    10620,
    27747,
    6147,
    1267,
]
CLOUD_ASNS = {16509: "3", 15169: "34", 8075: "20", 14061: "159", 24940: "95"}
UNIVERSITY_ASNS = [1103, 2200, 786]
COUNTRIES = ["US", "DE", "FR", "JP", "BR", "IN", "GB", "PL", "NG", "CA"]
RESELLER_AGENT = ("litellm/1.52.0", "litellm")
RESELLER_JA4 = "t13d1516h2_8daaf6152771_9a8f2e10c3d7"
CAMPAIGN_JA4S = [
    "t13d3112h2_e8f1e7e78f70_6bebaf5329ac",
    "t13d3112h2_e8f1e7e78f70_1f0a6e4b9c22",
    "t13d2914h2_a0e9f5d64349_6bebaf5329ac",
    "t13d3112h2_0f3c9a1e77b2_6bebaf5329ac",
]


@dataclass(frozen=True, slots=True)
class SimAccount:
    account_id: str
    org_id: str
    api_key: str
    label: str  # "organic" or "campaign": the ground truth
    klass: str  # organic class (regular, viral_launch, ...) or "campaign"
    campaign: str | None
    domain: str
    ip: str
    asn: int
    ja4: str
    user_agent: str
    sdk: str
    rate_per_min: float
    created_ms: int
    country: str
    active_ms: int = 0  # when it starts sending (a campaign's signup wave); 0 = from the start
    #: An end user of a reseller's account: (that account, its key, its signup time). The gateway
    #: then sees the reseller's account and key, and this account's id as the end-user id.
    via: tuple[str, str, int] | None = None


class Ids:
    """Opaque ids from the scenario's generator (same seed, same ids)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def account(self) -> str:
        return f"acct_{self.rng.getrandbits(64):016x}"

    def org(self) -> str:
        return f"org_{self.rng.getrandbits(48):012x}"

    def key(self) -> str:
        return f"sk-{self.rng.getrandbits(96):024x}"


def residential_asns(count: int = 10) -> list[int]:
    """The first `count` residential ASNs (ten: the historical set, so older scenarios draw alike)."""
    return (RESIDENTIAL_ASNS + MORE_RESIDENTIAL_ASNS)[:count]


def residential_ip(rng: random.Random, asns: list[int] = RESIDENTIAL_ASNS) -> tuple[str, int]:
    return f"{rng.randint(24, 180)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}", rng.choice(asns)


def _pick(rng: random.Random, options: list[_T], zipf: float) -> _T:
    """Uniform when `zipf` is 0 (the draw older scenarios made), else Zipf-weighted by position."""
    if zipf <= 0:
        return rng.choice(options)
    return rng.choices(options, weights=[1 / (rank**zipf) for rank in range(1, len(options) + 1)])[0]


def cloud_prefix(rng: random.Random) -> tuple[str, int]:
    asn = rng.choice(list(CLOUD_ASNS))
    return f"{CLOUD_ASNS[asn]}.{rng.randint(0, 255)}.{rng.randint(0, 255)}", asn


@dataclass(frozen=True, slots=True)
class Org:
    org_id: str
    domain: str
    app: bool
    prefixes: list[tuple[str, int]]
    agent: tuple[str, str]
    ja4: str
    country: str


class World:
    """Builds every account of a scenario, in a fixed order from one generator."""

    def __init__(self, scenario: Scenario, start_ms: int) -> None:
        self.scenario = scenario
        self.start_ms = start_ms
        self.rng = random.Random(scenario.seed)
        self.ids = Ids(self.rng)
        self._reseller: Org | None = None
        self._reseller_accounts: list[tuple[str, str, int]] = []
        #: Each campaign's proxy pool as (/24 prefix, ASN); empty for residential pools.
        self.proxy_pools: dict[str, list[tuple[str, int]]] = {}
        self.residential_asns = residential_asns(scenario.residential_asns)
        self.zipf = scenario.organic.client_zipf
        self.commodity = scenario.organic.clients == "commodity"
        #: (user agent, SDK, JA4) of every organic account made so far: what a mimic copies.
        self.organic_clients: Counter[tuple[str, str, str]] = Counter()

    def _residential(self) -> tuple[str, int]:
        return residential_ip(self.rng, self.residential_asns)

    def _org(self, domain: str | None = None, app: bool | None = None) -> Org:
        rng = self.rng
        is_app = rng.random() < self.scenario.organic.app_org_share if app is None else app
        org_id, domain = self.ids.org(), domain or self._domain()
        prefixes = [cloud_prefix(rng) for _ in range(rng.randint(1, 2))] if is_app else []
        if self.commodity:
            agent, ja4 = self._client(SERVER_CLIENTS if is_app else list(CLIENTS))
        else:
            agent = _pick(rng, ORGANIC_AGENTS[:2] + ORGANIC_AGENTS[4:] if is_app else ORGANIC_AGENTS, self.zipf)
            ja4 = _pick(rng, ORGANIC_JA4, self.zipf)
        return Org(org_id, domain, is_app, prefixes, agent, ja4, country=rng.choice(COUNTRIES))

    def _domain(self) -> str:
        """What an org's people or app ask about: an application domain, or a prompt pool of the real corpora."""
        text = self.scenario.organic.text
        if text is None:
            return self.rng.choice(list(ORGANIC_DOMAINS))
        # Follow-ups are turns of a conversation, never what an org is about.
        pools = sorted(name for name in text if not name.startswith("follow_ups"))
        return self.rng.choices(pools, weights=[text[name] for name in pools])[0]

    def _client(self, names: list[str]) -> tuple[tuple[str, str], str]:
        """A commodity client stack, most common first (Zipf by `client_zipf`): ((user agent, SDK), JA4)."""
        user_agent, sdk, ja4 = CLIENTS[_pick(self.rng, names, self.zipf)]
        return (user_agent, sdk), ja4

    def _member(self, org: Org, klass: str, rate: float, domain: str | None = None) -> SimAccount:
        rng = self.rng
        if org.prefixes:
            prefix, asn = rng.choice(org.prefixes)
            ip, agent, ja4 = f"{prefix}.{rng.randint(1, 254)}", org.agent, org.ja4
        else:
            ip, asn = self._residential()
            if self.commodity:
                agent, ja4 = self._client(list(CLIENTS))
            else:
                agent, ja4 = _pick(rng, ORGANIC_AGENTS, self.zipf), _pick(rng, ORGANIC_JA4, self.zipf)
        self.organic_clients[(agent[0], agent[1], ja4)] += 1
        return SimAccount(
            account_id=self.ids.account(), org_id=org.org_id, api_key=self.ids.key(), label="organic",
            klass=klass, campaign=None, domain=domain or org.domain, ip=ip, asn=asn, ja4=ja4,
            user_agent=agent[0], sdk=agent[1], rate_per_min=rate,
            created_ms=self.start_ms - rng.randint(30, 900) * 86_400_000, country=org.country,
        )  # fmt: skip

    def _members(self, org: Org, klass: str, rate: float, count: int) -> list[SimAccount]:
        return [self._member(org, klass, rate) for _ in range(count)]

    def organic(self) -> list[SimAccount]:
        spec = self.scenario.organic
        rng = self.rng
        orgs = [self._org() for _ in range(max(round(spec.accounts / spec.accounts_per_org), 1))]
        accounts = []
        for _ in range(spec.accounts):
            # Org sizes are skewed too: a few big customers, many small ones.
            org = orgs[min(int(rng.paretovariate(1.2)) - 1, len(orgs) - 1)] if rng.random() < 0.5 else rng.choice(orgs)
            # Heavy-tailed: most accounts are light, a few are busy.
            rate = min(rng.lognormvariate(math.log(spec.rate_median_per_min), spec.rate_sigma), spec.rate_max_per_min)
            # In a world of real text, an app's users reach the model through its backend, one call per
            # request: programmatic, single-turn traffic is ordinary there (see OrganicSpec.text).
            klass = "app_backend" if org.app and spec.text is not None else "regular"
            accounts.append(self._member(org, klass, rate))
        return accounts

    def lookalikes(self) -> list[SimAccount]:
        extra = self.scenario.lookalikes
        rng = self.rng
        accounts: list[SimAccount] = []
        if extra.viral_launch:
            org = self._org(app=True)
            accounts += self._members(org, "viral_launch", extra.viral_launch.rate_per_min, extra.viral_launch.accounts)
        if extra.enterprise_batch:
            org = self._org(domain="support", app=True)
            org = replace(org, prefixes=org.prefixes[:1])  # one subnet
            batch = extra.enterprise_batch
            accounts += self._members(org, "enterprise_batch", batch.rate_per_min, batch.accounts)
        if extra.eval_harness:
            org = self._org(app=True)
            accounts += self._members(org, "eval_harness", extra.eval_harness.rate_per_min, extra.eval_harness.accounts)
        if extra.researchers:
            for _ in range(extra.researchers.accounts):
                org = self._org(app=False)
                member = self._member(org, "researcher", extra.researchers.rate_per_min)
                ip = f"{rng.randint(128, 171)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
                accounts.append(replace(member, ip=ip, asn=rng.choice(UNIVERSITY_ASNS)))
        if extra.synthetic_data:
            org = self._org(domain="instructions", app=True)
            org = replace(org, prefixes=org.prefixes[:1])  # one subnet
            job = extra.synthetic_data
            accounts += self._members(org, "synthetic_data", job.rate_per_min, job.accounts)
        if extra.students:
            org = self._org(domain="math", app=False)
            campus = f"{rng.randint(128, 171)}.{rng.randint(0, 255)}"
            asn = rng.choice(UNIVERSITY_ASNS)
            for _ in range(extra.students.accounts):
                member = self._member(org, "student", extra.students.rate_per_min)
                ip = f"{campus}.{rng.randint(0, 3)}.{rng.randint(1, 254)}"
                user_agent, sdk, ja4 = CLIENTS["browser-chrome"]
                accounts.append(replace(member, ip=ip, asn=asn, user_agent=user_agent, sdk=sdk, ja4=ja4))
        if extra.reseller:
            org = self.reseller_org()
            spec = extra.reseller
            for _ in range(spec.accounts):
                rate = min(rng.lognormvariate(math.log(spec.rate_median_per_min), 1.0), 20.0)
                member = self._member(org, "reseller", rate, domain=rng.choice(list(ORGANIC_DOMAINS)))
                accounts.append(self._behind_reseller(member))
        return accounts

    def reseller_org(self) -> Org:
        """The reseller's org; made once, on first use, so campaigns hiding behind it share it."""
        if self._reseller is None:
            spec = self.scenario.lookalikes.reseller
            count = spec.egress_prefixes if spec else 1
            asn = 16509
            rng = self.rng
            prefixes = [(f"{CLOUD_ASNS[asn]}.{rng.randint(0, 255)}.{rng.randint(0, 255)}", asn) for _ in range(count)]
            self._reseller = Org(self.ids.org(), "mixed", True, prefixes, RESELLER_AGENT, RESELLER_JA4, "US")
            for _ in range(spec.end_user_accounts if spec else 0):
                created = self.start_ms - rng.randint(180, 900) * 86_400_000
                self._reseller_accounts.append((self.ids.account(), self.ids.key(), created))
        return self._reseller

    def _behind_reseller(self, account: SimAccount) -> SimAccount:
        """The account as an end user of one of the reseller's accounts, when it has them."""
        if not self._reseller_accounts:
            return account
        return replace(account, via=self.rng.choice(self._reseller_accounts))

    def everyone(self) -> list[SimAccount]:
        """Every account of the scenario: organic, look-alikes, then each campaign's."""
        accounts = self.organic() + self.lookalikes()
        for campaign in self.scenario.campaigns:
            accounts += self.campaign(campaign)
        return accounts

    def campaign(self, spec: CampaignSpec) -> list[SimAccount]:
        rng = self.rng
        proxy, fingerprint = spec.proxy, spec.fingerprint
        prefixes = [
            (f"{rng.randint(45, 217)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}", proxy.asns[p % len(proxy.asns)])
            for p in range(proxy.prefixes)
        ]
        self.proxy_pools[spec.name] = [] if proxy.residential else prefixes
        ja4s = ORGANIC_JA4 if fingerprint.mimic_organic else CAMPAIGN_JA4S[: fingerprint.ja4_pool]
        top_client = self.organic_clients.most_common(1)[0][0] if self.organic_clients else None
        reseller = self.reseller_org() if spec.evasion.via_reseller else None
        rate = min(spec.rate_per_min, self.scenario.rate_limit(spec) * 0.9)
        accounts = []
        for i in range(spec.accounts):
            wave = i * spec.signup_waves // spec.accounts
            activation_s = spec.start_s + wave * spec.wave_interval_s
            if reseller is not None:
                prefix, asn = rng.choice(reseller.prefixes)
                org_id, agent, ja4 = reseller.org_id, reseller.agent, reseller.ja4
            else:
                if proxy.residential:
                    ip, asn = self._residential()
                    prefix = ip.rsplit(".", 1)[0]
                else:
                    prefix, asn = rng.choice(prefixes)
                # Each account its own fresh org, as signup farms do.
                org_id = self.ids.org()
                agent = (rng.choice(fingerprint.user_agents), fingerprint.sdk)
                if fingerprint.mimic_organic:
                    agent = rng.choice(ORGANIC_AGENTS)
                ja4 = rng.choice(ja4s)
                if fingerprint.clients:
                    user_agent, sdk, ja4 = CLIENTS[rng.choice(fingerprint.clients)]
                    agent = (user_agent, sdk)
                if fingerprint.mimic_top_organic and top_client is not None:
                    agent, ja4 = (top_client[0], top_client[1]), top_client[2]
            if rng.random() < spec.evasion.aged_accounts:
                created = self.start_ms - rng.randint(60, 900) * 86_400_000  # bought, or taken over
            else:  # signed up shortly before its wave goes live
                created = self.start_ms + int(activation_s * 1000) - rng.randint(600, 4 * 3600) * 1000
            account = SimAccount(
                account_id=self.ids.account(), org_id=org_id, api_key=self.ids.key(), label="campaign",
                klass="campaign", campaign=spec.name, domain="extraction", ip=f"{prefix}.{rng.randint(1, 254)}",
                asn=asn, ja4=ja4, user_agent=agent[0], sdk=agent[1],
                rate_per_min=rate * rng.uniform(0.8, 1.0),
                created_ms=created,
                country=rng.choice(COUNTRIES), active_ms=self.start_ms + int(activation_s * 1000),
            )  # fmt: skip
            accounts.append(account if reseller is None else self._behind_reseller(account))
        return accounts
