"""`extractguard bouncer envoy`: Envoy's external authorization (envoy.service.auth.v3) and Rate
Limit Service (envoy.service.ratelimit.v3) over the decisions, one gRPC server for both.

Both answer from the same local decision cache (`extractguard_gateway.enforcement`), fed in the
background from `enforcement.decisions`: no network call per request.

- ext_authz: the request's identity is its account (the header `EXTRACTGUARD_ENVOY_ACCOUNT_HEADER`,
  set by whatever authenticated it upstream), its API key (from `Authorization: Bearer …`,
  keyed-hashed as the gateway SDK hashes a key) and its client /24 or /48 (the nearest untrusted
  hop of `X-Forwarded-For`, else the peer). An admitted request is OK (with the annotations of an
  `annotate` effect as `x-extractguard-*` headers); a refused one is denied with 429 and
  `Retry-After`, 401 and a challenge body, or 403, each with a JSON body.
- RLS: each descriptor is read as an identity from its entries (`account`, `api_key` (the raw
  key, hashed here), `api_key_hash`, `ip_prefix` or `remote_address`); a throttled descriptor is
  OVER_LIMIT on the requests its rate factor refuses, a suspended or challenged one always (RLS
  can only say over-limit: use ext_authz for the 401 and 403 answers).

Needs the `envoy` extra: `pip install 'extractguard[envoy]'` (grpcio and xds-protos, which ships
Envoy's generated protos).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from concurrent import futures
from types import FrameType
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc
from envoy.type.v3 import http_status_pb2
from google.rpc import code_pb2, status_pb2

from extractguard import metrics
from extractguard.health import HealthServer, PollHealth
from extractguard.logs import configure
from extractguard.settings import EnvoyBouncerSettings, KafkaSettings
from extractguard_gateway.addresses import client_address, trusted_networks
from extractguard_gateway.enforcement.cache import DecisionCache, Identity, Verdict
from extractguard_gateway.enforcement.feed import DecisionFeed
from extractguard_gateway.enforcement.identity import prefix_of
from extractguard_gateway.events import api_key_hash

SERVICE = "envoy-bouncer"
log = configure(SERVICE)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _header(key: str, value: str) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=key, value=value))


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else value.strip() or None


class EnvoyBouncer(external_auth_pb2_grpc.AuthorizationServicer, rls_pb2_grpc.RateLimitServiceServicer):
    def __init__(self, cache: DecisionCache, settings: EnvoyBouncerSettings) -> None:
        self.cache = cache
        self.settings = settings
        self.secret = settings.key_secret.get_secret_value().encode()
        self.trusted = trusted_networks(settings.trusted_proxies)

    def _unavailable(self) -> bool:
        return not self.cache.ready.is_set() and not self.settings.fail_open

    # -- ext_authz ----------------------------------------------------------------------------
    def identity_of_check(self, request: external_auth_pb2.CheckRequest) -> Identity:
        http = request.attributes.request.http
        headers = {k.lower(): v for k, v in http.headers.items()}
        for entry in http.header_map.headers:  # Envoy sends one of the two maps
            headers.setdefault(entry.key.lower(), entry.value or entry.raw_value.decode("utf-8", "replace"))
        key = _bearer(headers.get(self.settings.api_key_header.lower()))
        peer = request.attributes.source.address.socket_address.address or None
        return Identity(
            account=headers.get(self.settings.account_header.lower()) or None,
            api_key=api_key_hash(key, self.secret) if key else None,
            ip_prefix=prefix_of(client_address(headers.get("x-forwarded-for"), peer, self.trusted)),
        )

    def Check(self, request: external_auth_pb2.CheckRequest, context: Any) -> external_auth_pb2.CheckResponse:
        if self._unavailable():
            body = {"error": {"type": "enforcement_unavailable", "message": "decisions not loaded yet"}}
            verdict = Verdict(503, "unavailable", None, {"Retry-After": "5"}, body)
        else:
            verdict = self.cache.verdict(self.identity_of_check(request), _now_ms())
        metrics.BOUNCER_REQUESTS.labels("envoy_ext_authz", verdict.outcome).inc()
        if verdict.admitted:
            headers = [_header(f"x-extractguard-{k.replace('_', '-')}", v) for k, v in verdict.annotations.items()]
            return external_auth_pb2.CheckResponse(
                status=status_pb2.Status(code=code_pb2.OK),
                ok_response=external_auth_pb2.OkHttpResponse(headers=headers),
            )
        headers = [_header(k, v) for k, v in verdict.headers.items()] + [_header("content-type", "application/json")]
        return external_auth_pb2.CheckResponse(
            status=status_pb2.Status(code=code_pb2.PERMISSION_DENIED),
            denied_response=external_auth_pb2.DeniedHttpResponse(
                status=http_status_pb2.HttpStatus(code=verdict.status),
                headers=headers,
                body=json.dumps(verdict.body),
            ),
        )

    # -- RLS ----------------------------------------------------------------------------------
    def identity_of_descriptor(self, entries: dict[str, str]) -> Identity:
        key = entries.get("api_key")
        address = entries.get("remote_address")
        return Identity(
            account=entries.get("account"),
            api_key=entries.get("api_key_hash") or (api_key_hash(key, self.secret) if key else None),
            org=entries.get("org"),
            ip_prefix=entries.get("ip_prefix") or prefix_of(address),
        )

    def ShouldRateLimit(self, request: rls_pb2.RateLimitRequest, context: Any) -> rls_pb2.RateLimitResponse:
        over = rls_pb2.RateLimitResponse.OVER_LIMIT
        ok = rls_pb2.RateLimitResponse.OK
        statuses = []
        retry_after: int | None = None
        for descriptor in request.descriptors:
            entries = {entry.key: entry.value for entry in descriptor.entries}
            if self._unavailable():
                code = over
            else:
                verdict = self.cache.verdict(self.identity_of_descriptor(entries), _now_ms())
                metrics.BOUNCER_REQUESTS.labels("envoy_ratelimit", verdict.outcome).inc()
                code = ok if verdict.admitted else over
                if not verdict.admitted and verdict.decision is not None:
                    seconds = verdict.decision.effect.retry_after_s
                    retry_after = seconds if retry_after is None else max(retry_after, seconds)
            statuses.append(rls_pb2.RateLimitResponse.DescriptorStatus(code=code))
        overall = over if any(s.code == over for s in statuses) else ok
        # RLS takes bare header values here (ext_authz takes header value options).
        headers = [base_pb2.HeaderValue(key="retry-after", value=str(retry_after))] if retry_after is not None else []
        return rls_pb2.RateLimitResponse(overall_code=overall, statuses=statuses, response_headers_to_add=headers)


def serve(bouncer: EnvoyBouncer, host: str, port: int, workers: int = 8) -> grpc.Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(bouncer, server)
    rls_pb2_grpc.add_RateLimitServiceServicer_to_server(bouncer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise RuntimeError(f"could not listen on {host}:{port}")
    server.start()
    return server


def run() -> None:
    settings = EnvoyBouncerSettings()
    kafka = KafkaSettings()
    cache = DecisionCache()
    feed = DecisionFeed(
        cache, kafka.bootstrap_servers, bouncer="envoy", report_interval_s=settings.report_interval_s,
        client_config={k: v for k, v in kafka.client_config().items() if k != "bootstrap.servers"},
    ).start()  # fmt: skip
    health = PollHealth(SERVICE, max_silence_s=120)
    stopped = threading.Event()

    def beat() -> None:  # ready once the cache is warm; alive while the feed thread runs
        while not stopped.wait(5 if cache.ready.is_set() else 0.5):
            if cache.ready.is_set() and feed.alive():
                health.beat()

    threading.Thread(target=beat, name="health-beat", daemon=True).start()
    server = serve(EnvoyBouncer(cache, settings), settings.host, settings.port)
    web = HealthServer(health, settings.web_host, settings.web_port)
    web.start()
    log.info("envoy_bouncer_listening", host=settings.host, port=settings.port)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stopped.wait()
    server.stop(5).wait()
    web.stop()
    feed.stop()
