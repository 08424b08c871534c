"""`make bench`: each stage alone and the pipeline end to end, on the real broker and embedded ClickHouse.

Every stage that is a process is measured by the CPU time that process spent (utime + stime from
/proc) as well as wall time, so "per core" figures are events per CPU-second of the stage's own
process — they survive a noisy, shared 2-core machine better than wall-clock rates do. The naive
baseline runs in the same invocation, so the speed-up is a ratio of two figures taken under the
same conditions.

    .venv/bin/python benchmarks/bench.py     (BENCH_EVENTS, BENCH_MAX_ACCOUNTS to resize; BENCH_ONLY=detect,naive
                                              runs the stages whose names hold those words)

Writes reports/bench/bench.json and prints a table.
"""

from __future__ import annotations

import asyncio
import gc
import os
import platform
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from extractguard import gc_policy
from extractguard.contracts.schemas import validate_gateway_event
from extractguard.contracts.topics import DETECTIONS, GATEWAY_EVENTS
from extractguard.demo.processes import Service, ensure_local_kafka, wait_group_stable, wait_http
from extractguard.detection.engine import DetectionEngine
from extractguard.gateway.events import build_event
from extractguard.gateway.publisher import EventPublisher
from extractguard.kafka_offsets import end_offsets, group_lag, start_group_at_end
from extractguard.lander.blocks import Block
from extractguard.lander.rows import EVENT_SCHEMA, event_row
from extractguard.lander.sinks import sinks
from extractguard.paths import project_root
from extractguard.settings import DetectionSettings, KafkaSettings
from extractguard.simulator.traffic import Scenario, generate, scenario_start_ms
from extractguard.storage import migrate
from extractguard.storage.client import connect

ROOT = project_root()
OUT = ROOT / "reports" / "bench"
WORK = ROOT / ".extractguard" / "bench"
EVENTS = int(os.environ.get("BENCH_EVENTS", "200000"))
MAX_ACCOUNTS = int(os.environ.get("BENCH_MAX_ACCOUNTS", "1000000"))
TICKS = os.sysconf("SC_CLK_TCK")
kafka = KafkaSettings()


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


# --- workload ---------------------------------------------------------------------------------


def workload(count: int) -> list[dict[str, Any]]:
    """`count` sketched events of the hydra scenario (organic traffic, look-alikes and a campaign),
    re-timed to end now so that no validation rejects them as future or stale."""
    scenario = Scenario.from_yaml(ROOT / "scenarios" / "eval-fast" / "hydra.yaml")
    start = scenario_start_ms(scenario, int(time.time() * 1000))
    events = []
    for _account, request in generate(scenario, start):
        events.append(build_event(request, b"bench"))
        if len(events) >= count:
            break
    return events


def encoded(events: list[dict[str, Any]]) -> list[tuple[bytes, str]]:
    return [(orjson.dumps(e), e["account_id"]) for e in events]


def produce_envelopes(lines: list[tuple[bytes, str]]) -> float:
    began = time.perf_counter()
    with EventPublisher(kafka) as publisher:
        for line, account in lines:
            publisher.publish_encoded(line, account)
        publisher.flush()
    return time.perf_counter() - began


def wait_lag_zero(group: str, topic: str, service_alive: Callable[[], bool], timeout_s: float = 600) -> float:
    deadline = time.monotonic() + timeout_s
    while (lag := group_lag(kafka, group, topic)) > 0:
        if not service_alive():
            raise RuntimeError(f"{group} died while {lag:,} behind")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{group} still {lag:,} behind on {topic}")
        time.sleep(0.25)
    return time.monotonic()


# --- stages -----------------------------------------------------------------------------------


def stage_sdk(events: list[dict[str, Any]], lines: list[tuple[bytes, str]]) -> dict[str, Any]:
    """The gateway SDK: building an event from a request (sketch included) is measured separately
    by the simulator benchmark; here: encoding and producing envelopes, one core."""
    sample = events[:20_000]
    began = time.perf_counter()
    for event in sample:
        orjson.dumps(event)
    encode_s = time.perf_counter() - began
    produce_s = produce_envelopes(lines)
    return {
        "sdk_encode_events_per_s": round(len(sample) / encode_s),
        "sdk_producer_events_per_s": round(len(lines) / produce_s),
    }


