-- rule X1 (issue 9, item 4): a revoked terminal, a suspended merchant, a disabled account or a
-- revoked citizen is refused at once on every route, whatever token it holds. Each server
-- process keeps these in memory (server/access.py) and learns of a change by polling one
-- counter. The counter is a single row bumped by UPDATE in the transaction that makes the
-- change: the row lock serialises the writers, so versions become visible in version order and
-- a reader that sees version n also sees every change numbered below n.
CREATE TABLE access_version (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    version  bigint NOT NULL CHECK (version >= 0)
);
INSERT INTO access_version (one, version) VALUES (true, 0);

-- One row per change, carrying the principal's new state (not a delta): applying the rows in
-- version order, or any row twice, gives the same view.
CREATE TABLE access_changes (
    version     bigint PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('terminal', 'merchant', 'account', 'citizen')),
    key         bigint NOT NULL,
    blocked     boolean NOT NULL,
    generation  bigint NOT NULL DEFAULT 0 CHECK (generation >= 0),
    at          timestamptz NOT NULL DEFAULT now()
);

-- rule X2 (item 5): an account's tokens carry its generation; disabling, a role change or a
-- password reset bumps it, so every token issued before is refused (re-enabling does not
-- bring the old tokens back: the account signs in again).
ALTER TABLE accounts ADD COLUMN generation bigint NOT NULL DEFAULT 0 CHECK (generation >= 0);

-- rule S1 (item 8): who took each step; no account takes two of review, approve, pay.
ALTER TABLE settlements
    ADD COLUMN reviewed_by bigint REFERENCES accounts (id),
    ADD COLUMN approved_by bigint REFERENCES accounts (id),
    ADD COLUMN paid_by     bigint REFERENCES accounts (id),
    ADD CONSTRAINT settlements_separation_of_duties CHECK (
        reviewed_by <> approved_by AND reviewed_by <> paid_by AND approved_by <> paid_by);

-- rule X1 (item 6): a refund returns vouchers to a revoked citizen as revoked, never available.
-- New edge redeemed -> revoked, allowed only when the owner is revoked; redeemed -> available
-- is refused when the owner is revoked. The owner's row is read FOR SHARE: a revocation
-- running at the same time (UPDATE citizens, then the claw-back) either waits for this refund
-- and then claws its vouchers back, or commits first and is seen here.
CREATE OR REPLACE FUNCTION vouchers_check_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    owner_status text;
BEGIN
    IF NEW.status = OLD.status THEN
        IF NEW.status = 'redeemed' AND NEW.redeemed_at IS DISTINCT FROM OLD.redeemed_at THEN
            RAISE EXCEPTION 'voucher % is already redeemed', OLD.id USING ERRCODE = 'check_violation';
        END IF;
    ELSIF OLD.status = 'redeemed' AND NEW.status IN ('available', 'revoked') THEN
        SELECT status INTO owner_status FROM citizens WHERE id = OLD.citizen_id FOR SHARE;
        IF (owner_status = 'revoked') <> (NEW.status = 'revoked') THEN
            RAISE EXCEPTION 'voucher % cannot go from % to %: its owner is %', OLD.id,
                OLD.status, NEW.status, owner_status USING ERRCODE = 'check_violation';
        END IF;
    ELSIF NOT (OLD.status = 'available' AND NEW.status IN ('redeemed', 'revoked')) THEN
        RAISE EXCEPTION 'voucher % cannot go from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.face_value_fen <> OLD.face_value_fen OR NEW.expires_at <> OLD.expires_at
       OR NEW.citizen_id <> OLD.citizen_id THEN
        -- rule F1: a voucher keeps its value, owner and expiry for life
        RAISE EXCEPTION 'voucher % value, owner and expiry are fixed', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
