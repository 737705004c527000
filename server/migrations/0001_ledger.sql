-- The ledger. PostgreSQL is the source of truth: the invariants of ../shared/SPEC.md that a
-- database can hold are held here, so no code path (or Redis failure) can break them.
-- Money is integer fen (bigint) everywhere; 10^12 fen is the largest amount the API accepts.

-- rule C1: a campaign is data; the validated file is kept as JSON beside its key fields.
CREATE TABLE campaigns (
    id              text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    stacking_group  text NOT NULL,
    config          jsonb NOT NULL,
    loaded_at       timestamptz NOT NULL DEFAULT now()
);

-- rule C2: districts named by the loaded campaigns (codes such as 'dongchangfu').
CREATE TABLE districts (
    code  text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_-]{1,31}$'),
    name  text NOT NULL CHECK (length(name) BETWEEN 1 AND 100)
);

-- rule E3: certificate records imported from the registration office.
CREATE TABLE certificates (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cert_no               text NOT NULL UNIQUE CHECK (length(cert_no) BETWEEN 1 AND 64),
    district              text NOT NULL REFERENCES districts (code),
    property_type         text NOT NULL CHECK (property_type IN ('housing', 'non_housing')),
    new_build             boolean NOT NULL,
    invoice_excl_vat_fen  bigint NOT NULL CHECK (invoice_excl_vat_fen BETWEEN 0 AND 1000000000000),
    tax_relief_fen        bigint NOT NULL CHECK (tax_relief_fen BETWEEN 0 AND 1000000000000),
    issued_on             date NOT NULL,
    imported_at           timestamptz NOT NULL DEFAULT now()
);

-- rules E3, X3: owners are known only by a keyed hash of the ID number and its masked form.
CREATE TABLE certificate_owners (
    certificate_id  bigint NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
    id_hash         bytea NOT NULL CHECK (length(id_hash) = 32),
    id_masked       text NOT NULL CHECK (id_masked ~ '^[0-9]{4}\*{10}[0-9]{3}[0-9X]$'),
    PRIMARY KEY (certificate_id, id_hash)
);
CREATE INDEX certificate_owners_id_hash ON certificate_owners (id_hash);

-- rules X1, X3: a citizen is a keyed hash, a masked number and a pseudonymous subject (the
-- only identifier that ever leaves the server, e.g. in a QR token).
CREATE TABLE citizens (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id_hash         bytea NOT NULL UNIQUE CHECK (length(id_hash) = 32),
    id_masked       text NOT NULL CHECK (id_masked ~ '^[0-9]{4}\*{10}[0-9]{3}[0-9X]$'),
    subject         uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    revoked_at      timestamptz,
    revoked_reason  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'revoked') = (revoked_at IS NOT NULL AND revoked_reason IS NOT NULL))
);

-- rules E4, A1-A3, V1: one claim per certificate, ever, whoever of its owners makes it.
CREATE TABLE claims (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id     text NOT NULL REFERENCES campaigns (id),
    certificate_id  bigint NOT NULL UNIQUE REFERENCES certificates (id),
    citizen_id      bigint NOT NULL REFERENCES citizens (id),
    base_fen        bigint NOT NULL CHECK (base_fen >= 0),
    rate_bp         integer NOT NULL CHECK (rate_bp > 0 AND rate_bp <= 10000),
    voucher_count   integer NOT NULL CHECK (voucher_count > 0),
    face_value_fen  bigint NOT NULL CHECK (face_value_fen > 0),
    claimed_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    CHECK (expires_at > claimed_at),
    -- rule A3: never more vouchers than base x rate covers
    CHECK (voucher_count::numeric * face_value_fen * 10000 <= base_fen::numeric * rate_bp)
);
CREATE INDEX claims_citizen ON claims (citizen_id);

-- rules V1, V2, U7: 'expired' is not a state but a time (expires_at <= now); a voucher is
-- available, redeemed (on a live redemption item) or revoked (clawed back, rule X1).
CREATE TABLE vouchers (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id     text NOT NULL REFERENCES campaigns (id),
    claim_id        bigint NOT NULL REFERENCES claims (id),
    citizen_id      bigint NOT NULL REFERENCES citizens (id),
    face_value_fen  bigint NOT NULL CHECK (face_value_fen > 0),
    expires_at      timestamptz NOT NULL,
    status          text NOT NULL DEFAULT 'available'
                    CHECK (status IN ('available', 'redeemed', 'revoked')),
    redeemed_at     timestamptz,
    CHECK ((status = 'redeemed') = (redeemed_at IS NOT NULL))
);
CREATE INDEX vouchers_citizen_available ON vouchers (citizen_id, expires_at, id)
    WHERE status = 'available';