def stage_engine(events: list[dict[str, Any]]) -> dict[str, Any]:
    payloads = [
        validate_gateway_event(orjson.dumps(e), max_event_bytes=65_536, max_clock_skew_s=300) for e in events[:100_000]
    ]
    engine = DetectionEngine(DetectionSettings())
    default_gc = gc.get_threshold()
    gc_policy.for_streaming()  # as the detection worker runs it
    began = time.process_time()
    engine.process(payloads, partition=0)
    seconds = time.process_time() - began
    gc.set_threshold(*default_gc)
    raw = [orjson.dumps(e) for e in events[:50_000]]
    began = time.process_time()
    for line in raw:
        validate_gateway_event(line, max_event_bytes=65_536, max_clock_skew_s=300)
    validate_s = time.process_time() - began
    return {
        "engine_events_per_s_per_core": round(len(payloads) / seconds),
        "validate_events_per_s_per_core": round(len(raw) / validate_s),
    }


def _service(name: str, env: dict[str, str], tag: str) -> Service:
    return Service(name, env, WORK / "logs", f"{name}-{tag}")


def drain(service: Service, group: str, lines: list[tuple[bytes, str]]) -> tuple[float, float]:
    """Produce `lines` to the idle, settled consumer `service` and wait until `group` committed the
    last of them; returns the CPU seconds the service's process spent and the wall seconds."""
    time.sleep(2)
    assert service.process is not None
    cpu_before, began = cpu_seconds(service.process.pid), time.monotonic()
    produce_envelopes(lines)
    done = wait_lag_zero(group, GATEWAY_EVENTS, service.alive)
    return cpu_seconds(service.process.pid) - cpu_before, done - began


def stage_detect_worker(lines: list[tuple[bytes, str]], run: str) -> dict[str, Any]:
    app_id = f"extractguard-detect-bench-{run}"
    start_group_at_end(kafka, app_id, [GATEWAY_EVENTS])
    detect = _service("detect", {"EXTRACTGUARD_DETECT_APP_ID": app_id, "EXTRACTGUARD_DETECT_WEB_PORT": "6166"}, run)
    detect.start()
    try:
        wait_group_stable(kafka, app_id, 180, detect)
        cpu, wall = drain(detect, app_id, lines)
    finally:
        detect.stop()
    return {
        "detect_events_per_s_per_core": round(len(lines) / cpu),
        "detect_events_per_s_wall": round(len(lines) / wall),
        "detect_cpu_seconds": round(cpu, 2),
    }


