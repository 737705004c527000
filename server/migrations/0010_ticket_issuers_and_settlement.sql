-- Issue 13, house tickets (房票): the issuer's and the operators' side (rules T1, T4, T9-T12,
-- X2). Every money figure is whole fen; the constraints carry what shared/ticket_payouts.py
-- decides, as the voucher tables do (docs/HOUSE_TICKETS.md, "The ledger").

-- Rules T1, X2: the issuer (房票核发人: a district's government or its expropriation office)
-- acts on its own district's tickets only. Rule T4: the housing bureau (住房和城乡建设局)
-- admits the developers and their units: the city's (no district: Shangqiu's 市住建局) or a
-- district's (Suining's 区住建局), then in its district only [choice].
ALTER TABLE accounts DROP CONSTRAINT accounts_role_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_role_check CHECK (role IN (
    'merchant_manager', 'district_operator', 'city_operator', 'auditor',
    'ticket_issuer', 'housing_bureau'));
ALTER TABLE accounts DROP CONSTRAINT accounts_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_district_scope CHECK (CASE role
    WHEN 'district_operator' THEN district IS NOT NULL
    WHEN 'ticket_issuer' THEN district IS NOT NULL
    WHEN 'housing_bureau' THEN true
    ELSE district IS NULL END);

-- Rule T4 (Suining 第七条): a developer leaving the pool gives notice; its units leave the
-- pool at the end of exits_on (the notice day plus the programme's exit_notice_months).
ALTER TABLE listings ADD COLUMN exits_on date,
    ADD CONSTRAINT listings_exit CHECK ((exit_notice_on IS NULL) = (exits_on IS NULL)
        AND (exits_on IS NULL OR exits_on >= exit_notice_on));

-- Rule T12: what was recorded of a use before it is settled to its seller (网签备案, the fund
-- and taxes paid, the unit delivered, the paper 消费联 surrendered) and the buyer's property
-- certificate, which releases the holdback; each with its document's number.
CREATE TABLE ticket_settlement_conditions (
    use_id       bigint NOT NULL REFERENCES ticket_uses (id),
    condition    text NOT NULL CHECK (condition IN ('filed', 'fees_paid', 'delivered',
                     'stub_surrendered', 'certificate')),
    recorded_on  date NOT NULL,
    document_no  text NOT NULL CHECK (length(document_no) BETWEEN 1 AND 64),
    actor        text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (use_id, condition)
);

-- Rule T12: a settlement of a programme's issuing district with its sellers at a point
-- (Suining every 6 months; Shangqiu on a submission), reviewed, approved and paid by three
-- accounts (as S1). A use is in a batch once built, even as a draft (as F3 [choice]).
CREATE TABLE ticket_settlements (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id  text NOT NULL REFERENCES campaigns (id),
    district     text NOT NULL REFERENCES districts (code),
    point        date NOT NULL,
    status       text NOT NULL DEFAULT 'draft'
                     CHECK (status IN ('draft', 'reviewed', 'approved', 'paid')),
    amount_fen   bigint NOT NULL,  -- the lines' net sum (a clawback is negative)
    created_at   timestamptz NOT NULL DEFAULT now(),
    reviewed_at  timestamptz,
    approved_at  timestamptz,
    paid_at      timestamptz,
    reviewed_by  bigint REFERENCES accounts (id),
    approved_by  bigint REFERENCES accounts (id),
    paid_by      bigint REFERENCES accounts (id),
    UNIQUE (campaign_id, district, point),
    CHECK (status = 'draft' OR reviewed_at IS NOT NULL),
    CHECK (status NOT IN ('approved', 'paid') OR approved_at IS NOT NULL),
    CHECK (status <> 'paid' OR paid_at IS NOT NULL),
    CONSTRAINT ticket_settlements_separation_of_duties CHECK (
        reviewed_by <> approved_by AND reviewed_by <> paid_by AND approved_by <> paid_by)
);

-- Rule T12: one payment (or, T11, recovery) for one use at one point: the whole due
-- (Shangqiu), the first 90% or the 10% held back (Suining), or a cancelled use's payments
-- clawed back (negative).
CREATE TABLE ticket_settlement_lines (
    settlement_id  bigint NOT NULL REFERENCES ticket_settlements (id),
    use_id         bigint NOT NULL REFERENCES ticket_uses (id),
    merchant_id    bigint NOT NULL REFERENCES merchants (id),
    kind           text NOT NULL CHECK (kind IN ('full', 'first', 'holdback', 'clawback')),
    amount_fen     bigint NOT NULL CHECK (amount_fen <> 0 AND (kind = 'clawback') = (amount_fen < 0)
                       AND abs(amount_fen) <= 1000000000000),
    PRIMARY KEY (settlement_id, use_id, kind)
);
CREATE INDEX ticket_settlement_lines_use ON ticket_settlement_lines (use_id);

-- Rules T9, T10: money paid to a holder's family (its original ticket): the residual cash-out
-- on application, the usage bonus on review; each with its documents, then its payment.
CREATE TABLE ticket_payouts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id   text NOT NULL REFERENCES campaigns (id),
    original_id   bigint NOT NULL REFERENCES tickets (id),
    kind          text NOT NULL CHECK (kind IN ('cashout', 'bonus')),
    amount_fen    bigint NOT NULL CHECK (amount_fen > 0 AND amount_fen <= 1000000000000),
    rate_bp       integer CHECK (rate_bp BETWEEN 1 AND 10000),  -- the bonus's tier (T10)
    due_by        date,
    decided_on    date NOT NULL,  -- the application granted (T9), the review (T10)
    document_no   text NOT NULL CHECK (length(document_no) BETWEEN 1 AND 64),
    decided_by    text NOT NULL CHECK (length(decided_by) BETWEEN 1 AND 200),
    paid_on       date,
    payment_no    text CHECK (length(payment_no) BETWEEN 1 AND 64),
    paid_by       text CHECK (length(paid_by) BETWEEN 1 AND 200),
    CHECK ((kind = 'bonus') = (rate_bp IS NOT NULL)),
    CHECK ((paid_on IS NULL) = (payment_no IS NULL) AND (paid_on IS NULL) = (paid_by IS NULL)),
    CHECK (paid_on IS NULL OR paid_on >= decided_on)
);
CREATE UNIQUE INDEX ticket_bonus_once ON ticket_payouts (original_id) WHERE kind = 'bonus';
CREATE INDEX ticket_payouts_original ON ticket_payouts (original_id);
CREATE INDEX tickets_campaign_district ON tickets (campaign_id, district);
