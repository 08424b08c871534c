-- Per-account, per-minute rollup: an AggregatingMergeTree of *State columns fed by a materialised
-- view on the raw table, so dashboards and alert rules never scan raw events. Query with -Merge:
--   SELECT account_id, minute, countMerge(requests) FROM account_minute GROUP BY account_id, minute
-- +up
CREATE TABLE IF NOT EXISTS account_minute
(
    account_id String,
    minute DateTime('UTC'),
    org_id SimpleAggregateFunction(any, String),
    requests AggregateFunction(count),
    input_tokens AggregateFunction(sum, UInt32),
    output_tokens AggregateFunction(sum, UInt32),
    logprobs_requests AggregateFunction(sum, UInt8),
    refusals AggregateFunction(sum, UInt8),
    cot_requests AggregateFunction(sum, UInt8),
    distinct_templates AggregateFunction(uniq, String),
    distinct_ip_prefixes AggregateFunction(uniq, String),
    latency_ms_quantiles AggregateFunction(quantiles(0.5, 0.99), UInt32)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (account_id, minute)
TTL minute + INTERVAL 180 DAY;
CREATE MATERIALIZED VIEW IF NOT EXISTS account_minute_mv TO account_minute AS
SELECT
    account_id,
    toStartOfMinute(event_time) AS minute,
    any(org_id) AS org_id,
    countState() AS requests,
    sumState(input_tokens) AS input_tokens,
    sumState(output_tokens) AS output_tokens,
    sumState(toUInt8(request_logprobs)) AS logprobs_requests,
    sumState(toUInt8(refusal)) AS refusals,
    sumState(toUInt8(prompt_cot_elicitation)) AS cot_requests,
    uniqState(prompt_template_hash) AS distinct_templates,
    uniqState(client_ip_prefix) AS distinct_ip_prefixes,
    quantilesState(0.5, 0.99)(latency_ms) AS latency_ms_quantiles
FROM events
GROUP BY account_id, minute;
-- +down
DROP VIEW IF EXISTS account_minute_mv;
DROP TABLE IF EXISTS account_minute;
