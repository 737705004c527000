-- Issue 9, retention (rule U7). The idempotency_keys table was never written: redemptions and
-- refunds carry their own keys and kept refusals live in refused_redemptions. It goes.
DROP TABLE idempotency_keys;

-- A consumed QR token id is needed only while its token could still be presented: tokens live
-- at most a minute, and the purge (server/db/retention.py) keeps each id at least a day past
-- its expiry. The redemption keeps the id it was made with, so it no longer references the
-- purged row; redemptions themselves are the ledger and are never purged.
ALTER TABLE redemptions DROP CONSTRAINT redemptions_token_jti_fkey;
CREATE INDEX consumed_tokens_expires ON consumed_tokens (expires_at);

-- Kept refusals answer retries with the same key for the retention period, then go.
CREATE INDEX refused_redemptions_created ON refused_redemptions (created_at);
