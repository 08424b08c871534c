-- gateway_event v2, additive: the watermark the serving engine applied (by key id, never the key;
-- or why none was: greedy, beam_search, opted_out, engine_without) and the completion's sketch
-- (MinHash signature and its LSH band hashes; never the text). Events without them land with
-- watermark_known false and an empty sketch. (No skip index on the bands yet: an index cannot be
-- added through the Distributed table that the cluster rewrite also alters; the audit reads one
-- campaign's take, which the table's account_id order already narrows.)
-- +up
ALTER TABLE events ADD COLUMN IF NOT EXISTS watermark_known Bool DEFAULT false AFTER cache_hit;
ALTER TABLE events ADD COLUMN IF NOT EXISTS watermark_applied Bool DEFAULT false AFTER watermark_known;
ALTER TABLE events ADD COLUMN IF NOT EXISTS watermark_engine LowCardinality(String) DEFAULT '' AFTER watermark_applied;
ALTER TABLE events ADD COLUMN IF NOT EXISTS watermark_algorithm LowCardinality(String) DEFAULT '' AFTER watermark_engine;
ALTER TABLE events ADD COLUMN IF NOT EXISTS watermark_prf LowCardinality(String) DEFAULT '' AFTER watermark_algorithm;
ALTER TABLE events ADD COLUMN IF NOT EXISTS watermark_context_width Nullable(UInt8) AFTER watermark_prf;
ALTER TABLE events ADD COLUMN IF NOT EXISTS watermark_key_id LowCardinality(String) DEFAULT '' AFTER watermark_context_width;
ALTER TABLE events ADD COLUMN IF NOT EXISTS watermark_unmarked_reason LowCardinality(Nullable(String)) AFTER watermark_key_id;
ALTER TABLE events ADD COLUMN IF NOT EXISTS completion_minhash Array(UInt32) AFTER watermark_unmarked_reason;
ALTER TABLE events ADD COLUMN IF NOT EXISTS completion_bands Array(UInt32) AFTER completion_minhash;
ALTER TABLE events ADD COLUMN IF NOT EXISTS completion_length_words Nullable(UInt32) AFTER completion_bands;
-- +down
ALTER TABLE events DROP COLUMN IF EXISTS completion_length_words;
ALTER TABLE events DROP COLUMN IF EXISTS completion_bands;
ALTER TABLE events DROP COLUMN IF EXISTS completion_minhash;
ALTER TABLE events DROP COLUMN IF EXISTS watermark_unmarked_reason;
ALTER TABLE events DROP COLUMN IF EXISTS watermark_key_id;
ALTER TABLE events DROP COLUMN IF EXISTS watermark_context_width;
ALTER TABLE events DROP COLUMN IF EXISTS watermark_prf;
ALTER TABLE events DROP COLUMN IF EXISTS watermark_algorithm;
ALTER TABLE events DROP COLUMN IF EXISTS watermark_engine;
ALTER TABLE events DROP COLUMN IF EXISTS watermark_applied;
ALTER TABLE events DROP COLUMN IF EXISTS watermark_known;