def stage_naive(lines: list[tuple[bytes, str]], run: str) -> dict[str, Any]:
    topic, app_id = f"bench.naive.{run}", f"extractguard-bench-naive-{run}"
    admin = AdminClient(kafka.client_config())
    for future in admin.create_topics([NewTopic(topic, 2, replication_factor=1)]).values():
        future.result()
    producer = Producer({**kafka.client_config(), "linger.ms": 20, "batch.size": 1 << 20})
    for line, account in lines:
        producer.produce(topic, value=line, key=account.encode())
        producer.poll(0)
    producer.flush()
    env = {**os.environ, "BENCH_NAIVE_TOPIC": topic, "BENCH_NAIVE_APP_ID": app_id}
    log = (WORK / "logs" / f"naive-{run}.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "naive_agent.py"), "worker", "-l", "warn"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        began = time.monotonic()
        done = wait_lag_zero(app_id, topic, lambda: process.poll() is None)
        cpu = cpu_seconds(process.pid)  # includes start-up: flatters nothing
    finally:
        process.terminate()
        process.wait(30)
        admin.delete_topics([topic])
    return {
        "naive_events_per_s_per_core": round(len(lines) / cpu),
        "naive_events_per_s_wall": round(len(lines) / (done - began)),
    }


def stage_lander_insert(events: list[dict[str, Any]]) -> dict[str, Any]:
    path = WORK / "clickhouse-insert"
    shutil.rmtree(path, ignore_errors=True)
    client = connect(f"chdb://{path}")
    migrate.apply(client, {"events_ttl_days": 30})
    payloads = [validate_gateway_event(orjson.dumps(e), max_event_bytes=65_536, max_clock_skew_s=300) for e in events]
    rows = [event_row(p, 0, i) for i, p in enumerate(payloads)]
    figures: dict[str, Any] = {}
    sink = sinks()[GATEWAY_EVENTS]
    for mode in ("rows", "columns", "arrow"):
        for table in ("events", "account_minute"):  # each mode on empty tables, not beside the last one's merges
            client.command(f"TRUNCATE TABLE {table}")
        began = time.perf_counter()
        for i in range(0, len(rows), 50_000):
            batch = rows[i : i + 50_000]
            if mode == "rows":
                client.insert("events", batch, column_names=EVENT_SCHEMA.names)
            elif mode == "columns":
                client.insert("events", list(zip(*batch, strict=True)), column_names=EVENT_SCHEMA.names,
                              column_oriented=True)  # fmt: skip
            else:  # the lander's way, but from rows built long before (it converts them while fresh)
                block = Block(sink.schema)
                for row in batch:
                    block.add(row)
                client.insert_arrow("events", block.to_arrow(), settings=dict(sink.insert_settings))
        figures[f"clickhouse_insert_rows_per_s_{mode}"] = round(len(rows) / (time.perf_counter() - began))
    client.close()
    shutil.rmtree(path, ignore_errors=True)
    return figures


def stage_lander_worker(lines: list[tuple[bytes, str]], run: str) -> dict[str, Any]:
    group = f"extractguard-lander-bench-{run}"
    path = WORK / f"clickhouse-{run}"
    from extractguard.lander.sinks import landed_topics

    start_group_at_end(kafka, group, landed_topics())
    lander = _service("lander", {
        "EXTRACTGUARD_LANDER_GROUP_ID": group, "EXTRACTGUARD_CLICKHOUSE_DSN": f"chdb://{path}",
        "EXTRACTGUARD_LANDER_SQL_PORT": "8581",
    }, run)  # fmt: skip
    lander.start()
    try:
        wait_http("http://127.0.0.1:8581/healthz", 120, lander)
        wait_group_stable(kafka, group, 120, lander)
        cpu, wall = drain(lander, group, lines)
    finally:
        lander.stop()
        shutil.rmtree(path, ignore_errors=True)
    return {
        "lander_rows_per_s": round(len(lines) / wall),
        "lander_rows_per_s_per_core": round(len(lines) / cpu),
    }


def stage_ingest(events: list[dict[str, Any]], run: str) -> dict[str, Any]:
    ingest = _service("ingest", {"EXTRACTGUARD_INGEST_TOKEN": "bench-token", "EXTRACTGUARD_INGEST_PORT": "8580"}, run)
    ingest.start()
    bodies = [b"\n".join(orjson.dumps(e) for e in events[i : i + 500]) for i in range(0, len(events), 500)]
    try:
        wait_http("http://127.0.0.1:8580/healthz", 60, ingest)
        assert ingest.process is not None
        cpu_before = cpu_seconds(ingest.process.pid)

        async def post_all() -> float:
            headers = {"Authorization": "Bearer bench-token", "Content-Type": "application/x-ndjson"}
            queue = list(bodies)
            async with aiohttp.ClientSession(headers=headers) as session:

                async def worker() -> None:
                    while queue:
                        body = queue.pop()
                        async with session.post("http://127.0.0.1:8580/v1/events", data=body) as response:
                            await response.read()
                            if response.status != 200:
                                raise RuntimeError(f"ingest answered {response.status}")

                began = time.monotonic()
                await asyncio.gather(*(worker() for _ in range(8)))
                return time.monotonic() - began

        wall = asyncio.run(post_all())
        cpu = cpu_seconds(ingest.process.pid) - cpu_before
    finally:
        ingest.stop()
    return {"ingest_events_per_s": round(len(events) / wall), "ingest_events_per_s_per_core": round(len(events) / cpu)}


def stage_pipeline(lines: list[tuple[bytes, str]], run: str) -> dict[str, Any]:
    """Detection, campaigns, lander and alerter running; events produced as fast as the SDK can;
    timed until detection and lander have both committed the last of them."""
    detect_id, lander_group = f"extractguard-detect-pipe-{run}", f"extractguard-lander-pipe-{run}"
    path = WORK / f"clickhouse-pipe-{run}"
    from extractguard.lander.sinks import landed_topics

    start_group_at_end(kafka, detect_id, [GATEWAY_EVENTS])
    start_group_at_end(kafka, lander_group, landed_topics())
    services = [
        _service("detect", {"EXTRACTGUARD_DETECT_APP_ID": detect_id, "EXTRACTGUARD_DETECT_WEB_PORT": "6166"}, run),
        _service("campaigns", {"EXTRACTGUARD_CAMPAIGNS_APP_ID": f"extractguard-campaigns-pipe-{run}",
                               "EXTRACTGUARD_CAMPAIGNS_WEB_PORT": "6167"}, run),
        _service("lander", {"EXTRACTGUARD_LANDER_GROUP_ID": lander_group, "EXTRACTGUARD_CLICKHOUSE_DSN": f"chdb://{path}",
                            "EXTRACTGUARD_LANDER_SQL_PORT": "8582"}, run),
        _service("alerter", {"EXTRACTGUARD_ALERTER_GROUP_ID": f"extractguard-alerter-pipe-{run}"}, run),
    ]  # fmt: skip
    for service in services:
        service.start()
    try:
        wait_group_stable(kafka, detect_id, 180, services[0])
        wait_group_stable(kafka, lander_group, 180, services[2])
        time.sleep(2)
        began = time.monotonic()
        produce_envelopes(lines)
        wait_lag_zero(detect_id, GATEWAY_EVENTS, services[0].alive)
        done = wait_lag_zero(lander_group, GATEWAY_EVENTS, services[2].alive)
    finally:
        for service in services:
            service.stop()
        shutil.rmtree(path, ignore_errors=True)
    return {"pipeline_events_per_s": round(len(lines) / (done - began))}


def stage_latency(capacity_per_s: float, run: str, seconds: float = 30.0) -> dict[str, Any]:
    """Event -> detection at half the measured detection capacity: one-second windows, a harvesting
    group among ordinary traffic, events stamped with the wall clock as they are produced. Latency
    is from the newest event the window closed on (the detection's watermark) to the detection's
    Kafka timestamp: the time the pipeline adds, not the window's own length."""
    app_id = f"extractguard-detect-latency-{run}"
    start_group_at_end(kafka, app_id, [GATEWAY_EVENTS])
    since = end_offsets(kafka, DETECTIONS)
    detect = _service("detect", {
        "EXTRACTGUARD_DETECT_APP_ID": app_id, "EXTRACTGUARD_DETECT_WINDOW_S": "1",
        "EXTRACTGUARD_DETECT_ALLOWED_LATENESS_S": "0", "EXTRACTGUARD_DETECT_WEB_PORT": "6168",
        "EXTRACTGUARD_DETECT_LINK_ACCOUNTS": "false",
    }, run)  # fmt: skip
    detect.start()
    rate = max(capacity_per_s / 2, 100.0)
    rng = random.Random(3)
    try:
        wait_group_stable(kafka, app_id, 180, detect)
        with EventPublisher(kafka) as publisher:
            began = time.monotonic()
            sent = 0
            while (elapsed := time.monotonic() - began) < seconds:
                due = int(elapsed * rate)
                now = int(time.time() * 1000)
                for _ in range(due - sent):
                    publisher.publish(_latency_event(rng, now))
                sent = max(sent, due)
                time.sleep(0.002)
            publisher.flush()
        wait_lag_zero(app_id, GATEWAY_EVENTS, detect.alive, 120)
    finally:
        detect.stop()
    latencies = []
    consumer = Consumer({**kafka.client_config(), "group.id": f"bench-{uuid.uuid4().hex[:8]}"})
    consumer.assign([TopicPartition(DETECTIONS, p, o) for p, o in since.items()])
    ends = end_offsets(kafka, DETECTIONS)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(consumer.position([TopicPartition(DETECTIONS, p)])[0].offset < e
                                               for p, e in ends.items() if e > since.get(p, 0)):  # fmt: skip
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        detection = orjson.loads(message.value() or b"{}")
        if (
            detection["detection_id"]
            and detection.get("window_end_ms", 0) - detection.get("window_start_ms", 0) <= 1000
        ):
            latencies.append(message.timestamp()[1] - detection["detected_at_ms"])
    consumer.close()
    if not latencies:
        return {"latency_detections": 0}
    latencies.sort()
    return {
        "latency_load_events_per_s": round(rate),
        "latency_detections": len(latencies),
        "latency_p50_ms": latencies[len(latencies) // 2],
        "latency_p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def _latency_event(rng: random.Random, now: int) -> dict[str, Any]:
    harvest = rng.random() < 0.3
    account = f"h{rng.randrange(200)}" if harvest else f"o{rng.randrange(5000)}"
    return {
        "schema_version": 1, "event_id": uuid.uuid4().hex, "event_time_ms": now, "account_id": account,
        "org_id": f"org-{account}", "api_key_hash": f"key-{account}-0000",
        "account_created_ms": now - (86_400_000 if harvest else 400 * 86_400_000),
        "client_ip_prefix": "185.220.101.0/24" if harvest else f"10.{rng.randrange(200)}.{rng.randrange(200)}.0/24",
        "client_asn": 64500, "turn_index": 0 if harvest else rng.randrange(4), "operation_name": "chat",
        "provider_name": "bench", "request_model": "m-1", "input_tokens": 100,
        "output_tokens": 3000 if harvest else rng.randrange(50, 500), "request_logprobs": harvest,
        "response_status": 200, "latency_ms": 800,
        "prompt_sketch": {"minhash": [rng.getrandbits(32) for _ in range(16)], "length_chars": 200,
                          "template_hash": f"{rng.getrandbits(64):016x}", "cot_elicitation": harvest},
    }  # fmt: skip


def stage_memory() -> dict[str, Any]:
    """State per tracked account, each size in a fresh process: resident memory grown by the
    engine holding N accounts (two requests each, in one open window), and its checkpoint size."""
    figures: dict[str, Any] = {}
    for accounts in (10_000, 100_000, 1_000_000):
        if accounts > MAX_ACCOUNTS:
            continue
        done = subprocess.run(
            [sys.executable, __file__, "--memory", str(accounts)], capture_output=True, check=True, timeout=1800
        )
        result = orjson.loads(done.stdout.splitlines()[-1])
        figures[f"bytes_per_account_{accounts}"] = result["rss_bytes_per_account"]
        figures[f"checkpoint_bytes_per_account_{accounts}"] = result["checkpoint_bytes_per_account"]
    largest = max((k for k in figures if k.startswith("bytes_per_account_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    figures["bytes_per_account"] = figures[largest]
    return figures


def memory_child(accounts: int) -> None:
    rng = random.Random(5)
    settings = DetectionSettings()
    window_ms = int(settings.window_s * 1000)
    # Both requests of every account in one open window, whenever the bench runs: a window
    # closing half-way through made the figure depend on the clock (closing a window of N
    # accounts adds a transient peak: BENCH_MEMORY_CLOSE=1 measures with it).
    now = (int(time.time() * 1000) - 3_600_000) // window_ms * window_ms + 5_000
    engine = DetectionEngine(settings)
    page = os.sysconf("SC_PAGE_SIZE")

    def resident() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * page

    base = resident()
    for batch in range(0, accounts, 10_000):
        events = []
        for i in range(batch, min(batch + 10_000, accounts)):
            for k in range(2):
                event = _latency_event(rng, now + k * 30_000)
                event["account_id"] = f"acct-{i:08d}"
                events.append(event)
        engine.process(events, partition=0)
    if os.environ.get("BENCH_MEMORY_CLOSE"):
        closing = _latency_event(rng, now + window_ms + int(settings.allowed_lateness_s * 1000) + 1_000)
        engine.process([closing], partition=0)
    assert engine.windows_closed == (1 if os.environ.get("BENCH_MEMORY_CLOSE") else 0)
    rss = resident() - base
    blob = engine.checkpoint()
    print(orjson.dumps({
        "rss_bytes_per_account": round(rss / accounts), "checkpoint_bytes_per_account": round(len(blob) / accounts),
    }).decode())  # fmt: skip


# --- report ------------------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--memory":
        memory_child(int(sys.argv[2]))
        return
    started_kafka = ensure_local_kafka()
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "logs").mkdir(exist_ok=True)
    run = uuid.uuid4().hex[:8]
    figures: dict[str, Any] = {}
    say(f"building {EVENTS:,} events of the hydra scenario (sketched, not timed)")
    events = workload(EVENTS)
    lines = encoded(events)
    stages: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("SDK producer", lambda: stage_sdk(events, lines)),
        ("detection engine, in process", lambda: stage_engine(events)),
        ("detection worker (Faust, envelopes)", lambda: stage_detect_worker(lines, run)),
        ("naive Faust agent (one event per message)", lambda: stage_naive(lines[: min(len(lines), 60_000)], run)),
        ("ClickHouse inserts (embedded)", lambda: stage_lander_insert(events[:100_000])),
        ("lander worker", lambda: stage_lander_worker(lines, run)),
        ("HTTP ingest", lambda: stage_ingest(events[:50_000], run)),
        ("pipeline end to end", lambda: stage_pipeline(lines, run)),
        ("latency at half capacity", lambda: stage_latency(figures.get("detect_events_per_s_wall", 2000), run)),
        ("memory per account", stage_memory),
    ]
    only = [s for s in os.environ.get("BENCH_ONLY", "").split(",") if s]
    for name, stage in stages:
        if only and not any(word in name for word in only):
            continue
        say(f"{name} ...")
        began = time.monotonic()
        result = stage()
        figures.update(result)
        say(f"  {', '.join(f'{k} {v:,}' if isinstance(v, int) else f'{k} {v}' for k, v in result.items())} "
            f"({time.monotonic() - began:.0f}s)")  # fmt: skip
    if "detect_events_per_s_per_core" in figures and "naive_events_per_s_per_core" in figures:
        figures["detect_speedup_vs_naive"] = round(
            figures["detect_events_per_s_per_core"] / figures["naive_events_per_s_per_core"], 2
        )
    previous = OUT / "bench.json"
    if only and previous.exists():  # a partial run updates the figures of the last full one
        figures = {**orjson.loads(previous.read_bytes()).get("figures", {}), **figures}
    report = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "events": len(events),
        "figures": figures,
        "targets": TARGETS,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench.json").write_bytes(orjson.dumps({**report, **figures}, option=orjson.OPT_INDENT_2))
    print(table(figures))
    say(f"written to {OUT / 'bench.json'}")
    if started_kafka:
        from extractguard.demo.processes import stop_local_kafka

        stop_local_kafka()


#: figure -> (target, "min" or "max")
TARGETS: dict[str, tuple[float, str]] = {
    "detect_events_per_s_per_core": (25_000, "min"),
    "detect_speedup_vs_naive": (6, "min"),
    "lander_rows_per_s": (300_000, "min"),
    "pipeline_events_per_s": (15_000, "min"),
    "latency_p99_ms": (2_000, "max"),
    "bytes_per_account": (2_048, "max"),
}


def table(figures: dict[str, Any]) -> str:
    rows = ["", f"{'figure':<44} {'value':>14} {'target':>12}  met", "-" * 78]
    for name, value in figures.items():
        target = TARGETS.get(name)
        shown = f"{value:,}" if isinstance(value, int) else str(value)
        if target is None:
            rows.append(f"{name:<44} {shown:>14}")
            continue
        met = value >= target[0] if target[1] == "min" else value <= target[0]
        bound = ("≥ " if target[1] == "min" else "≤ ") + f"{target[0]:,.0f}"
        rows.append(f"{name:<44} {shown:>14} {bound:>12}  {'yes' if met else 'NO'}")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
