-- Issue 13, rule T4 (Suining) [choice]: buying 商业/办公/车位 with a house ticket needs the
-- household to keep a home, verified and recorded by the ticket's issuer before the use. The
-- record lives on the ticket (its pieces inherit it; a new holder's household needs its own),
-- with the verifying document's number; the act is audited in ticket_events ('home_kept').
ALTER TABLE tickets
    ADD COLUMN home_kept_doc text CHECK (length(home_kept_doc) BETWEEN 1 AND 64),
    ADD COLUMN home_kept_on date,
    ADD CONSTRAINT tickets_home_kept CHECK ((home_kept_doc IS NULL) = (home_kept_on IS NULL));