CREATE INDEX vouchers_citizen ON vouchers (citizen_id);
CREATE INDEX vouchers_claim ON vouchers (claim_id);

-- rule U7: a voucher changes state only along the allowed edges; in particular it cannot go
-- from redeemed to redeemed again. Together with the conditional UPDATE ... WHERE status =
-- 'available' and the unique live redemption item below, the database refuses double spends.
CREATE FUNCTION vouchers_check_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = OLD.status THEN
        IF NEW.status = 'redeemed' AND NEW.redeemed_at IS DISTINCT FROM OLD.redeemed_at THEN
            RAISE EXCEPTION 'voucher % is already redeemed', OLD.id USING ERRCODE = 'check_violation';
        END IF;
    ELSIF NOT ((OLD.status = 'available' AND NEW.status IN ('redeemed', 'revoked'))
            OR (OLD.status = 'redeemed' AND NEW.status = 'available')) THEN
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
CREATE TRIGGER vouchers_transition BEFORE UPDATE ON vouchers
    FOR EACH ROW EXECUTE FUNCTION vouchers_check_transition();

-- rules U1, U2, X1
CREATE TABLE merchants (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    district    text NOT NULL REFERENCES districts (code),
    admitted    boolean NOT NULL DEFAULT false,  -- by the commerce bureau
    permitted   boolean NOT NULL DEFAULT false,  -- redemption permission, by the district
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- rules U1, X2: a cashier terminal belongs to one merchant; its credential is stored hashed.
CREATE TABLE terminals (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id      bigint NOT NULL REFERENCES merchants (id),
    label            text NOT NULL CHECK (length(label) BETWEEN 1 AND 100),
    credential_hash  bytea NOT NULL,
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    revoked_at       timestamptz,
    CHECK ((status = 'revoked') = (revoked_at IS NOT NULL))
);
CREATE INDEX terminals_merchant ON terminals (merchant_id);

-- rule X2: staff accounts; a district operator has one district, a merchant manager one merchant.
CREATE TABLE accounts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username         text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9_.-]{2,63}$'),
    role             text NOT NULL CHECK (role IN
                         ('merchant_manager', 'district_operator', 'city_operator', 'auditor')),
    district         text REFERENCES districts (code),
    merchant_id      bigint REFERENCES merchants (id),
    credential_hash  bytea NOT NULL,
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((role = 'district_operator') = (district IS NOT NULL)),
    CHECK ((role = 'merchant_manager') = (merchant_id IS NOT NULL))
);

