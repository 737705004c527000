-- Rule X2: the wallet's sign-in nonces already used (server/pages/signin.py). The page gives a
-- browser a nonce in a cookie; the real-name app's assertion must carry it back, and each
-- nonce signs in once. Kept as the HMAC the page compares (never the cookie itself) until
-- retention forgets it, a day after it could no longer be presented (server/db/retention.py).
CREATE TABLE used_sign_in_nonces (
    nonce       bytea PRIMARY KEY CHECK (length(nonce) = 32),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX used_sign_in_nonces_expires ON used_sign_in_nonces (expires_at);
