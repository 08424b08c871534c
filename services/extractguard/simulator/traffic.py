"""The simulated request stream, in event-time order, with ground truth.

Organic accounts arrive as Poisson processes at their own (heavy-tailed) rates and hold
multi-turn conversations; campaign accounts start together, send single-turn, output-heavy,
logprobs-harvesting requests at a machine-regular cadence, each under the per-account limit.

>>> scenario = Scenario(organic_accounts=20, campaign_accounts=10, duration_s=600, campaign_start_s=300)
>>> stream = list(generate(scenario, start_ms=1_700_000_000_000))
>>> times = [r.event_time_ms for _, r in stream]
>>> times == sorted(times)
True
>>> {a.label for a, _ in stream} == {"organic", "campaign"}
True
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from extractguard.gateway.events import ObservedRequest
from extractguard.simulator.population import SimAccount, campaign_accounts, organic_accounts
from extractguard.simulator.prompts import campaign_prompt, organic_prompt

MODELS = ["guard-large-2", "guard-small-2"]


@dataclass(frozen=True, slots=True)
class Scenario:
    """What to simulate; `Scenario.from_yaml` reads one from a file (see `scenarios/`)."""

    name: str = "demo"
    organic_accounts: int = 600
    campaign_accounts: int = 300
    campaign_rate_per_min: float = 4.0
    rate_limit_per_min: float = 10.0
    duration_s: float = 1200.0
    campaign_start_s: float = 420.0
    seed: int = 7

    @classmethod
    def from_yaml(cls, path: Path) -> Scenario:
        raw = yaml.safe_load(path.read_text()) or {}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{path}: unknown scenario settings {unknown}; known: {sorted(known)}")
        return cls(**raw)


def _event_id(rng: random.Random) -> str:
    # From the scenario's generator, not uuid4: the same seed must give the same stream, byte for byte.
    return f"{rng.getrandbits(128):032x}"


def _organic_request(account: SimAccount, ts: int, rng: random.Random, turn: int, conv: str) -> ObservedRequest:
    return ObservedRequest(
        account_id=account.account_id, org_id=account.org_id, api_key=account.api_key,
        client_ip=account.ip, client_asn=account.asn, request_model=rng.choice(MODELS),
        prompt=organic_prompt(account.domain, rng), event_time_ms=ts,
        input_tokens=rng.randint(40, 900) + 150 * turn, output_tokens=rng.randint(30, 600),
        latency_ms=rng.randint(300, 4000), account_created_ms=account.created_ms,
        user_agent=account.user_agent, tls_ja4=account.ja4, sdk_name=account.sdk,
        conversation_id=conv, turn_index=turn, max_tokens=rng.choice([None, 512, 1024]), event_id=_event_id(rng),
        temperature=rng.choice([None, 0.7, 1.0]), logprobs=rng.random() < 0.01,
        finish_reason="stop", refusal=rng.random() < 0.01,
    )  # fmt: skip


def _campaign_request(account: SimAccount, ts: int, rng: random.Random) -> ObservedRequest:
    output = rng.randint(1500, 4000)
    logprobs = rng.random() < 0.7
    return ObservedRequest(
        account_id=account.account_id, org_id=account.org_id, api_key=account.api_key,
        client_ip=account.ip, client_asn=account.asn, request_model=MODELS[0],
        prompt=campaign_prompt(rng), event_time_ms=ts, input_tokens=rng.randint(60, 160),
        output_tokens=output, latency_ms=rng.randint(8000, 30000), account_created_ms=account.created_ms,
        user_agent=account.user_agent, tls_ja4=account.ja4, sdk_name=account.sdk,
        conversation_id=None, turn_index=0, max_tokens=4096, temperature=rng.choice([0.0, 1.0]),
        logprobs=logprobs, top_logprobs=5 if logprobs else 0, event_id=_event_id(rng),
        finish_reason="length" if output >= 4000 else "stop",
    )  # fmt: skip


def population(scenario: Scenario, start_ms: int) -> tuple[list[SimAccount], list[SimAccount]]:
    rng = random.Random(scenario.seed)
    rate = min(scenario.campaign_rate_per_min, scenario.rate_limit_per_min * 0.9)
    return (
        organic_accounts(scenario.organic_accounts, rng, start_ms),
        campaign_accounts(scenario.campaign_accounts, rng, start_ms, rate),
    )


def generate(scenario: Scenario, start_ms: int) -> Iterator[tuple[SimAccount, ObservedRequest]]:
    """Every request of the scenario, ordered by event time."""
    organic, campaign = population(scenario, start_ms)
    rng = random.Random(scenario.seed + 1)
    end_ms = start_ms + int(scenario.duration_s * 1000)
    campaign_start = start_ms + int(scenario.campaign_start_s * 1000)
    # (next event time, tie-breaker, account index, is_campaign)
    queue: list[tuple[int, int, int, bool]] = []
    for i, account in enumerate(organic):
        heapq.heappush(queue, (start_ms + int(rng.expovariate(account.rate_per_min / 60_000)), i, i, False))
    for i, account in enumerate(campaign):
        first = campaign_start + int(rng.uniform(0, 60_000 / account.rate_per_min))
        heapq.heappush(queue, (first, len(organic) + i, i, True))
    conversations: dict[int, tuple[str, int]] = {}
    sequence = len(organic) + len(campaign)
    while queue:
        ts, _, index, is_campaign = heapq.heappop(queue)
        if ts >= end_ms:
            continue
        if is_campaign:
            account = campaign[index]
            yield account, _campaign_request(account, ts, rng)
            # Machine-regular cadence with a little jitter.
            gap = 60_000 / account.rate_per_min * rng.uniform(0.9, 1.1)
        else:
            account = organic[index]
            conv, turn = conversations.get(index, (f"conv-{index}-0", -1))
            if turn >= 0 and rng.random() < 0.6:
                turn += 1
            else:
                conv, turn = f"conv-{index}-{ts}", 0
            conversations[index] = (conv, turn)
            yield account, _organic_request(account, ts, rng, turn, conv)
            gap = rng.expovariate(account.rate_per_min / 60_000)
        sequence += 1
        heapq.heappush(queue, (ts + max(int(gap), 1), sequence, index, is_campaign))
