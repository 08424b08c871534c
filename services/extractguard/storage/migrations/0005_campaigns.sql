-- Campaigns as the resolver published them: every version lands as a row, but merges keep only the
-- newest of each campaign (FINAL gives it at once); every version stays in campaign_versions (0060).
-- Members of the live campaigns:
--   SELECT campaign_id, account_id FROM campaign_members WHERE status NOT IN ('merged', 'closed')
-- Which campaign an account is in, with how it was linked:
--   SELECT campaign_id, status, members_total, fingerprints FROM campaigns FINAL WHERE has(members, 'acct-1')
-- +up
CREATE TABLE IF NOT EXISTS campaigns
(
    campaign_id String,
    status LowCardinality(String),
    merged_into Nullable(String),
    split_from Nullable(String),
    first_seen DateTime64(3, 'UTC'),
    last_seen DateTime64(3, 'UTC'),
    updated DateTime64(3, 'UTC'),
    severity LowCardinality(String),
    score Float64,
    members Array(String),
    members_total UInt32,
    shaped_members UInt32,
    fingerprints Array(Tuple(fingerprint String, weight Float64, sharers UInt32)),
    fronting_orgs Array(String) COMMENT 'a reseller or router whose downstream accounts harvest',
    kafka_partition UInt16,
    kafka_offset UInt64
)
ENGINE = ReplacingMergeTree(updated)
ORDER BY campaign_id;
CREATE VIEW IF NOT EXISTS campaign_members AS
SELECT campaign_id, status, arrayJoin(members) AS account_id, first_seen, last_seen, updated
FROM campaigns FINAL;
-- +down
DROP VIEW IF EXISTS campaign_members;
DROP TABLE IF EXISTS campaigns;
