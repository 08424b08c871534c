"""The naive baseline `make bench` compares the detection worker with: a Faust agent that takes one
event per Kafka message, decodes and validates it, and feeds the same detection engine one event at
a time — the obvious way to use Faust and River, measured in the same run on the same broker.

    python benchmarks/naive_agent.py worker -l warn   (env: BENCH_NAIVE_TOPIC, BENCH_NAIVE_APP_ID)
"""

from __future__ import annotations

import os
import sys
from typing import Any

import faust

from extractguard.contracts.schemas import validate_gateway_event
from extractguard.detection.engine import DetectionEngine
from extractguard.settings import DetectionSettings, KafkaSettings

kafka = KafkaSettings()
app = faust.App(
    os.environ.get("BENCH_NAIVE_APP_ID", "extractguard-bench-naive"),
    broker=[f"kafka://{server}" for server in kafka.bootstrap_servers.split(",")],
    store="memory://",
    value_serializer="raw",
    web_port=int(os.environ.get("BENCH_NAIVE_WEB_PORT", "6169")),
    web_bind="127.0.0.1",
    consumer_auto_offset_reset="earliest",
    topic_allow_declare=False,
)
topic = app.topic(os.environ.get("BENCH_NAIVE_TOPIC", "bench.naive"), value_type=bytes, key_type=bytes)
engines: dict[int, DetectionEngine] = {}
settings = DetectionSettings()


@app.agent(topic)
async def detect(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        partition = event.message.partition
        engine = engines.get(partition)
        if engine is None:
            engine = engines[partition] = DetectionEngine(settings)
        payload: dict[str, Any] = validate_gateway_event(event.value, max_event_bytes=65_536, max_clock_skew_s=300)
        for _detection in engine.process([payload], partition):
            pass  # the naive agent would send each; the baseline is kept cheap on purpose


if __name__ == "__main__":
    sys.argv = [sys.argv[0], *sys.argv[1:]] if len(sys.argv) > 1 else [sys.argv[0], "worker", "-l", "warn"]
    app.main()
