-- Detections and alerts as they were emitted, deduplicated by their deterministic ids.
-- +up
CREATE TABLE IF NOT EXISTS detections
(
    detection_id String,
    detector LowCardinality(String),
    detector_version LowCardinality(String),
    entity_kind LowCardinality(String),
    entity String,
    score Float64,
    threshold Float64,
    severity LowCardinality(String),
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    detected_at DateTime64(3, 'UTC'),
    summary String,
    accounts Array(String),
    accounts_total UInt32,
    evidence String COMMENT 'the whole evidence object as JSON',
    kafka_partition UInt16,
    kafka_offset UInt64,
    landed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (detector, entity_kind, entity, window_start, detection_id);
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id String,
    dedup_key String,
    rule LowCardinality(String),
    severity LowCardinality(String),
    status LowCardinality(String),
    summary String,
    entity_kind LowCardinality(String),
    entity String,
    detection_ids Array(String),
    accounts Array(String),
    first_seen DateTime64(3, 'UTC'),
    last_seen DateTime64(3, 'UTC'),
    fired_at DateTime64(3, 'UTC'),
    labels Map(String, String),
    kafka_partition UInt16,
    kafka_offset UInt64
)
ENGINE = ReplacingMergeTree(fired_at)
ORDER BY (alert_id);
-- +down
DROP TABLE IF EXISTS alerts;
DROP TABLE IF EXISTS detections;
