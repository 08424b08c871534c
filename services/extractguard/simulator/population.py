"""Who sends traffic: organic accounts (heavy-tailed rates, varied infrastructure) and a campaign
(many light accounts behind one proxy pool, one client fingerprint, shared templates)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from extractguard.simulator.prompts import ORGANIC_DOMAINS

ORGANIC_JA4 = [
    "t13d1516h2_8daaf6152771_02713d6af862",
    "t13d1517h2_8daaf6152771_b0da82dd1658",
    "t13d1715h2_5b57614c22b0_3d5424432f57",
]
ORGANIC_AGENTS = [
    ("openai-python/1.54.0", "openai-python"),
    ("anthropic-sdk-ts/0.30", "anthropic-ts"),
    ("Mozilla/5.0 (Macintosh) Chrome/131", "browser"),
    ("langchain/0.3.7", "langchain"),
]
ORGANIC_ASNS = [7922, 3320, 12322, 2856, 16509, 15169, 8075, 5089, 3215, 701]
CAMPAIGN_ASN = 209588
CAMPAIGN_JA4 = "t13d3112h2_e8f1e7e78f70_6bebaf5329ac"


@dataclass(frozen=True, slots=True)
class SimAccount:
    account_id: str
    org_id: str
    api_key: str
    label: str  # "organic" or "campaign"
    domain: str
    ip: str
    asn: int
    ja4: str
    user_agent: str
    sdk: str
    rate_per_min: float
    created_ms: int


def organic_accounts(count: int, rng: random.Random, now_ms: int) -> list[SimAccount]:
    accounts = []
    orgs = max(count // 12, 1)
    domains = list(ORGANIC_DOMAINS)
    for i in range(count):
        org = rng.randrange(orgs)
        agent, sdk = rng.choice(ORGANIC_AGENTS)
        accounts.append(
            SimAccount(
                account_id=f"acct-o{i:05d}",
                org_id=f"org-o{org:04d}",
                api_key=f"sk-organic-{i}",
                label="organic",
                domain=domains[org % len(domains)],
                ip=f"{rng.randint(11, 180)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                asn=rng.choice(ORGANIC_ASNS),
                ja4=rng.choice(ORGANIC_JA4),
                user_agent=agent,
                sdk=sdk,
                # Heavy-tailed: most accounts are light, a few are busy.
                rate_per_min=min(rng.lognormvariate(-0.5, 1.0), 12.0),
                created_ms=now_ms - rng.randint(30, 900) * 86_400_000,
            )
        )
    return accounts


def campaign_accounts(count: int, rng: random.Random, now_ms: int, rate_per_min: float) -> list[SimAccount]:
    # One actor: four proxy /24s in one hosting ASN, one client fingerprint, accounts made in a wave.
    prefixes = [f"185.220.{100 + p}" for p in range(4)]
    return [
        SimAccount(
            account_id=f"acct-c{i:05d}",
            org_id=f"org-c{i:05d}",  # each account its own fresh org, as signup farms do
            api_key=f"sk-campaign-{i}",
            label="campaign",
            domain="extraction",
            ip=f"{prefixes[i % len(prefixes)]}.{rng.randint(1, 254)}",
            asn=CAMPAIGN_ASN,
            ja4=CAMPAIGN_JA4,
            user_agent="python-httpx/0.27.0",
            sdk="httpx",
            rate_per_min=rate_per_min * rng.uniform(0.8, 1.0),
            created_ms=now_ms - rng.randint(1, 48) * 3_600_000,
        )
        for i in range(count)
    ]
