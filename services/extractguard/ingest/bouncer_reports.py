"""Bouncer reports over HTTP: `POST /v1/decisions/reports`, on the ingest, under the gateway's own
token: what a bouncer fed over HTTP (`GET /v1/decisions`) enforced, for gateways that may not reach
the broker to produce their reports themselves.

The body is what a Kafka-fed bouncer produces: `bouncer_report` v1 records, as NDJSON or a JSON
array. Each is checked against the schema; the valid go to `enforcement.reports` (landed beside the
decisions, as every other bouncer's), the invalid to its dead-letter topic with the reason, and the
answer lists each record by index as accepted or rejected. It is sent once Kafka acknowledged all
of it, so a bouncer that gets a 200 may forget what it sent, and one that gets anything else sends
it again (the lander keeps one row per `report_id`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from extractguard.contracts.enforcement import ENFORCEMENT_REPORTS
from extractguard.contracts.rejection import InvalidMessage
from extractguard.contracts.schemas import decode_valid
from extractguard.ingest.deliveries import Deliveries, RawProducer, dead_letter

SERVICE = "ingest"
#: The most records one POST may carry (a bouncer's interval holds one per decision and outcome).
MAX_REPORTS_PER_REQUEST = 5000


async def publish_reports(
    lines: list[bytes], publisher: RawProducer, source: str
) -> list[dict[str, Any]] | web.Response:
    """Validate and produce `lines`, dead-letter the invalid ones, wait for Kafka: the per-line
    results, or a 503 to retry."""
    deliveries = Deliveries(asyncio.get_running_loop())
    futures: list[asyncio.Future[None]] = []
    results: list[dict[str, Any]] = []
    for index, line in enumerate(lines):
        try:
            decode_valid("bouncer_report", line)
        except InvalidMessage as error:
            results.append({"index": index, "status": "rejected", "error": error.as_dict()})
            futures.append(dead_letter(deliveries, publisher, ENFORCEMENT_REPORTS, line, error, source, index))
            continue
        future, done = deliveries.future()
        publisher.produce_raw(ENFORCEMENT_REPORTS, line, [], done)
        futures.append(future)
        results.append({"index": index, "status": "accepted"})
    try:
        await asyncio.wait_for(asyncio.gather(*futures), timeout=30)
    except (TimeoutError, RuntimeError) as error:
        return web.json_response(
            {"error": {"code": "unavailable", "detail": f"Kafka did not acknowledge: {error}; retry"}}, status=503
        )
    return results
