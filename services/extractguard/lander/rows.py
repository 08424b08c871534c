"""Rows for each ClickHouse table, from validated payloads. One table, one column list, one builder."""

from __future__ import annotations

from typing import Any

import orjson

from extractguard.contracts.schemas import Payload

EVENT_COLUMNS = [
    "event_id", "event_time", "account_id", "org_id", "end_user_id", "api_key_hash", "account_created",
    "client_ip_prefix", "client_asn", "client_country", "user_agent", "tls_ja4", "sdk_name",
    "conversation_id", "turn_index", "operation_name", "provider_name", "request_model", "response_model",
    "input_tokens", "output_tokens", "request_max_tokens", "request_temperature", "request_top_p",
    "request_choice_count", "request_logprobs", "request_top_logprobs", "request_logit_bias",
    "request_tools_count", "response_status", "response_finish_reason", "refusal", "latency_ms",
    "prompt_minhash", "prompt_template_hash", "prompt_length_chars", "prompt_length_words",
    "prompt_cot_elicitation", "kafka_partition", "kafka_offset",
]  # fmt: skip


def event_row(e: Payload, partition: int, offset: int) -> list[Any]:
    sketch = e["prompt_sketch"]
    return [
        e["event_id"], e["event_time_ms"], e["account_id"], e["org_id"], e.get("end_user_id"),
        e["api_key_hash"], e.get("account_created_ms"), e["client_ip_prefix"], e["client_asn"],
        e.get("client_country"), e.get("user_agent"), e.get("tls_ja4"), e.get("sdk_name"),
        e.get("conversation_id"), e["turn_index"], e["operation_name"], e["provider_name"],
        e["request_model"], e.get("response_model"), e["input_tokens"], e["output_tokens"],
        e.get("request_max_tokens"), e.get("request_temperature"), e.get("request_top_p"),
        e["request_choice_count"], e["request_logprobs"], e["request_top_logprobs"],
        e["request_logit_bias"], e["request_tools_count"], e["response_status"],
        e.get("response_finish_reason"), e["refusal"], e["latency_ms"], sketch["minhash"],
        sketch["template_hash"], sketch["length_chars"], sketch.get("length_words", 0),
        sketch.get("cot_elicitation", False), partition, offset,
    ]  # fmt: skip


DETECTION_COLUMNS = [
    "detection_id", "detector", "detector_version", "entity_kind", "entity", "score", "threshold",
    "severity", "window_start", "window_end", "detected_at", "summary", "accounts", "accounts_total",
    "evidence", "kafka_partition", "kafka_offset",
]  # fmt: skip


def detection_row(d: Payload, partition: int, offset: int) -> list[Any]:
    evidence = d["evidence"]
    return [
        d["detection_id"], d["detector"], d["detector_version"], d["entity_kind"], d["entity"],
        float(d["score"]), float(d["threshold"]), d["severity"], d["window_start_ms"],
        d["window_end_ms"], d["detected_at_ms"], evidence["summary"], evidence["accounts"],
        evidence.get("accounts_total", len(evidence["accounts"])), orjson.dumps(evidence).decode(),
        partition, offset,
    ]  # fmt: skip


ALERT_COLUMNS = [
    "alert_id", "dedup_key", "rule", "severity", "status", "summary", "entity_kind", "entity",
    "detection_ids", "accounts", "first_seen", "last_seen", "fired_at", "labels", "kafka_partition",
    "kafka_offset",
]  # fmt: skip


def alert_row(a: Payload, partition: int, offset: int) -> list[Any]:
    return [
        a["alert_id"], a["dedup_key"], a["rule"], a["severity"], a["status"], a["summary"],
        a["entity_kind"], a["entity"], a["detection_ids"], a["accounts"], a["first_seen_ms"],
        a["last_seen_ms"], a["fired_at_ms"], a.get("labels", {}), partition, offset,
    ]  # fmt: skip


LABEL_COLUMNS = [
    "account_id", "org_id", "label", "class", "campaign", "source", "scenario", "note", "labelled_at",
    "kafka_partition", "kafka_offset",
]  # fmt: skip


def label_row(v: Payload, partition: int, offset: int) -> list[Any]:
    return [
        v["account_id"], v.get("org_id"), v["label"], v.get("class"), v.get("campaign"), v["source"],
        v.get("scenario"), v.get("note"), v["labelled_at_ms"], partition, offset,
    ]  # fmt: skip


CAMPAIGN_COLUMNS = [
    "campaign_id", "status", "merged_into", "split_from", "first_seen", "last_seen", "updated", "severity", "score",
    "members", "members_total", "shaped_members", "fingerprints", "fronting_orgs", "kafka_partition", "kafka_offset",
]  # fmt: skip


def campaign_row(v: Payload, partition: int, offset: int) -> list[Any]:
    fingerprints = [(f["fingerprint"], float(f["weight"]), f["sharers"]) for f in v["fingerprints"]]
    return [
        v["campaign_id"], v["status"], v.get("merged_into"), v.get("split_from"), v["first_seen_ms"],
        v["last_seen_ms"], v["updated_ms"], v["severity"], float(v["score"]), v["members"], v["members_total"],
        v["shaped_members"], fingerprints, v.get("fronting_orgs", []), partition, offset,
    ]  # fmt: skip
