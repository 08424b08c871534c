-- Every version of every campaign the resolver published. `campaigns` is a ReplacingMergeTree by
-- campaign id, so a background merge keeps only the newest version and a campaign's history (its
-- first detection, how it grew) vanishes at a time nobody chooses; this table keeps one row per
-- (campaign, published version) and a materialised view fills it from every insert into
-- `campaigns`. The backfill copies what `campaigns` still holds (versions merged away before this
-- migration are gone). A campaign's timeline:
--   SELECT updated, status, members_total, shaped_members, score FROM campaign_versions FINAL
--   WHERE campaign_id = 'cmp-…' ORDER BY updated
-- +up
CREATE TABLE IF NOT EXISTS campaign_versions
(
    campaign_id String,
    status LowCardinality(String),
    merged_into Nullable(String),
    split_from Nullable(String),
    first_seen DateTime64(3, 'UTC'),
    last_seen DateTime64(3, 'UTC'),
    updated DateTime64(3, 'UTC') COMMENT 'when the resolver published this version',
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
ENGINE = ReplacingMergeTree
ORDER BY (campaign_id, updated);
CREATE MATERIALIZED VIEW IF NOT EXISTS campaign_versions_mv TO campaign_versions AS
SELECT campaign_id, status, merged_into, split_from, first_seen, last_seen, updated, severity, score, members,
    members_total, shaped_members, fingerprints, fronting_orgs, kafka_partition, kafka_offset
FROM campaigns;
INSERT INTO campaign_versions
SELECT campaign_id, status, merged_into, split_from, first_seen, last_seen, updated, severity, score, members,
    members_total, shaped_members, fingerprints, fronting_orgs, kafka_partition, kafka_offset
FROM campaigns;
-- +down
DROP VIEW IF EXISTS campaign_versions_mv;
DROP TABLE IF EXISTS campaign_versions;
