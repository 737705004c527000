-- rule U4, updated (issue 11 item 3): a bill is merchant + business date + receipt number, and
-- also the till where the merchant numbers receipts per till. Shops restart their receipt
-- counters every day and many number each till on its own; a receipt number unique per shop
-- forever refused real bills ("0002" of till 2, then "0002" of till 1).

-- The business date of an instant: its calendar date in Asia/Shanghai (SPEC U4), the one home
-- of that rule in the ledger. shared/rules.py business_date says the same for the server's
-- code; tests/integration/test_receipt_numbers.py checks that they agree around midnight.
CREATE FUNCTION business_date_of(at timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (at AT TIME ZONE 'Asia/Shanghai')::date;

-- The merchant's settings [choice]: receipts numbered per till (U4), and a refund needs a
-- merchant manager's approval (issue 11 item 5), enforced by the server.
ALTER TABLE merchants
    ADD COLUMN receipts_per_till boolean NOT NULL DEFAULT false,
    ADD COLUMN refund_needs_manager boolean NOT NULL DEFAULT false;

-- Existing bills get the business date of the moment they were made (the column is computed,
-- so no write can ever disagree with created_at) and the shop-wide scope: the old uniqueness
-- per merchant forever implies the new one, so the unique index builds on any ledger.
ALTER TABLE redemptions
    ADD COLUMN business_date date GENERATED ALWAYS AS (business_date_of(created_at)) STORED,
    -- NULL: the receipt number is the shop's; a till's id: numbered per till (the setting,
    -- read by the writing statement itself)
    ADD COLUMN receipt_till bigint,
    ADD CONSTRAINT redemptions_receipt_till_is_the_terminal
        CHECK (receipt_till IS NULL OR receipt_till = terminal_id),
    DROP CONSTRAINT redemptions_merchant_id_receipt_no_key;

-- The database itself refuses a second bill (U4, U7), under any concurrency. A lookup by
-- merchant, date and receipt number (the quote's check, the cashier's search) uses it too.
CREATE UNIQUE INDEX redemptions_receipt_no_per_day
    ON redemptions (merchant_id, business_date, receipt_no, receipt_till) NULLS NOT DISTINCT;

-- issue 11 item 5: the merchant manager who approved a refund, when one did.
ALTER TABLE refunds ADD COLUMN approved_by bigint REFERENCES accounts (id);
