"""Rows for each ClickHouse table, from validated payloads. One table, one schema, one row builder.

The schema names each column in the order the builder fills it and gives its Arrow type, which is
how the lander hands a batch to ClickHouse (see `blocks`). Arrow types follow the table's DDL in
`storage/migrations`: timestamps in milliseconds for `DateTime64(3)` (an Arrow integer would be
read as seconds), and the DDL's integer and float widths.
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa

from extractguard.contracts.schemas import Payload

_STRING = pa.string()
_STRINGS = pa.list_(pa.string())
_TIME = pa.timestamp("ms", tz="UTC")
_KAFKA = [("kafka_partition", pa.uint16()), ("kafka_offset", pa.uint64())]

#: The watermark applied (0050): key id only, never the key; and the completion's sketch.
_WATERMARK = [
    ("watermark_known", pa.bool_()), ("watermark_applied", pa.bool_()), ("watermark_engine", _STRING),
    ("watermark_algorithm", _STRING), ("watermark_prf", _STRING), ("watermark_context_width", pa.uint8()),
    ("watermark_key_id", _STRING), ("watermark_unmarked_reason", _STRING),
    ("completion_minhash", pa.list_(pa.uint32())), ("completion_bands", pa.list_(pa.uint32())),
    ("completion_length_words", pa.uint32()),
]  # fmt: skip
#: What protect_reasoning withheld (0070).
_PROTECTION = [("protected", pa.bool_()), ("reasoning_withheld_tokens", pa.uint32()), ("logprobs_withheld", pa.bool_())]

EVENT_SCHEMA = pa.schema([
    ("event_id", _STRING), ("event_time", _TIME), ("account_id", _STRING), ("org_id", _STRING),
    ("end_user_id", _STRING), ("api_key_hash", _STRING), ("account_created", _TIME),
    ("client_ip_prefix", _STRING), ("client_asn", pa.uint32()), ("client_country", _STRING),
    ("user_agent", _STRING), ("tls_ja4", _STRING), ("sdk_name", _STRING), ("conversation_id", _STRING),
    ("turn_index", pa.uint32()), ("operation_name", _STRING), ("provider_name", _STRING),
    ("request_model", _STRING), ("response_model", _STRING), ("input_tokens", pa.uint32()),
    ("output_tokens", pa.uint32()), ("request_max_tokens", pa.uint32()), ("request_temperature", pa.float32()),
    ("request_top_p", pa.float32()), ("request_choice_count", pa.uint16()), ("request_logprobs", pa.bool_()),
    ("request_top_logprobs", pa.uint8()), ("request_logit_bias", pa.bool_()), ("request_tools_count", pa.uint16()),
    ("response_status", pa.uint16()), ("response_finish_reason", _STRING), ("refusal", pa.bool_()),
    ("latency_ms", pa.uint32()), ("prompt_minhash", pa.list_(pa.uint32())), ("prompt_template_hash", _STRING),
    ("prompt_length_chars", pa.uint32()), ("prompt_length_words", pa.uint32()),
    ("prompt_cot_elicitation", pa.bool_()), ("prompt_sketched", pa.bool_()), ("reasoning_output_tokens", pa.uint32()),
    ("cache_read_input_tokens", pa.uint32()), ("cache_creation_input_tokens", pa.uint32()), ("cache_hit", pa.bool_()),
    *_WATERMARK, *_PROTECTION, *_KAFKA,
])  # fmt: skip
_NO_SKETCH: Payload = {"minhash": [], "template_hash": "", "length_chars": 0}


def event_row(e: Payload, partition: int, offset: int) -> list[Any]:
    """One events row. Absent key columns (org, key, address: gateway_event v2) are '' (the schema
    never allows an empty one), an absent ASN NULL (0 is reserved, never a stand-in), an absent
    sketch an empty one with `prompt_sketched` false; an absent watermark `watermark_known` false."""
    sketch = e.get("prompt_sketch") or _NO_SKETCH
    return [
        e["event_id"], e["event_time_ms"], e["account_id"], e.get("org_id") or "", e.get("end_user_id"),
        e.get("api_key_hash") or "", e.get("account_created_ms"), e.get("client_ip_prefix") or "", e.get("client_asn"),
        e.get("client_country"), e.get("user_agent"), e.get("tls_ja4"), e.get("sdk_name"),
        e.get("conversation_id"), e["turn_index"], e["operation_name"], e["provider_name"],
        e["request_model"], e.get("response_model"), e["input_tokens"], e["output_tokens"],
        e.get("request_max_tokens"), e.get("request_temperature"), e.get("request_top_p"),
        e["request_choice_count"], e["request_logprobs"], e["request_top_logprobs"],
        e["request_logit_bias"], e["request_tools_count"], e["response_status"],
        e.get("response_finish_reason"), e["refusal"], e["latency_ms"], sketch["minhash"],
        sketch["template_hash"], sketch["length_chars"], sketch.get("length_words", 0),
        sketch.get("cot_elicitation", False), sketch is not _NO_SKETCH, e.get("reasoning_output_tokens"),
        e.get("cache_read_input_tokens"), e.get("cache_creation_input_tokens"), e.get("cache_hit"),
        *_watermark_cells(e), bool(e.get("protected")), e.get("reasoning_withheld_tokens"),
        bool(e.get("logprobs_withheld")), partition, offset,
    ]  # fmt: skip


_NO_WATERMARK: Payload = {"applied": False}
_NO_COMPLETION: Payload = {"minhash": [], "bands": []}


def _watermark_cells(e: Payload) -> list[Any]:
    mark = e.get("watermark") or _NO_WATERMARK
    completion = e.get("completion_sketch") or _NO_COMPLETION
    return [
        mark is not _NO_WATERMARK, mark["applied"], mark.get("engine") or "", mark.get("algorithm") or "",
        mark.get("prf") or "", mark.get("context_width"), mark.get("key_id") or "", mark.get("unmarked_reason"),
        completion["minhash"], completion.get("bands", []), completion.get("length_words"),
    ]  # fmt: skip


DETECTION_SCHEMA = pa.schema([
    ("detection_id", _STRING), ("detector", _STRING), ("detector_version", _STRING), ("entity_kind", _STRING),
    ("entity", _STRING), ("score", pa.float64()), ("threshold", pa.float64()), ("severity", _STRING),
    ("window_start", _TIME), ("window_end", _TIME), ("detected_at", _TIME), ("summary", _STRING),
    ("accounts", _STRINGS), ("accounts_total", pa.uint32()), ("evidence", _STRING), *_KAFKA,
])  # fmt: skip


def detection_row(d: Payload, partition: int, offset: int) -> list[Any]:
    evidence = d["evidence"]
    return [
        d["detection_id"], d["detector"], d["detector_version"], d["entity_kind"], d["entity"],
        float(d["score"]), float(d["threshold"]), d["severity"], d["window_start_ms"],
        d["window_end_ms"], d["detected_at_ms"], evidence["summary"], evidence["accounts"],
        evidence.get("accounts_total", len(evidence["accounts"])), orjson.dumps(evidence).decode(),
        partition, offset,
    ]  # fmt: skip


ALERT_SCHEMA = pa.schema([
    ("alert_id", _STRING), ("dedup_key", _STRING), ("rule", _STRING), ("severity", _STRING), ("status", _STRING),
    ("summary", _STRING), ("entity_kind", _STRING), ("entity", _STRING), ("detection_ids", _STRINGS),
    ("accounts", _STRINGS), ("first_seen", _TIME), ("last_seen", _TIME), ("fired_at", _TIME),
    ("labels", pa.map_(_STRING, _STRING)), *_KAFKA,
])  # fmt: skip


def alert_row(a: Payload, partition: int, offset: int) -> list[Any]:
    return [
        a["alert_id"], a["dedup_key"], a["rule"], a["severity"], a["status"], a["summary"],
        a["entity_kind"], a["entity"], a["detection_ids"], a["accounts"], a["first_seen_ms"],
        a["last_seen_ms"], a["fired_at_ms"], a.get("labels", {}), partition, offset,
    ]  # fmt: skip


LABEL_SCHEMA = pa.schema([
    ("account_id", _STRING), ("org_id", _STRING), ("label", _STRING), ("class", _STRING), ("campaign", _STRING),
    ("source", _STRING), ("scenario", _STRING), ("note", _STRING), ("labelled_at", _TIME), *_KAFKA,
])  # fmt: skip


def label_row(v: Payload, partition: int, offset: int) -> list[Any]:
    return [
        v["account_id"], v.get("org_id"), v["label"], v.get("class"), v.get("campaign"), v["source"],
        v.get("scenario"), v.get("note"), v["labelled_at_ms"], partition, offset,
    ]  # fmt: skip


_FINGERPRINT = pa.struct([("fingerprint", _STRING), ("weight", pa.float64()), ("sharers", pa.uint32())])

CAMPAIGN_SCHEMA = pa.schema([
    ("campaign_id", _STRING), ("status", _STRING), ("merged_into", _STRING), ("split_from", _STRING),
    ("first_seen", _TIME), ("last_seen", _TIME), ("updated", _TIME), ("severity", _STRING), ("score", pa.float64()),
    ("members", _STRINGS), ("members_total", pa.uint32()), ("shaped_members", pa.uint32()),
    ("fingerprints", pa.list_(_FINGERPRINT)), ("fronting_orgs", _STRINGS), ("related", _STRINGS),
    ("shared_with_related", _STRINGS), *_KAFKA,
])  # fmt: skip


def campaign_row(v: Payload, partition: int, offset: int) -> list[Any]:
    fingerprints = [(f["fingerprint"], float(f["weight"]), f["sharers"]) for f in v["fingerprints"]]
    return [
        v["campaign_id"], v["status"], v.get("merged_into"), v.get("split_from"), v["first_seen_ms"],
        v["last_seen_ms"], v["updated_ms"], v["severity"], float(v["score"]), v["members"], v["members_total"],
        v["shaped_members"], fingerprints, v.get("fronting_orgs", []), v.get("related", []),
        v.get("shared_with_related", []), partition, offset,
    ]  # fmt: skip


DELIVERY_SCHEMA = pa.schema([
    ("delivery_id", _STRING), ("destination", _STRING), ("destination_kind", _STRING), ("alert_id", _STRING),
    ("dedup_key", _STRING), ("alert_status", _STRING), ("status", _STRING), ("attempts", pa.uint16()),
    ("http_status", pa.uint16()), ("error", _STRING), ("delivered_at", _TIME), *_KAFKA,
])  # fmt: skip


def delivery_row(d: Payload, partition: int, offset: int) -> list[Any]:
    return [
        d["delivery_id"], d["destination"], d["destination_kind"], d["alert_id"], d["dedup_key"], d["alert_status"],
        d["status"], d["attempts"], d.get("http_status"), d.get("error"), d["delivered_at_ms"], partition, offset,
    ]  # fmt: skip


SILENCE_SCHEMA = pa.schema([
    ("silence_id", _STRING), ("rule", _STRING), ("entity_kind", _STRING), ("entity", _STRING),
    ("labels", pa.map_(_STRING, _STRING)), ("starts_at", _TIME), ("ends_at", _TIME), ("reason", _STRING),
    ("created_by", _STRING), ("updated_at", _TIME), *_KAFKA,
])  # fmt: skip


def silence_row(s: Payload, partition: int, offset: int) -> list[Any]:
    return [
        s["silence_id"], s.get("rule"), s.get("entity_kind"), s.get("entity"), s.get("labels", {}), s["starts_at_ms"],
        s["ends_at_ms"], s["reason"], s["created_by"], s["updated_at_ms"], partition, offset,
    ]  # fmt: skip


DECISION_SCHEMA = pa.schema([
    ("decision_id", _STRING), ("group_id", _STRING), ("scope", _STRING), ("entity", _STRING), ("action", _STRING),
    ("params", _STRING), ("status", _STRING), ("effect_kind", _STRING), ("effect", _STRING), ("level", pa.uint8()),
    ("policy_name", _STRING), ("policy_revision", _STRING), ("rule", _STRING), ("reason", _STRING),
    ("evidence_source", _STRING), ("campaign_id", _STRING), ("detection_id", _STRING), ("score", pa.float64()),
    ("evidence", _STRING), ("approval_required", pa.bool_()), ("approval_reason", _STRING),
    ("approved_by", _STRING), ("approved_at", _TIME), ("approval_note", _STRING), ("decided_at", _TIME),
    ("expires_at", _TIME), ("updated_at", _TIME), ("supersedes", _STRING), *_KAFKA,
])  # fmt: skip


def decision_row(d: Payload, partition: int, offset: int) -> list[Any]:
    evidence, approval = d["evidence"], d["approval"]
    return [
        d["decision_id"], d["group_id"], d["scope"], d["entity"], d["action"], orjson.dumps(d["params"]).decode(),
        d["status"], d["effect"]["kind"], orjson.dumps(d["effect"]).decode(), d["level"], d["policy"]["name"],
        d["policy"]["revision"], d["rule"], d["reason"], evidence["source"], evidence.get("campaign_id"),
        evidence.get("detection_id"), float(evidence["score"]), orjson.dumps(evidence).decode(),
        approval["required"], approval.get("reason"), approval.get("by"), approval.get("at_ms"),
        approval.get("note"), d["decided_at_ms"], d["expires_at_ms"], d["updated_at_ms"], d.get("supersedes"),
        partition, offset,
    ]  # fmt: skip


BOUNCER_REPORT_SCHEMA = pa.schema([
    ("report_id", _STRING), ("bouncer", _STRING), ("instance", _STRING), ("decision_id", _STRING),
    ("action", _STRING), ("effect", _STRING), ("outcome", _STRING), ("requests", pa.uint64()),
    ("window_start", _TIME), ("window_end", _TIME), *_KAFKA,
])  # fmt: skip


def bouncer_report_row(r: Payload, partition: int, offset: int) -> list[Any]:
    return [
        r["report_id"], r["bouncer"], r["instance"], r["decision_id"], r["action"], r["effect"], r["outcome"],
        r["requests"], r["window_start_ms"], r["window_end_ms"], partition, offset,
    ]  # fmt: skip
