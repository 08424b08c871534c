-- What on-call was told (every delivery to a destination, with its outcome) and the silences in
-- force. Failed deliveries of the last day:
--   SELECT destination, count() FROM alert_deliveries WHERE status = 'failed'
--   AND delivered_at > now() - INTERVAL 1 DAY GROUP BY destination
-- Silences in force: SELECT * FROM alert_silences FINAL WHERE ends_at > now64(3)
-- +up
CREATE TABLE IF NOT EXISTS alert_deliveries
(
    delivery_id String,
    destination LowCardinality(String),
    destination_kind LowCardinality(String),
    alert_id String,
    dedup_key String,
    alert_status LowCardinality(String),
    status LowCardinality(String),
    attempts UInt16,
    http_status Nullable(UInt16),
    error Nullable(String),
    delivered_at DateTime64(3, 'UTC'),
    kafka_partition UInt16,
    kafka_offset UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(delivered_at)
ORDER BY (alert_id, destination, delivery_id)
TTL toDateTime(delivered_at) + INTERVAL 180 DAY;
CREATE TABLE IF NOT EXISTS alert_silences
(
    silence_id String,
    rule Nullable(String),
    entity_kind Nullable(String),
    entity Nullable(String),
    labels Map(String, String),
    starts_at DateTime64(3, 'UTC'),
    ends_at DateTime64(3, 'UTC'),
    reason String,
    created_by String,
    updated_at DateTime64(3, 'UTC'),
    kafka_partition UInt16,
    kafka_offset UInt64
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY silence_id;
-- +down
DROP TABLE IF EXISTS alert_silences;
DROP TABLE IF EXISTS alert_deliveries;
