"""The HTTP ingest service: validate each posted event, produce the valid, dead-letter the rest.

`POST /v1/events` takes NDJSON (one event per line) or a JSON array, with `Authorization: Bearer
<token>`. The answer lists every event by index as accepted or rejected with its reason, and is
sent only once Kafka has acknowledged both the accepted events and the dead letters, so a 200
means nothing the gateway sent can be lost. Bodies over `max_body_bytes` are refused with 413
before they are read.

Every POST first passes `guard_requests`: beyond `max_concurrent_requests` in progress it is
answered 503 with `Retry-After` at once (hundreds of connections cannot pile up work); a token
that names no gateway gets 401 before a byte of the body is read; a body that has not arrived
within `body_timeout_s` gets 408. Each gateway's token has its own rate limit (429 with
`Retry-After`, nothing of the request produced). `GET /openapi.json` describes the API.

`GET /v1/decisions` serves the enforcement decisions to bouncers under the same tokens, as a long
poll with resumable positions (`decision_feed.py`), for gateways that cannot reach the broker.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from extractguard import metrics
from extractguard.contracts.rejection import InvalidMessage, Reason
from extractguard.contracts.schemas import validate_gateway_event
from extractguard.contracts.topics import GATEWAY_EVENTS
from extractguard.gateway.partitioning import partition_for
from extractguard.gateway.publisher import EventPublisher
from extractguard.ingest.bouncer_reports import MAX_REPORTS_PER_REQUEST, publish_reports
from extractguard.ingest.decision_feed import DecisionLog, Follower, answer, follow_decisions
from extractguard.ingest.deliveries import Deliveries, dead_letter
from extractguard.ingest.openapi import openapi_document
from extractguard.ingest.rate_limits import GatewayRateLimits
from extractguard.ingest.receivers import add_receivers
from extractguard.ingest.tokens import GatewayTokens
from extractguard.logs import configure
from extractguard.settings import IngestSettings, KafkaSettings

SERVICE = "ingest"
log = configure(SERVICE)


class Publisher(Protocol):
    """What the ingest needs of `EventPublisher` (a test gives it a fake)."""

    partitions: int

    def produce_raw(self, topic: str, value: bytes, headers: Any, on_delivery: Any) -> None: ...

    def produce_envelope(self, partition: int, lines: list[bytes], key: str, on_delivery: Any) -> None: ...

    def poll(self, timeout: float) -> Any: ...

    def flush(self) -> Any: ...


PUBLISHER_KEY: web.AppKey[Publisher] = web.AppKey("publisher", Publisher)
SETTINGS_KEY: web.AppKey[IngestSettings] = web.AppKey("settings", IngestSettings)
TOKENS_KEY: web.AppKey[GatewayTokens] = web.AppKey("tokens", GatewayTokens)
LIMITS_KEY: web.AppKey[GatewayRateLimits] = web.AppKey("limits", GatewayRateLimits)
IN_FLIGHT_KEY: web.AppKey[list[int]] = web.AppKey("in_flight", list)
DECISIONS_KEY: web.AppKey[DecisionLog] = web.AppKey("decisions", DecisionLog)
GATEWAY: web.RequestKey[str] = web.RequestKey("gateway", str)  # whose token the request carries


def _refusal(code: str, detail: str, status: int, retry_after_s: int | None = None) -> web.Response:
    metrics.INGEST_REQUESTS_REFUSED.labels(code).inc()
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    return web.json_response({"error": {"code": code, "detail": detail}}, status=status, headers=headers)


@web.middleware
async def guard_requests(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Bound the work of every POST before its handler runs: load, token, body size and time."""
    if request.method != "POST":
        return await handler(request)
    settings = request.app[SETTINGS_KEY]
    in_flight = request.app[IN_FLIGHT_KEY]
    if in_flight[0] >= settings.max_concurrent_requests:
        return _refusal("overloaded", f"{in_flight[0]} requests in progress; retry", 503, retry_after_s=1)
    in_flight[0] += 1
    try:
        if not authorized(request):
            return _refusal("unauthorized", "missing or wrong bearer token", 401)
        if request.content_length is not None and request.content_length > settings.max_body_bytes:
            metrics.INGEST_REQUESTS_REFUSED.labels("body_too_large").inc()
            return _too_large(request.content_length, settings.max_body_bytes)
        try:
            await asyncio.wait_for(request.read(), timeout=settings.body_timeout_s)  # kept for the handler
        except TimeoutError:
            return _refusal("body_timeout", f"the body did not arrive within {settings.body_timeout_s:g}s", 408)
        except web.HTTPRequestEntityTooLarge:
            metrics.INGEST_REQUESTS_REFUSED.labels("body_too_large").inc()
            return _too_large(None, settings.max_body_bytes)
        return await handler(request)
    finally:
        in_flight[0] -= 1