-- rules S1, F3: a monthly batch per campaign and district; a redemption is in at most one.
CREATE TABLE settlements (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id      text NOT NULL REFERENCES campaigns (id),
    district         text NOT NULL REFERENCES districts (code),
    month            date NOT NULL CHECK (extract(day FROM month) = 1),
    status           text NOT NULL DEFAULT 'draft'
                     CHECK (status IN ('draft', 'reviewed', 'approved', 'paid')),
    redemption_count integer NOT NULL DEFAULT 0 CHECK (redemption_count >= 0),
    voucher_count    integer NOT NULL DEFAULT 0 CHECK (voucher_count >= 0),
    amount_fen       bigint NOT NULL DEFAULT 0 CHECK (amount_fen >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    reviewed_at      timestamptz,
    approved_at      timestamptz,
    paid_at          timestamptz,
    UNIQUE (campaign_id, district, month),
    CHECK (status = 'draft' OR reviewed_at IS NOT NULL),
    CHECK (status NOT IN ('approved', 'paid') OR approved_at IS NOT NULL),
    CHECK (status <> 'paid' OR paid_at IS NOT NULL)
);
CREATE TABLE settlement_lines (
    settlement_id     bigint NOT NULL REFERENCES settlements (id) ON DELETE CASCADE,
    merchant_id       bigint NOT NULL REFERENCES merchants (id),
    redemption_count  integer NOT NULL CHECK (redemption_count > 0),
    voucher_count     integer NOT NULL CHECK (voucher_count >= 0),
    amount_fen        bigint NOT NULL CHECK (amount_fen >= 0),
    PRIMARY KEY (settlement_id, merchant_id)
);

-- rule U5: a QR token is single-use; its id is written in the redeeming transaction.
CREATE TABLE consumed_tokens (
    jti          uuid PRIMARY KEY,
    citizen_id   bigint NOT NULL REFERENCES citizens (id),
    expires_at   timestamptz NOT NULL,
    consumed_at  timestamptz NOT NULL DEFAULT now()
);

-- rules U3, U4, U7: one redemption per bill (merchant + receipt number), across campaigns.
CREATE TABLE redemptions (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id          text NOT NULL REFERENCES campaigns (id),
    merchant_id          bigint NOT NULL REFERENCES merchants (id),
    terminal_id          bigint NOT NULL REFERENCES terminals (id),
    citizen_id           bigint NOT NULL REFERENCES citizens (id),
    receipt_no           text NOT NULL CHECK (length(receipt_no) BETWEEN 1 AND 64),
    bill_fen             bigint NOT NULL CHECK (bill_fen > 0 AND bill_fen <= 1000000000000),
    spend_threshold_fen  bigint NOT NULL CHECK (spend_threshold_fen > 0),
    face_value_fen       bigint NOT NULL CHECK (face_value_fen > 0),
    voucher_count        integer NOT NULL CHECK (voucher_count > 0),
    refunded_count       integer NOT NULL DEFAULT 0,
    token_jti            uuid NOT NULL REFERENCES consumed_tokens (jti),
    -- rule U7: the redemption is its own idempotency record (key + hash of the request)
    idempotency_key      text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_hash         bytea NOT NULL CHECK (length(request_hash) = 32),
    created_at           timestamptz NOT NULL DEFAULT now(),
    settlement_id        bigint REFERENCES settlements (id),
    UNIQUE (merchant_id, receipt_no),
    UNIQUE (terminal_id, idempotency_key),
    -- rule U3: at most one voucher per full threshold of the bill
    CHECK (voucher_count::numeric * spend_threshold_fen <= bill_fen),
    CHECK (refunded_count BETWEEN 0 AND voucher_count)
);
CREATE INDEX redemptions_merchant_day ON redemptions (merchant_id, created_at);
CREATE INDEX redemptions_citizen ON redemptions (citizen_id);
CREATE INDEX redemptions_unsettled ON redemptions (campaign_id, created_at)
    WHERE settlement_id IS NULL;

-- rules F1-F3
CREATE TABLE refunds (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    redemption_id       bigint NOT NULL REFERENCES redemptions (id),
    terminal_id         bigint NOT NULL REFERENCES terminals (id),
    remaining_bill_fen  bigint NOT NULL CHECK (remaining_bill_fen >= 0),
    returned_count      integer NOT NULL CHECK (returned_count >= 0),
    idempotency_key     text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_hash        bytea NOT NULL CHECK (length(request_hash) = 32),
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (terminal_id, idempotency_key)
);
CREATE INDEX refunds_redemption ON refunds (redemption_id);

-- rule U7: which vouchers a redemption used; a refund marks the ones it returned. A voucher
-- is on at most one live (unrefunded) item: the database itself refuses a second redemption.
CREATE TABLE redemption_items (
    redemption_id  bigint NOT NULL REFERENCES redemptions (id),
    voucher_id     bigint NOT NULL REFERENCES vouchers (id),
    refund_id      bigint REFERENCES refunds (id),
    PRIMARY KEY (redemption_id, voucher_id)
);
CREATE UNIQUE INDEX redemption_items_one_live ON redemption_items (voucher_id)
    WHERE refund_id IS NULL;

-- rule U7: idempotency keys of other writes (redemptions and refunds carry their own),
-- scoped to a terminal, kept at least the campaign's retention.
CREATE TABLE idempotency_keys (
    terminal_id      bigint NOT NULL REFERENCES terminals (id),
    key              text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash     bytea NOT NULL CHECK (length(request_hash) = 32),
    response_status  integer NOT NULL CHECK (response_status BETWEEN 200 AND 599),
    response_body    jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (terminal_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- rule X1: the audit log is append-only; the database refuses UPDATE, DELETE and TRUNCATE.
CREATE TABLE audit_log (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    action   text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.]{1,63}$'),
    subject  text,
    reason   text,
    details  jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

-- Aborts the statement that calls it with a stable code, so a single write statement can
-- refuse atomically (e.g. when a voucher it meant to take was taken meanwhile: rule U7).
CREATE FUNCTION voucher_abort(code text) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', code USING ERRCODE = 'VC001';
END $$;
