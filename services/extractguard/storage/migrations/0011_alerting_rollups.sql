-- Rollups the scheduled SQL alert rules read (alerting/rules/sql.yaml), each an AggregatingMergeTree
-- fed by a materialised view on the raw events, so a rule never scans raw events:
--   org_hour: per org and hour, distinct API keys and accounts (a reseller minting keys);
--   account_day_t0: per account and day, output tokens of temperature-0 requests (greedy harvest);
--   prefix_hour_new_accounts: per IP prefix and hour of signup, accounts seen there in their first day
--   (signup waves: an account is counted in the hour it was created, once).
-- Query with -Merge, e.g. SELECT org_id, uniqMerge(api_keys) FROM org_hour GROUP BY org_id
-- +up
CREATE TABLE IF NOT EXISTS org_hour
(
    org_id String,
    hour DateTime('UTC'),
    requests AggregateFunction(count),
    api_keys AggregateFunction(uniq, String),
    accounts AggregateFunction(uniq, String),
    account_sample AggregateFunction(groupUniqArray(50), String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (org_id, hour)
TTL hour + INTERVAL 90 DAY;
CREATE MATERIALIZED VIEW IF NOT EXISTS org_hour_mv TO org_hour AS
SELECT
    org_id,
    toStartOfHour(event_time) AS hour,
    countState() AS requests,
    uniqState(api_key_hash) AS api_keys,
    uniqState(account_id) AS accounts,
    groupUniqArrayState(50)(account_id) AS account_sample
FROM events
GROUP BY org_id, hour;
CREATE TABLE IF NOT EXISTS account_day_t0
(
    account_id String,
    day Date,
    org_id SimpleAggregateFunction(any, String),
    requests AggregateFunction(count),
    output_tokens AggregateFunction(sum, UInt32)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, account_id)
TTL day + INTERVAL 90 DAY;
CREATE MATERIALIZED VIEW IF NOT EXISTS account_day_t0_mv TO account_day_t0 AS
SELECT
    account_id,
    toDate(event_time) AS day,
    any(org_id) AS org_id,
    countState() AS requests,
    sumState(output_tokens) AS output_tokens
FROM events
WHERE request_temperature = 0
GROUP BY account_id, day;
CREATE TABLE IF NOT EXISTS prefix_hour_new_accounts
(
    client_ip_prefix String,
    created_hour DateTime('UTC'),
    new_accounts AggregateFunction(uniq, String),
    account_sample AggregateFunction(groupUniqArray(50), String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(created_hour)
ORDER BY (client_ip_prefix, created_hour)
TTL created_hour + INTERVAL 90 DAY;
CREATE MATERIALIZED VIEW IF NOT EXISTS prefix_hour_new_accounts_mv TO prefix_hour_new_accounts AS
SELECT
    client_ip_prefix,
    toStartOfHour(assumeNotNull(account_created)) AS created_hour,
    uniqState(account_id) AS new_accounts,
    groupUniqArrayState(50)(account_id) AS account_sample
FROM events
WHERE account_created IS NOT NULL AND event_time - account_created < 86400
GROUP BY client_ip_prefix, created_hour;
-- +down
DROP VIEW IF EXISTS prefix_hour_new_accounts_mv;
DROP TABLE IF EXISTS prefix_hour_new_accounts;
DROP VIEW IF EXISTS account_day_t0_mv;
DROP TABLE IF EXISTS account_day_t0;
DROP VIEW IF EXISTS org_hour_mv;
DROP TABLE IF EXISTS org_hour;
