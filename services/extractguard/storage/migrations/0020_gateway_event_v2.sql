-- gateway_event v2: what a gateway cannot know is absent. The ASN becomes nullable (NULL: unknown;
-- 0 was a stand-in that made one ASN of all traffic); an absent org, key or address lands as ''
-- (their schema never allows an empty value, and the account_minute rollup keeps its types);
-- events without a prompt sketch say so; the token and cache figures gateways now give.
-- +up
ALTER TABLE events MODIFY COLUMN client_asn Nullable(UInt32);
ALTER TABLE events ADD COLUMN IF NOT EXISTS prompt_sketched Bool DEFAULT true AFTER prompt_cot_elicitation;
ALTER TABLE events ADD COLUMN IF NOT EXISTS reasoning_output_tokens Nullable(UInt32) AFTER prompt_sketched;
ALTER TABLE events ADD COLUMN IF NOT EXISTS cache_read_input_tokens Nullable(UInt32) AFTER reasoning_output_tokens;
ALTER TABLE events ADD COLUMN IF NOT EXISTS cache_creation_input_tokens Nullable(UInt32) AFTER cache_read_input_tokens;
ALTER TABLE events ADD COLUMN IF NOT EXISTS cache_hit Nullable(Bool) AFTER cache_creation_input_tokens;
-- +down
ALTER TABLE events DROP COLUMN IF EXISTS cache_hit;
ALTER TABLE events DROP COLUMN IF EXISTS cache_creation_input_tokens;
ALTER TABLE events DROP COLUMN IF EXISTS cache_read_input_tokens;
ALTER TABLE events DROP COLUMN IF EXISTS reasoning_output_tokens;
ALTER TABLE events DROP COLUMN IF EXISTS prompt_sketched;
ALTER TABLE events MODIFY COLUMN client_asn UInt32 DEFAULT 0;
