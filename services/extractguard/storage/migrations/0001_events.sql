-- Raw gateway events, one row per request; prompts appear only as sketches.
-- ReplacingMergeTree on event_id guards against duplicates sent by the gateway itself; the lander's
-- offset tracking (kafka_partition, kafka_offset) keeps the pipeline from adding any.
-- +up
CREATE TABLE IF NOT EXISTS events
(
    event_id String,
    event_time DateTime64(3, 'UTC'),
    account_id String,
    org_id String,
    end_user_id Nullable(String),
    api_key_hash String,
    account_created Nullable(DateTime64(3, 'UTC')),
    client_ip_prefix String,
    client_asn UInt32,
    client_country LowCardinality(Nullable(String)),
    user_agent Nullable(String),
    tls_ja4 LowCardinality(Nullable(String)),
    sdk_name LowCardinality(Nullable(String)),
    conversation_id Nullable(String),
    turn_index UInt32,
    operation_name LowCardinality(String),
    provider_name LowCardinality(String),
    request_model LowCardinality(String),
    response_model LowCardinality(Nullable(String)),
    input_tokens UInt32,
    output_tokens UInt32,
    request_max_tokens Nullable(UInt32),
    request_temperature Nullable(Float32),
    request_top_p Nullable(Float32),
    request_choice_count UInt16,
    request_logprobs Bool,
    request_top_logprobs UInt8,
    request_logit_bias Bool,
    request_tools_count UInt16,
    response_status UInt16,
    response_finish_reason LowCardinality(Nullable(String)),
    refusal Bool,
    latency_ms UInt32,
    prompt_minhash Array(UInt32),
    prompt_template_hash String,
    prompt_length_chars UInt32,
    prompt_length_words UInt32,
    prompt_cot_elicitation Bool,
    kafka_partition UInt16,
    kafka_offset UInt64,
    landed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (account_id, event_time, event_id)
TTL toDateTime(event_time) + INTERVAL {events_ttl_days} DAY;
-- +down
DROP TABLE IF EXISTS events;
