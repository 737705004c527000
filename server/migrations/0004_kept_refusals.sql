-- rule U7, idempotency as payment APIs do it: a redemption that began and was refused keeps
-- its answer under the terminal's key, so a retry with the same key and body gets that same
-- first answer even if the ledger changed since. Requests refused before they began (a
-- malformed body, a bad QR code, a key still in flight) keep nothing. A redemption is never
-- written under a key that holds a refusal (the redeem statement checks).
CREATE TABLE refused_redemptions (
    terminal_id      bigint NOT NULL REFERENCES terminals (id),
    idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_hash     bytea NOT NULL CHECK (length(request_hash) = 32),
    status           integer NOT NULL CHECK (status BETWEEN 400 AND 499),
    answer           jsonb NOT NULL,
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (terminal_id, idempotency_key)
);
