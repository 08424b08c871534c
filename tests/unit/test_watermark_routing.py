"""What served whom: the gateway's watermark fields, the opt-out, the key registry, cohorts and canaries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from extractguard.contracts.schemas import validate
from extractguard_gateway.events import ObservedRequest, build
from extractguard_gateway.sketch import completion_bands, minhash_similarity, sketch_completion, sketch_prompt
from extractguard_gateway.watermark import AppliedWatermark, NoWatermark, strip_watermark_opt_out, unmarked_reason
from extractguard_gateway.watermark_pools import (
    CanaryAssignment,
    KeyEntry,
    KeyRegistry,
    NoCanaryPoolFree,
    Pool,
    RegistryError,
    assign_canary,
    cohort_registry,
    registry_from_json,
    route,
)

DAY_MS = 86_400_000
T0 = 1_796_000_000_000


def test_a_client_cannot_switch_its_watermark_off_unless_trusted() -> None:
    body = {"model": "m", "watermarking": False, "vllm_xargs": {"watermarking": False, "top_k": 5}}
    cleaned, stripped = strip_watermark_opt_out(body, trusted=False)
    assert stripped and "watermarking" not in cleaned and cleaned["vllm_xargs"] == {"top_k": 5}
    assert body["watermarking"] is False  # the caller's body is not changed under it
    assert strip_watermark_opt_out(body, trusted=True) == (body, False)
    # Asking *for* the watermark is not an opt-out, and nothing else is touched.
    assert strip_watermark_opt_out({"model": "m", "watermarking": True}, trusted=False) == (
        {"model": "m", "watermarking": True},
        False,
    )


@pytest.mark.parametrize(
    ("temperature", "beam", "opted_out", "engine", "reason"),
    [
        (0.7, False, False, True, None),
        (0.0, False, False, True, "greedy"),
        (0.7, True, False, True, "beam_search"),
        (0.7, False, True, True, "opted_out"),
        (0.0, False, True, False, "engine_without"),
        (None, False, False, True, None),  # the engine's default temperature samples
    ],
)
def test_why_a_response_is_unmarked(
    temperature: float | None, beam: bool, opted_out: bool, engine: bool, reason: str | None
) -> None:
    found = unmarked_reason(temperature=temperature, beam_search=beam, opted_out=opted_out, engine_watermarks=engine)
    assert found == reason


def _request(**fields: object) -> ObservedRequest:
    return ObservedRequest("acct-1", "m", T0, 10, 200, 50, **fields)  # type: ignore[arg-type]


def test_the_event_records_the_key_id_and_the_completion_sketch_never_the_text() -> None:
    completion = "Paris is the capital of France and sits on the Seine river."
    built = build(
        _request(completion=completion, watermark=AppliedWatermark("vllm", "gumbel", "philox", 4, "wm-c07")), b"secret"
    )
    event = built.event
    assert not built.dropped
    assert event["watermark"] == {
        "applied": True,
        "engine": "vllm",
        "algorithm": "gumbel",
        "prf": "philox",
        "context_width": 4,
        "key_id": "wm-c07",
    }
    sketch = event["completion_sketch"]
    assert sketch["minhash"] == sketch_completion(completion).minhash
    assert sketch["bands"] == completion_bands(sketch["minhash"])
    assert "Paris" not in json.dumps(event)
    assert validate("gateway_event", event)["watermark"]["key_id"] == "wm-c07"
    unmarked = build(_request(watermark=NoWatermark("greedy", "vllm")), b"secret").event
    assert validate("gateway_event", unmarked)["watermark"] == {
        "applied": False,
        "unmarked_reason": "greedy",
        "engine": "vllm",
    }


def test_a_bad_watermark_field_costs_that_field_not_the_event() -> None:
    built = build(_request(watermark=AppliedWatermark("vllm", "gumbel", "philox", 4, "key id with spaces")), b"s")
    assert "watermark" not in built.event and ("watermark", "schema_violation") in built.dropped


def test_completion_sketches_are_the_prompt_sketch_s_minhash() -> None:
    text = "a heat pump moves heat rather than making it from fuel"
    assert sketch_completion(text).minhash == sketch_prompt(text).minhash
    edited = sketch_completion("a heat pump moves heat rather than making it from electricity")
    assert minhash_similarity(sketch_completion(text).minhash, edited.minhash) > 0.5
    assert set(sketch_completion(text).bands) & set(edited.bands)


def test_cohorts_spread_accounts_and_a_key_id_plus_a_time_gives_the_pool() -> None:
    registry = cohort_registry(16, starts_ms=T0)
    pools = [route(registry, (), f"acct-{i}", T0 + 1).pool for i in range(3200)]
    counts = {p: pools.count(p) for p in set(pools)}
    assert len(counts) == 16 and min(counts.values()) > 120  # 200 expected each
    r = route(registry, (), "acct-9", T0 + 5)
    assert r.key_id is not None and registry.key(r.key_id).pool == r.pool
    assert route(registry, (), "acct-9", T0 - 1).key_id is None  # before any key: served unmarked


def test_a_canary_gives_one_campaign_a_key_no_other_campaign_receives() -> None:
    registry = cohort_registry(4, starts_ms=T0, canaries=2)
    first = assign_canary(registry, (), "cmp-a", ["a1", "a2"], at_ms=T0, ttl_ms=DAY_MS)
    second = assign_canary(registry, [first], "cmp-b", ["b1"], at_ms=T0 + 10, ttl_ms=DAY_MS)
    assert first.pool != second.pool and first.key_id != second.key_id
    with pytest.raises(NoCanaryPoolFree):
        assign_canary(registry, [first, second], "cmp-c", ["c1"], at_ms=T0 + 20, ttl_ms=DAY_MS)
    grown = assign_canary(registry, [first, second], "cmp-a", ["a3"], at_ms=T0 + 30, ttl_ms=DAY_MS)
    assert grown.pool == first.pool and grown.accounts == {"a1", "a2", "a3"}
    canaries = [grown, second]
    served = {a: route(registry, canaries, a, T0 + 40) for a in ["a1", "a3", "b1", "organic"]}
    assert served["a1"].key_id == served["a3"].key_id == first.key_id and served["a1"].canary_campaign == "cmp-a"
    assert served["b1"].key_id == second.key_id
    assert served["organic"].pool.startswith("cohort-") and served["organic"].canary_campaign is None
    assert CanaryAssignment.from_json(grown.as_json()) == grown
    # A canary pool whose key expires before the canary would end is not used.
    short = KeyRegistry(
        (Pool("cohort-00", "cohort", "s0"), Pool("canary-00", "canary", "c0")),
        (
            KeyEntry("k0", "cohort-00", "vllm", "gumbel", "philox", 4, T0),
            KeyEntry("k1", "canary-00", "vllm", "gumbel", "philox", 4, T0, T0 + DAY_MS // 2),
        ),
    )
    with pytest.raises(NoCanaryPoolFree):
        assign_canary(short, (), "cmp-a", ["a1"], at_ms=T0, ttl_ms=DAY_MS)


def test_the_registry_refuses_keys_overlaps_and_unknown_pools() -> None:
    document = cohort_registry(2, starts_ms=T0).as_json()
    assert registry_from_json(document) == cohort_registry(2, starts_ms=T0)
    with pytest.raises(RegistryError, match="secret store"):
        registry_from_json({**document, "keys": [{**document["keys"][0], "key": "0x1234"}]})
    overlapping = {**document, "keys": [*document["keys"], {**document["keys"][0], "key_id": "wm-again"}]}
    with pytest.raises(RegistryError, match="overlap"):
        registry_from_json(overlapping)
    with pytest.raises(RegistryError, match="unknown pool"):
        registry_from_json({**document, "keys": [{**document["keys"][0], "pool": "nowhere"}]})
    with pytest.raises(RegistryError, match="zone"):
        registry_from_json({**document, "keys": [{**document["keys"][0], "valid_from": "2026-12-01T00:00:00"}]})


def test_the_stream_services_never_import_the_watermark_audit() -> None:
    # torch (vllm's backend) and tokenizers are the audit's alone: a stream worker must not load them.
    code = (
        "import sys\n"
        "import extractguard.cli, extractguard.detection.app, extractguard.campaigns.app, extractguard.lander.service\n"
        "import extractguard.ingest.app, extractguard.alerting.service, extractguard_gateway.sender\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'tokenizers', 'vllm'}\n"
        "               or m.startswith('extractguard.watermark.') and m != 'extractguard.watermark.commands')\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=Path.cwd())
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
