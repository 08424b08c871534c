-- Verdicts on accounts (simulation ground truth, analyst decisions), the newest per account and source.
-- Join with alerts to see what was flagged of whom:
--   SELECT l.class, uniqExact(a.account) FROM (SELECT arrayJoin(accounts) AS account FROM alerts FINAL) a
--   JOIN account_labels FINAL l ON l.account_id = a.account GROUP BY l.class
-- +up
CREATE TABLE IF NOT EXISTS account_labels
(
    account_id String,
    org_id Nullable(String),
    label LowCardinality(String),
    class LowCardinality(Nullable(String)),
    campaign Nullable(String),
    source LowCardinality(String),
    scenario LowCardinality(Nullable(String)),
    note Nullable(String),
    labelled_at DateTime64(3, 'UTC'),
    kafka_partition UInt16,
    kafka_offset UInt64
)
ENGINE = ReplacingMergeTree(labelled_at)
ORDER BY (account_id, source);
-- +down
DROP TABLE IF EXISTS account_labels;
