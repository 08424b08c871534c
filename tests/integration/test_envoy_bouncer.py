"""The Envoy bouncer over gRPC, spoken to by clients built from Envoy's own protos
(envoy-data-plane's sync stubs over grpcio):
ext_authz answers an honest request OK, a suspended account 403, a throttled API key 429 with
Retry-After on the share its rate factor refuses, a challenged account 401 with a challenge body,
a suspended IP prefix 403 whoever sends from it; the RLS answers OVER_LIMIT per descriptor. No
Envoy binary is on this machine; these are the messages Envoy sends and reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

grpc = pytest.importorskip("grpc", reason="the envoy extra is not installed: pip install 'extractguard[envoy]'")
pytest.importorskip("envoy_data_plane", reason="envoy-data-plane is not installed: pip install 'extractguard[envoy]'")

from envoy_data_plane.envoy.config.core.v3 import Address, SocketAddress  # noqa: E402
from envoy_data_plane.envoy.extensions.common.ratelimit.v3 import (  # noqa: E402
    RateLimitDescriptor,
    RateLimitDescriptorEntry,
)
from envoy_data_plane.envoy.service.auth.v3 import (  # noqa: E402
    AttributeContext,
    AttributeContextHttpRequest,
    AttributeContextPeer,
    AttributeContextRequest,
    AuthorizationSyncStub,
    CheckRequest,
    CheckResponse,
)
from envoy_data_plane.envoy.service.ratelimit.v3 import (  # noqa: E402
    RateLimitRequest,
    RateLimitResponse,
    RateLimitResponseCode,
    RateLimitServiceSyncStub,
)

from extractguard.enforcement.envoy import EnvoyBouncer, serve  # noqa: E402
from extractguard.settings import EnvoyBouncerSettings  # noqa: E402
from extractguard_gateway.enforcement.cache import DecisionCache  # noqa: E402
from extractguard_gateway.events import api_key_hash  # noqa: E402
from tests.integration.conftest import free_port  # noqa: E402

SECRET = "envoy-test-secret"


def _decision(n: int, scope: str, entity: str, action: str, **effect: Any) -> dict[str, Any]:
    return {"decision_id": f"dec-{n:016x}", "scope": scope, "entity": entity, "action": action, "status": "active",
            "expires_at_ms": 2**62, "updated_at_ms": 1, "effect": effect}  # fmt: skip


@pytest.fixture
def channel() -> Iterator[Any]:
    cache = DecisionCache()
    for decision in (
        _decision(1, "account", "acct-suspended", "suspend", kind="deny", message="suspended"),
        _decision(2, "api_key", api_key_hash("sk-throttled", SECRET.encode()), "throttle", kind="limit",
                  rate_factor=0.5, retry_after_s=9),
        _decision(3, "account", "acct-challenged", "challenge", kind="challenge",
                  challenge={"verify_url": "https://verify.example/x"}),
        _decision(4, "ip_prefix", "198.51.100.0/24", "suspend", kind="deny"),
        _decision(5, "account", "acct-canary", "watermark_canary", kind="annotate",
                  annotations={"watermark_pool": "wm-7"}),
    ):  # fmt: skip
        cache.apply(decision)
    cache.ready.set()
    port = free_port()
    settings = EnvoyBouncerSettings(port=port, key_secret=SECRET, trusted_proxies="10.0.0.0/8")  # type: ignore[arg-type]
    server = serve(EnvoyBouncer(cache, settings), "127.0.0.1", port)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as opened:
        yield opened
    server.stop(1).wait()


def _check(channel: Any, headers: dict[str, str], peer: str = "10.0.0.1") -> CheckResponse:
    request = CheckRequest(
        attributes=AttributeContext(
            source=AttributeContextPeer(address=Address(socket_address=SocketAddress(address=peer, port_value=4242))),
            request=AttributeContextRequest(
                http=AttributeContextHttpRequest(method="POST", path="/v1/chat/completions", headers=headers)
            ),
        )
    )
    return AuthorizationSyncStub(channel).check(request)


def _status(response: CheckResponse) -> int:
    return 200 if response.ok_response is not None else int(response.denied_response.status.code)


def test_ext_authz_answers_each_decision_with_its_own_http_answer(channel: Any) -> None:
    honest = {"authorization": "Bearer sk-honest", "x-extractguard-account": "acct-ok",
              "x-forwarded-for": "203.0.113.7, 10.0.0.2"}  # fmt: skip
    assert _status(_check(channel, honest)) == 200
    suspended = _check(channel, {**honest, "x-extractguard-account": "acct-suspended"})
    assert _status(suspended) == 403
    assert json.loads(suspended.denied_response.body)["error"]["type"] == "suspended"
    throttled = [_check(channel, {**honest, "authorization": "Bearer sk-throttled"}) for _ in range(4)]
    assert [_status(r) for r in throttled] == [429, 200, 429, 200]
    retry = {h.header.key: h.header.value for h in throttled[0].denied_response.headers}
    assert retry["Retry-After"] == "9"
    challenged = _check(channel, {**honest, "x-extractguard-account": "acct-challenged"})
    assert _status(challenged) == 401
    assert json.loads(challenged.denied_response.body)["error"]["challenge"]["verify_url"] == "https://verify.example/x"
    # The IP prefix: from the nearest untrusted hop, whoever the account.
    assert _status(_check(channel, {**honest, "x-forwarded-for": "198.51.100.20, 10.0.0.2"})) == 403
    assert _status(_check(channel, {"x-extractguard-account": "acct-ok"}, peer="198.51.100.99")) == 403
    canary = _check(channel, {**honest, "x-extractguard-account": "acct-canary"})
    assert _status(canary) == 200
    assert {h.header.key: h.header.value for h in canary.ok_response.headers} == {
        "x-extractguard-watermark-pool": "wm-7"
    }


def test_the_rate_limit_service_answers_per_descriptor(channel: Any) -> None:
    stub = RateLimitServiceSyncStub(channel)

    def ask(*descriptors: dict[str, str]) -> RateLimitResponse:
        return stub.should_rate_limit(RateLimitRequest(domain="llm", descriptors=[
            RateLimitDescriptor(entries=[RateLimitDescriptorEntry(key=k, value=v) for k, v in d.items()])
            for d in descriptors
        ]))  # fmt: skip

    ok, over = RateLimitResponseCode.OK, RateLimitResponseCode.OVER_LIMIT
    assert ask({"account": "acct-ok"}).overall_code == ok
    answer = ask({"account": "acct-ok"}, {"account": "acct-suspended"})
    assert answer.overall_code == over and [s.code for s in answer.statuses] == [ok, over]
    throttled = [ask({"api_key": "sk-throttled"}).overall_code for _ in range(4)]
    assert throttled == [over, ok, over, ok]
    hashed = api_key_hash("sk-throttled", SECRET.encode())
    assert ask({"api_key_hash": hashed}).overall_code == over
    assert ask({"remote_address": "198.51.100.3"}).overall_code == over
    refused = ask({"api_key": "sk-throttled"})
    if refused.overall_code == ok:
        refused = ask({"api_key": "sk-throttled"})
    assert {h.key: h.value for h in refused.response_headers_to_add} == {"retry-after": "9"}
