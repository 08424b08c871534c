-- One actor per campaign: when a population linked only by what many actors use (client stacks,
-- public datasets, common wrappers) holds several controllers, the resolver publishes each as its
-- own campaign and names the others as related. Each version keeps that, so an analyst sees the
-- actors apart and what they share. The view that copies versions is made again with the columns.
-- +up
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS related Array(String) DEFAULT [] COMMENT 'other actors found in the same population: related, not the same' AFTER fronting_orgs;
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS shared_with_related Array(String) DEFAULT [] COMMENT 'the fingerprints shared with the related actors, heaviest first' AFTER related;
ALTER TABLE campaign_versions ADD COLUMN IF NOT EXISTS related Array(String) DEFAULT [] COMMENT 'other actors found in the same population: related, not the same' AFTER fronting_orgs;
ALTER TABLE campaign_versions ADD COLUMN IF NOT EXISTS shared_with_related Array(String) DEFAULT [] COMMENT 'the fingerprints shared with the related actors, heaviest first' AFTER related;
DROP VIEW IF EXISTS campaign_versions_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS campaign_versions_mv TO campaign_versions AS
SELECT campaign_id, status, merged_into, split_from, first_seen, last_seen, updated, severity, score, members,
    members_total, shaped_members, fingerprints, fronting_orgs, related, shared_with_related, kafka_partition,
    kafka_offset
FROM campaigns;
-- +down
DROP VIEW IF EXISTS campaign_versions_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS campaign_versions_mv TO campaign_versions AS
SELECT campaign_id, status, merged_into, split_from, first_seen, last_seen, updated, severity, score, members,
    members_total, shaped_members, fingerprints, fronting_orgs, kafka_partition, kafka_offset
FROM campaigns;
ALTER TABLE campaign_versions DROP COLUMN IF EXISTS shared_with_related;
ALTER TABLE campaign_versions DROP COLUMN IF EXISTS related;
ALTER TABLE campaigns DROP COLUMN IF EXISTS shared_with_related;
ALTER TABLE campaigns DROP COLUMN IF EXISTS related;
