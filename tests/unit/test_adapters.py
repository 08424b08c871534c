"""Every gateway adapter in the registry, over the golden payloads of its product
(schemas/examples/adapters/<name>/): each payload lands as valid gateway events, absent stays
absent, and a payload of another shape is refused as unreadable, never half-read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from extractguard.contracts.schemas import validate_gateway_event
from extractguard.ingest.receivers import PROTOBUF, decode_payload
from extractguard.paths import schemas_dir
from extractguard_gateway.adapters import ADAPTERS, AdapterSettings, UnreadablePayload
from extractguard_gateway.addresses import trusted_networks
from extractguard_gateway.events import build, keyed_hash
from extractguard_gateway.sketch import sketch_completion

SECRET = b"adapter-test"
SETTINGS = AdapterSettings(trusted_proxies=trusted_networks("10.0.0.0/8"), extra={"key_secret": SECRET})


def _goldens(name: str) -> list[Path]:
    return sorted((schemas_dir() / "examples" / "adapters" / name).iterdir())


def _document(path: Path) -> Any:
    if path.suffix == ".pb":
        route = "/otlp/v1/logs" if "logs" in path.name else "/otlp/v1/traces"
        return decode_payload(route, path.read_bytes(), PROTOBUF)
    return orjson.loads(path.read_bytes())


def _events(name: str, path: Path) -> list[dict[str, Any]]:
    events = []
    for observation in ADAPTERS[name](SETTINGS).observations(_document(path)):
        built = build(observation, SECRET)
        assert built.dropped == [], (path.name, built.dropped)
        events.append(built.event)
    return events


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_every_golden_payload_lands_as_valid_events(name: str) -> None:
    goldens = _goldens(name)
    assert goldens, f"no golden payloads for adapter {name}"
    for path in goldens:
        events = _events(name, path)
        assert events, f"{path.name} gave no events"
        for event in events:
            validated = validate_gateway_event(orjson.dumps(event), max_event_bytes=16_384, max_clock_skew_s=10**9)
            assert validated["schema_version"] == 2
            # Absent is absent: no stand-in values for what the product does not know.
            assert event.get("client_asn") != 0 and event.get("org_id") != ""
            assert all(value is not None for value in event.values())


@pytest.mark.parametrize("name", sorted(ADAPTERS))
@pytest.mark.parametrize("payload", [{}, [], "text", 12, {"unrelated": True}])
def test_a_payload_of_another_shape_is_unreadable(name: str, payload: Any) -> None:
    with pytest.raises(UnreadablePayload):
        ADAPTERS[name](SETTINGS).observations(payload)


def test_registry_names_are_the_adapters_own() -> None:
    assert set(ADAPTERS) == {"litellm", "otel_genai", "kong_http_log"}
    assert all(adapter.name == name for name, adapter in ADAPTERS.items())


def _one(name: str, file: str) -> dict[str, Any]:
    (event,) = _events(name, schemas_dir() / "examples" / "adapters" / name / file)
    return event


def test_litellm_attribution_address_and_end_user() -> None:
    event = _one("litellm", "success_master_key_forwarded.json")
    assert event["account_id"] == "default_user_id"  # the key's user, as LiteLLM attributes it
    assert "org_id" not in event and "client_asn" not in event
    assert event["client_ip_prefix"] == "198.51.100.0/24"  # the chain walked past the trusted 10.0.0.2
    assert event["end_user_id"] == keyed_hash("end-user-42", SECRET)  # client-asserted: hashed, low trust
    assert (event["user_agent"], event["sdk_name"]) == ("openai-python/1.54.0", "openai-python")
    assert event["request_logprobs"] and event["request_top_logprobs"] == 5 and event["request_max_tokens"] == 64
    assert event["prompt_sketch"]["length_chars"] == len('Translate "good morning" into French, item 12.')
    assert "good morning" not in orjson.dumps(event).decode()
    # The completion is sketched like the prompt (for the watermark audit's matching), never sent.
    completion = _payload_completion("success_master_key_forwarded.json")
    assert event["completion_sketch"]["minhash"] == sketch_completion(completion).minhash
    assert completion[:20] not in orjson.dumps(event).decode()


def _payload_completion(name: str) -> str:
    payload = orjson.loads((_goldens("litellm")[0].parent / name).read_bytes())
    return str(payload["response"]["choices"][0]["message"]["content"])


def test_litellm_failures_are_events_with_their_status() -> None:
    refused = _one("litellm", "failure_unknown_key.json")
    assert refused["response_status"] == 400 and refused["response_finish_reason"] == "error"
    assert refused["account_id"].startswith("key:")  # no user or team: the (keyed-hashed) key
    assert "client_ip_prefix" not in refused and "user_agent" not in refused
    assert _one("litellm", "failure_invalid_model.json")["request_model"] == "nonexistent"


def test_otel_reads_current_gen_ai_names_and_leaves_the_sketch_absent_without_content() -> None:
    logs = _one("otel_genai", "envoy_ai_gateway_logs.json")
    assert logs == _one("otel_genai", "envoy_ai_gateway_logs.pb")  # both OTLP encodings, one reading
    assert (logs["account_id"], logs["provider_name"]) == ("tenant-7f3a", "openai")
    assert (logs["reasoning_output_tokens"], logs["cache_read_input_tokens"]) == (960, 128)
    assert logs["latency_ms"] == 1842 and "prompt_sketch" not in logs
    spans = _one("otel_genai", "envoy_ai_gateway_spans.json")
    assert spans == _one("otel_genai", "envoy_ai_gateway_spans.pb")
    assert spans["client_ip_prefix"] == "198.51.100.0/24" and spans["cache_creation_input_tokens"] == 2048
    assert spans["prompt_sketch"]["cot_elicitation"] is True  # gen_ai.input.messages recorded: sketched


def test_kong_consumer_tokens_and_cache() -> None:
    logged = _one("kong_http_log", "ai_proxy_with_payload.json")
    assert logged["account_id"] == "8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b"
    assert (logged["input_tokens"], logged["output_tokens"], logged["cache_hit"]) == (28, 20, False)
    assert logged["request_logprobs"] and "prompt_sketch" in logged
    anonymous = _one("kong_http_log", "ai_proxy_no_consumer_no_payload.json")
    assert anonymous["account_id"] == "unauthenticated" and anonymous["cache_hit"] is True
    assert anonymous["client_ip_prefix"] == "2001:db8:abcd::/48" and "prompt_sketch" not in anonymous
    assert len(_events("kong_http_log", schemas_dir() / "examples/adapters/kong_http_log/batch_of_two.json")) == 1
