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

Needs the `envoy` extra: `pip install 'extractguard[envoy]'`: grpcio for the server, and Envoy's
messages from envoy-data-plane (generated from Envoy's data-plane API, namespaced under
`envoy_data_plane`). Not xds-protos: it ships its own copy of `opentelemetry.proto`, which would
overwrite the one the OTLP receiver reads. The two services are served through grpcio's generic
handlers under Envoy's own method names, the messages (de)serialised by envoy-data-plane.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import warnings
from concurrent import futures
from types import FrameType
from typing import Any

import grpc

from extractguard import metrics
from extractguard.health import HealthServer, PollHealth
from extractguard.logs import configure
from extractguard.settings import EnvoyBouncerSettings, KafkaSettings
from extractguard_gateway.addresses import client_address, trusted_networks
from extractguard_gateway.enforcement.cache import DecisionCache, Identity, Verdict
from extractguard_gateway.enforcement.feed import DecisionFeed
from extractguard_gateway.enforcement.identity import prefix_of
from extractguard_gateway.events import api_key_hash

with warnings.catch_warnings():  # envoy-data-plane's generated validators warn of a pydantic deprecation
    warnings.simplefilter("ignore", DeprecationWarning)
    from envoy_data_plane.envoy.config.core.v3 import HeaderValue, HeaderValueOption
    from envoy_data_plane.envoy.service.auth.v3 import CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse
    from envoy_data_plane.envoy.service.ratelimit.v3 import (
        RateLimitRequest,
        RateLimitResponse,
        RateLimitResponseCode,
        RateLimitResponseDescriptorStatus,
    )
    from envoy_data_plane.envoy.type.v3 import HttpStatus, StatusCode
    from envoy_data_plane.google.rpc import Status

SERVICE = "envoy-bouncer"
log = configure(SERVICE)


def _now_ms() -> int:
    return int(time.time() * 1000)


#: google.rpc.Code values (google/rpc/code.proto).
_OK, _PERMISSION_DENIED = 0, 7
AUTHORIZATION = "envoy.service.auth.v3.Authorization"
RATE_LIMIT_SERVICE = "envoy.service.ratelimit.v3.RateLimitService"


def _header(key: str, value: str) -> HeaderValueOption:
    return HeaderValueOption(header=HeaderValue(key=key, value=value))


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else value.strip() or None


class EnvoyBouncer:
    def __init__(self, cache: DecisionCache, settings: EnvoyBouncerSettings) -> None:
        self.cache = cache
        self.settings = settings
        self.secret = settings.key_secret.get_secret_value().encode()
        self.trusted = trusted_networks(settings.trusted_proxies)

    def _unavailable(self) -> bool:
        return not self.cache.ready.is_set() and not self.settings.fail_open

    # -- ext_authz ----------------------------------------------------------------------------
    def identity_of_check(self, request: CheckRequest) -> Identity:
        attributes = request.attributes
        http = attributes.request.http if attributes and attributes.request else None
        headers = {k.lower(): v for k, v in (http.headers if http else {}).items()}
        for entry in http.header_map.headers if http and http.header_map else []:  # Envoy sends one of the two
            headers.setdefault(entry.key.lower(), entry.value or entry.raw_value.decode("utf-8", "replace"))
        key = _bearer(headers.get(self.settings.api_key_header.lower()))
        source = attributes.source if attributes else None
        socket = source.address.socket_address if source and source.address else None
        peer = socket.address if socket and socket.address else None
        return Identity(
            account=headers.get(self.settings.account_header.lower()) or None,
            api_key=api_key_hash(key, self.secret) if key else None,
            ip_prefix=prefix_of(client_address(headers.get("x-forwarded-for"), peer, self.trusted)),
        )

    def check(self, request: CheckRequest, context: Any = None) -> CheckResponse:
        if self._unavailable():
            body = {"error": {"type": "enforcement_unavailable", "message": "decisions not loaded yet"}}
            verdict = Verdict(503, "unavailable", None, {"Retry-After": "5"}, body)
        else:
            verdict = self.cache.verdict(self.identity_of_check(request), _now_ms())
        metrics.BOUNCER_REQUESTS.labels("envoy_ext_authz", verdict.outcome).inc()
        if verdict.admitted:
            headers = [_header(f"x-extractguard-{k.replace('_', '-')}", v) for k, v in verdict.annotations.items()]
            return CheckResponse(status=Status(code=_OK), ok_response=OkHttpResponse(headers=headers))
        headers = [_header(k, v) for k, v in verdict.headers.items()] + [_header("content-type", "application/json")]
        return CheckResponse(
            status=Status(code=_PERMISSION_DENIED),
            denied_response=DeniedHttpResponse(
                status=HttpStatus(code=StatusCode(verdict.status)), headers=headers, body=json.dumps(verdict.body)
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

    def should_rate_limit(self, request: RateLimitRequest, context: Any = None) -> RateLimitResponse:
        over = RateLimitResponseCode.OVER_LIMIT
        ok = RateLimitResponseCode.OK
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
            statuses.append(RateLimitResponseDescriptorStatus(code=code))
        overall = over if any(s.code == over for s in statuses) else ok
        # RLS takes bare header values here (ext_authz takes header value options).
        headers = [HeaderValue(key="retry-after", value=str(retry_after))] if retry_after is not None else []
        return RateLimitResponse(overall_code=overall, statuses=statuses, response_headers_to_add=headers)


def serve(bouncer: EnvoyBouncer, host: str, port: int, workers: int = 8) -> grpc.Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    check = grpc.unary_unary_rpc_method_handler(
        bouncer.check, request_deserializer=CheckRequest.FromString, response_serializer=CheckResponse.SerializeToString
    )
    limit = grpc.unary_unary_rpc_method_handler(
        bouncer.should_rate_limit,
        request_deserializer=RateLimitRequest.FromString,
        response_serializer=RateLimitResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(AUTHORIZATION, {"Check": check}),
            grpc.method_handlers_generic_handler(RATE_LIMIT_SERVICE, {"ShouldRateLimit": limit}),
        ]
    )
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
