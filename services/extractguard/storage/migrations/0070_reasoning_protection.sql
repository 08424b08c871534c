-- gateway_event v2, additive: what the protect_reasoning enforcement action withheld from a
-- response (its reasoning, in tokens, and its logprobs). Events without the fields land as not
-- protected, with NULL tokens; so does every event from before.
-- +up
ALTER TABLE events ADD COLUMN IF NOT EXISTS protected Bool DEFAULT false COMMENT 'served under protect_reasoning: reasoning withheld or summarised, logprobs dropped' AFTER completion_length_words;
ALTER TABLE events ADD COLUMN IF NOT EXISTS reasoning_withheld_tokens Nullable(UInt32) COMMENT 'reasoning tokens protection took out of the response (the provider count, else about four characters a token), NULL when not protected' AFTER protected;
ALTER TABLE events ADD COLUMN IF NOT EXISTS logprobs_withheld Bool DEFAULT false COMMENT 'protection dropped the response logprobs' AFTER reasoning_withheld_tokens;
-- +down
ALTER TABLE events DROP COLUMN IF EXISTS logprobs_withheld;
ALTER TABLE events DROP COLUMN IF EXISTS reasoning_withheld_tokens;
ALTER TABLE events DROP COLUMN IF EXISTS protected;
