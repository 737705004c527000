-- Issue 13, house tickets (房票, rules T1-T14): the second campaign kind on the same ledger.
-- The programme is a campaigns row like a voucher campaign (its config says kind =
-- house_ticket); a developer is a merchant with terminals at its sales office (X1 unchanged).
-- The constraints carry the invariants of shared/house_tickets.py (docs/HOUSE_TICKETS.md).

-- Rule T4: the listing pool — a developer's units, admitted by the housing bureau.
CREATE TABLE listings (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id       text NOT NULL REFERENCES campaigns (id),
    merchant_id       bigint NOT NULL REFERENCES merchants (id),
    unit              text NOT NULL CHECK (length(unit) BETWEEN 1 AND 100),
    district          text NOT NULL REFERENCES districts (code),
    property_type     text NOT NULL CHECK (property_type IN ('residential', 'commercial',
                          'commercial_office', 'office', 'parking', 'storage')),
    area_dm2          integer NOT NULL CHECK (area_dm2 > 0),
    listed_price_fen  bigint NOT NULL CHECK (listed_price_fen > 0
                          AND listed_price_fen <= 1000000000000),
    status            text NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'admitted', 'removed')),
    exit_notice_on    date,
    UNIQUE (merchant_id, unit)
);

-- Rules T1-T3, T6, T13: a ticket or a piece. Its accounts always add up to its face value.
CREATE TABLE tickets (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id        text NOT NULL REFERENCES campaigns (id),
    number             text NOT NULL UNIQUE CHECK (length(number) BETWEEN 1 AND 64),
    filing_no          text NOT NULL CHECK (length(filing_no) BETWEEN 1 AND 64),
    district           text NOT NULL REFERENCES districts (code),
    project            text NOT NULL CHECK (length(project) BETWEEN 1 AND 200),
    implementing_unit  text NOT NULL CHECK (length(implementing_unit) BETWEEN 1 AND 200),
    official           text NOT NULL CHECK (length(official) BETWEEN 1 AND 100),
    agreement_no       text NOT NULL CHECK (length(agreement_no) BETWEEN 1 AND 64),
    agreement_date     date NOT NULL,
    holder             text NOT NULL CHECK (length(holder) BETWEEN 1 AND 128),  -- a person key
    area_dm2           integer CHECK (area_dm2 > 0),
    items              jsonb NOT NULL,  -- [{"code", "amount_fen"}], T1
    face_value_fen     bigint NOT NULL CHECK (face_value_fen > 0
                           AND face_value_fen <= 1000000000000),
    issued_on          date NOT NULL,
    deadline           date NOT NULL CHECK (deadline >= issued_on),
    original_id        bigint NOT NULL REFERENCES tickets (id),
    parent_id          bigint REFERENCES tickets (id),
    generation         smallint NOT NULL DEFAULT 0 CHECK (generation >= 0),
    status             text NOT NULL DEFAULT 'active'
                           CHECK (status IN ('active', 'lost', 'split', 'returned', 'void')),
    balance_fen        bigint NOT NULL CHECK (balance_fen >= 0),
    used_fen           bigint NOT NULL DEFAULT 0 CHECK (used_fen >= 0),
    cashed_out_fen     bigint NOT NULL DEFAULT 0 CHECK (cashed_out_fen >= 0),
    returned_fen       bigint NOT NULL DEFAULT 0 CHECK (returned_fen >= 0),
    split_out_fen      bigint NOT NULL DEFAULT 0 CHECK (split_out_fen >= 0),
    transfers          smallint NOT NULL DEFAULT 0 CHECK (transfers >= 0),
    lost_notice_on     date,
    CONSTRAINT tickets_accounts_add_up CHECK (
        used_fen + cashed_out_fen + returned_fen + split_out_fen + balance_fen = face_value_fen),
    CHECK ((parent_id IS NULL) = (original_id = id AND generation = 0)),
    CHECK ((status = 'lost') = (lost_notice_on IS NOT NULL))
);
CREATE INDEX tickets_original ON tickets (original_id);
CREATE INDEX tickets_holder ON tickets (holder);

-- Rule T1 (Suining): the household members a ticket lists (person keys).
CREATE TABLE ticket_household (
    ticket_id  bigint NOT NULL REFERENCES tickets (id),
    person     text NOT NULL CHECK (length(person) BETWEEN 1 AND 128),
    PRIMARY KEY (ticket_id, person)
);

-- Rule T13: a number replaced after a loss is void for ever.
CREATE TABLE ticket_void_numbers (
    number     text PRIMARY KEY CHECK (length(number) BETWEEN 1 AND 64),
    ticket_id  bigint NOT NULL REFERENCES tickets (id)
);

-- Rule T5: one use per purchase contract (seller + 网签 number), drawing on the holder's
-- tickets; rule U7: the use is its own idempotency record, as a redemption is.
CREATE TABLE ticket_uses (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id      text NOT NULL REFERENCES campaigns (id),
    merchant_id      bigint NOT NULL REFERENCES merchants (id),
    terminal_id      bigint NOT NULL REFERENCES terminals (id),
    listing_id       bigint NOT NULL REFERENCES listings (id),
    contract_no      text NOT NULL CHECK (length(contract_no) BETWEEN 1 AND 64),
    signed_on        date NOT NULL,
    price_fen        bigint NOT NULL CHECK (price_fen > 0 AND price_fen <= 1000000000000),
    buyer            text NOT NULL CHECK (length(buyer) BETWEEN 1 AND 128),
    relation         text NOT NULL CHECK (relation IN ('holder', 'spouse', 'parent', 'child',
                         'household_member')),
    reward_fen       bigint NOT NULL DEFAULT 0 CHECK (reward_fen >= 0),
    idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_hash     bytea NOT NULL CHECK (length(request_hash) = 32),
    used_at          timestamptz NOT NULL,
    cancelled_at     timestamptz,
    CONSTRAINT ticket_uses_one_per_contract UNIQUE (merchant_id, contract_no),
    CONSTRAINT ticket_uses_idempotency_key UNIQUE (terminal_id, idempotency_key)
);

-- One ticket's part in a use (T5-T7).
CREATE TABLE ticket_draws (
    use_id       bigint NOT NULL REFERENCES ticket_uses (id),
    ticket_id    bigint NOT NULL REFERENCES tickets (id),
    amount_fen   bigint NOT NULL CHECK (amount_fen > 0),
    subsidy_bp   integer NOT NULL CHECK (subsidy_bp BETWEEN 0 AND 10000),
    subsidy_fen  bigint NOT NULL CHECK (subsidy_fen >= 0),
    PRIMARY KEY (use_id, ticket_id)
);
CREATE INDEX ticket_draws_ticket ON ticket_draws (ticket_id);

-- Every act on a ticket, with its documents' numbers (T1: every act is audited).
CREATE TABLE ticket_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    act         text NOT NULL CHECK (act ~ '^[a-z][a-z_]{1,31}$'),
    ticket_id   bigint REFERENCES tickets (id),
    use_id      bigint REFERENCES ticket_uses (id),
    amount_fen  bigint,
    documents   jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id);