def split_body(body: bytes, content_type: str) -> list[bytes]:
    """Cut a request body into the original bytes of each event."""
    if content_type == "application/json":
        stripped = body.lstrip()
        if stripped.startswith(b"["):
            try:
                items = orjson.loads(body)
            except orjson.JSONDecodeError:
                return [body]  # rejected as a whole below, with the parser's reason
            return [orjson.dumps(item) for item in items]
        return [body]
    return [line for line in body.split(b"\n") if line.strip()]


async def post_events(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    if not authorized(request):
        metrics.INGEST_REQUESTS_REFUSED.labels("unauthorized").inc()
        return web.json_response(
            {"error": {"code": "unauthorized", "detail": "missing or wrong bearer token"}}, status=401
        )
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        metrics.INGEST_REQUESTS_REFUSED.labels("body_too_large").inc()
        return _too_large(request.content_length, settings.max_body_bytes)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        metrics.INGEST_REQUESTS_REFUSED.labels("body_too_large").inc()
        return _too_large(None, settings.max_body_bytes)
    lines = split_body(body, request.content_type)
    if len(lines) > settings.max_events_per_request:
        metrics.INGEST_REQUESTS_REFUSED.labels("too_many_events").inc()
        return web.json_response(
            {
                "error": {
                    "code": "too_many_events",
                    "detail": f"{len(lines)} events, the limit is {settings.max_events_per_request}",
                }
            },
            status=413,
        )
    outcome = await publish_lines(request, lines, [])
    if isinstance(outcome, web.Response):
        return outcome
    accepted = sum(1 for r in outcome if r["status"] == "accepted")
    return web.json_response(
        {"accepted": accepted, "rejected": len(outcome) - accepted, "results": outcome}, dumps=_dumps
    )


def authorized(request: web.Request) -> bool:
    """Whether the request carries a gateway's token; remembers which gateway (never the token)."""
    if GATEWAY in request:
        return True
    gateway = request.app[TOKENS_KEY].identify(request.headers.get("Authorization", ""))
    if gateway is None:
        return False
    request[GATEWAY] = gateway
    return True


async def publish_lines(
    request: web.Request, lines: list[bytes], refused: list[tuple[bytes, InvalidMessage]]
) -> list[dict[str, Any]] | web.Response:
    """Validate and produce `lines`, dead-letter the invalid ones and `refused` (refused already), and
    wait for Kafka to acknowledge all of it: the per-line results, or a 503 to retry."""
    settings = request.app[SETTINGS_KEY]
    publisher = request.app[PUBLISHER_KEY]
    wait_s = request.app[LIMITS_KEY].admit(request.get(GATEWAY, "default"), len(lines) + len(refused))
    if wait_s is not None:
        return _refusal("rate_limited", f"this gateway's token is over its rate limit; retry in {wait_s}s", 429,
                        retry_after_s=wait_s)  # fmt: skip
    source = f"http:{request.remote}"
    deliveries = Deliveries(asyncio.get_running_loop())
    futures: list[asyncio.Future[None]] = []
    results: list[dict[str, Any]] = []
    futures += [
        dead_letter(deliveries, publisher, GATEWAY_EVENTS, original, error, source) for original, error in refused
    ]
    by_partition: dict[int, list[bytes]] = defaultdict(list)
    first_account: dict[int, str] = {}
    for index, line in enumerate(lines):
        try:
            event = validate_gateway_event(
                line, max_event_bytes=settings.max_event_bytes, max_clock_skew_s=settings.max_clock_skew_s
            )
        except InvalidMessage as error:
            results.append({"index": index, "status": "rejected", "error": error.as_dict()})
            futures.append(dead_letter(deliveries, publisher, GATEWAY_EVENTS, line, error, source, index))
            continue
        partition = partition_for(event["account_id"], publisher.partitions)
        by_partition[partition].append(orjson.dumps(event))
        first_account.setdefault(partition, event["account_id"])
        results.append({"index": index, "status": "accepted"})
    for partition, envelope_lines in by_partition.items():
        future, done = deliveries.future()
        publisher.produce_envelope(partition, envelope_lines, first_account[partition], done)
        futures.append(future)
    try:
        await asyncio.wait_for(asyncio.gather(*futures), timeout=30)
    except (TimeoutError, RuntimeError) as error:
        log.error("kafka_delivery_failed", error=str(error))
        return web.json_response(
            {"error": {"code": "unavailable", "detail": f"Kafka did not acknowledge: {error}; retry"}},
            status=503,
        )
    accepted = sum(1 for r in results if r["status"] == "accepted")
    metrics.INGEST_EVENTS.labels("accepted").inc(accepted)
    metrics.INGEST_EVENTS.labels("rejected").inc(len(results) - accepted + len(refused))
    return results


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _too_large(length: int | None, limit: int) -> web.Response:
    size = f"{length} bytes" if length is not None else "larger than the limit"
    return web.json_response(
        {
            "error": {
                "code": str(Reason.OVERSIZED_BODY),
                "detail": f"request body is {size}; the limit is {limit} bytes",
            }
        },
        status=413,
    )


async def get_decisions(request: web.Request) -> web.Response:
    if not authorized(request):
        return _refusal("unauthorized", "missing or wrong bearer token", 401)
    if DECISIONS_KEY not in request.app:
        return web.json_response(
            {"error": {"code": "not_found", "detail": "the decision feed is off here"}}, status=404
        )
    return await answer(request, request.app[DECISIONS_KEY])


async def post_reports(request: web.Request) -> web.Response:
    """`POST /v1/decisions/reports`: a bouncer fed over HTTP reports what it enforced (`bouncer_reports`)."""
    lines = split_body(await request.read(), request.content_type)
    if len(lines) > MAX_REPORTS_PER_REQUEST:
        return _refusal("too_many_reports", f"{len(lines)} reports, the limit is {MAX_REPORTS_PER_REQUEST}", 413)
    wait_s = request.app[LIMITS_KEY].admit(request.get(GATEWAY, "default"), len(lines))
    if wait_s is not None:
        return _refusal("rate_limited", f"this gateway's token is over its rate limit; retry in {wait_s}s", 429,
                        retry_after_s=wait_s)  # fmt: skip
    outcome = await publish_reports(lines, request.app[PUBLISHER_KEY], f"http:{request.remote}")
    if isinstance(outcome, web.Response):
        log.error("kafka_delivery_failed", topic="enforcement.reports")
        return outcome
    accepted = sum(1 for r in outcome if r["status"] == "accepted")
    return web.json_response(
        {"accepted": accepted, "rejected": len(outcome) - accepted, "results": outcome}, dumps=_dumps
    )


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def metrics_endpoint(_request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi_endpoint(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[SETTINGS_KEY]), dumps=_dumps)


def gateway_tokens(settings: IngestSettings) -> GatewayTokens:
    if settings.tokens_file is not None:
        return GatewayTokens.from_file(settings.tokens_file, settings.tokens_reload_s)
    return GatewayTokens({"default": settings.token.get_secret_value()})


def build_app(
    settings: IngestSettings,
    kafka: KafkaSettings,
    publisher: Publisher | None = None,
    decisions: tuple[DecisionLog, Follower] | None = None,
) -> web.Application:
    # aiohttp refuses larger bodies itself too; our handler answers first when Content-Length says so.
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[guard_requests])
    app[SETTINGS_KEY] = settings
    app[TOKENS_KEY] = gateway_tokens(settings)
    app[LIMITS_KEY] = GatewayRateLimits(settings.rate_limit_events_per_s, settings.rate_limit_burst_s)
    app[IN_FLIGHT_KEY] = [0]
    if publisher is None:
        publisher = EventPublisher(kafka, background_linger=False)
    app[PUBLISHER_KEY] = publisher
    stop = threading.Event()

    def poll_loop() -> None:
        while not stop.is_set():
            publisher.poll(0.05)

    poller = threading.Thread(target=poll_loop, name="kafka-delivery-poll", daemon=True)

    if decisions is not None:
        app[DECISIONS_KEY] = decisions[0]

    async def on_startup(_app: web.Application) -> None:
        poller.start()
        if decisions is not None:
            decisions[1].start()

    async def on_cleanup(_app: web.Application) -> None:
        stop.set()
        poller.join()
        publisher.flush()
        if decisions is not None:
            decisions[1].stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_post("/v1/events", post_events)
    app.router.add_get("/v1/decisions", get_decisions)
    app.router.add_post("/v1/decisions/reports", post_reports)
    add_receivers(app, settings, authorized, publish_lines)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)
    app.router.add_get("/openapi.json", openapi_endpoint)
    return app


def run(settings: IngestSettings | None = None, kafka: KafkaSettings | None = None) -> None:
    settings = settings or IngestSettings()
    kafka = kafka or KafkaSettings()
    app = build_app(settings, kafka, decisions=follow_decisions(kafka) if settings.decision_feed else None)
    log.info("ingest_listening", host=settings.host, port=settings.port)
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)
