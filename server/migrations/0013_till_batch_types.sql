-- Issue 15: the till's batched statements (server/db/redemptions.py) take their bills as one
-- array of a composite type each, not as one array per column: asyncpg checks every element
-- of an array parameter against three abstract base classes, so fifteen arrays of eight bills
-- cost about 22 such checks per bill, one array of records four. Nothing is stored in them.
CREATE TYPE till_context_query AS (
    n           int,
    terminal_id bigint,
    citizen_id  bigint,
    now         timestamptz,
    jti         uuid,
    receipt_no  text
);

CREATE TYPE till_redeem_item AS (
    n                   int,
    now                 timestamptz,
    citizen_id          bigint,
    jti                 uuid,
    jti_expires_at      timestamptz,
    campaign_id         text,
    merchant_id         bigint,
    terminal_id         bigint,
    receipt_no          text,
    bill_fen            bigint,
    spend_threshold_fen bigint,
    face_value_fen      bigint,
    idempotency_key     text,
    request_hash        bytea,
    voucher_count       int
);
