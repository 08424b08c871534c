-- The enforcement audit trail: every version of every decision (what, on whom, why, on what
-- evidence, who approved it, when it expires), and what the bouncers enforced under each.
-- Decisions in force now:
--   SELECT scope, entity, action, status, expires_at FROM decisions FINAL
--   WHERE status IN ('active', 'pending_approval') AND expires_at > now64(3)
-- Requests refused per decision of a campaign:
--   SELECT d.decision_id, d.action, sum(r.requests) FROM decisions FINAL AS d
--   INNER JOIN bouncer_reports AS r ON r.decision_id = d.decision_id
--   WHERE d.campaign_id = 'cmp-…' AND r.outcome IN ('throttled', 'challenged', 'denied') GROUP BY 1, 2
-- +up
CREATE TABLE IF NOT EXISTS decisions
(
    decision_id String,
    group_id String,
    scope LowCardinality(String),
    entity String,
    action LowCardinality(String),
    params String COMMENT 'JSON: the action parameters the policy gave',
    status LowCardinality(String),
    effect_kind LowCardinality(String),
    effect String COMMENT 'JSON: what bouncers enforced under this version',
    level UInt8,
    policy_name LowCardinality(String),
    policy_revision LowCardinality(String),
    rule LowCardinality(String),
    reason String,
    evidence_source LowCardinality(String),
    campaign_id Nullable(String),
    detection_id Nullable(String),
    score Float64,
    evidence String COMMENT 'JSON: the evidence weighed',
    approval_required Bool,
    approval_reason Nullable(String),
    approved_by Nullable(String),
    approved_at Nullable(DateTime64(3, 'UTC')),
    approval_note Nullable(String),
    decided_at DateTime64(3, 'UTC'),
    expires_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    supersedes Nullable(String),
    kafka_partition UInt16,
    kafka_offset UInt64
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY decision_id;
CREATE TABLE IF NOT EXISTS bouncer_reports
(
    report_id String,
    bouncer LowCardinality(String),
    instance String,
    decision_id String,
    action LowCardinality(String),
    effect LowCardinality(String),
    outcome LowCardinality(String),
    requests UInt64,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    kafka_partition UInt16,
    kafka_offset UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(window_end)
ORDER BY (decision_id, report_id)
TTL toDateTime(window_end) + INTERVAL 400 DAY;
-- +down
DROP TABLE IF EXISTS bouncer_reports;
DROP TABLE IF EXISTS decisions;
