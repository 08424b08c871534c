"""Prompt sketches: what links related prompts, and proof that no text leaves the gateway."""

from __future__ import annotations

import orjson

from extractguard.gateway.events import ObservedRequest, build_event
from extractguard.gateway.sketch import minhash_similarity, sketch_prompt, template_skeleton


def test_slot_filled_prompts_share_a_template_and_different_templates_do_not() -> None:
    a = sketch_prompt('Summarise order 1234 for "Ann Lee" at https://shop.example/o/1234')
    b = sketch_prompt('Summarise order 98 for "Bob" at https://shop.example/o/98')
    c = sketch_prompt("Write a poem about the sea")
    assert a.template_hash == b.template_hash
    assert a.template_hash != c.template_hash
    assert "<num>" in template_skeleton("item 42") and "42" not in template_skeleton("item 42")


def test_minhash_separates_near_duplicates_from_unrelated_prompts() -> None:
    base = "You are an expert in tax law. Solve the following problem and explain your reasoning step by step."
    near = "You are an expert in tax law. Solve the following problem and explain all your reasoning step by step."
    other = "What is a good name for a golden retriever puppy who loves the beach?"
    assert minhash_similarity(sketch_prompt(base).minhash, sketch_prompt(near).minhash) > 0.5
    assert minhash_similarity(sketch_prompt(base).minhash, sketch_prompt(other).minhash) < 0.2


def test_sketches_are_identical_across_calls() -> None:
    # Gateways in different processes must agree, or nothing downstream can link their traffic.
    assert sketch_prompt("same prompt here") == sketch_prompt("same prompt here")


def test_the_event_carries_no_prompt_text_and_no_api_key() -> None:
    secret_words = "zebracorn quintessential marmalade"
    request = ObservedRequest(
        account_id="acct-1", org_id="org-1", api_key="sk-live-verysecret", client_ip="198.51.100.9",
        client_asn=64500, request_model="m", prompt=f"Tell me about {secret_words}", event_time_ms=1_795_000_000_000,
        input_tokens=10, output_tokens=20, latency_ms=100,
    )  # fmt: skip
    encoded = orjson.dumps(build_event(request, b"k")).decode()
    for word in [*secret_words.split(), "sk-live-verysecret", "198.51.100.9"]:
        assert word not in encoded
    assert '"client_ip_prefix":"198.51.100.0/24"' in encoded
