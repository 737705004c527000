-- rule T4 (issue 13): a developer is a seller admitted, suspended and removed like a shop (X1),
-- and its sales office gets terminals as a shop does. One merchants table for both, told
-- apart by kind: the till's mode (a shop's checkout or a sales office's contract) and the
-- operators' lists follow it; every guarantee keyed on merchant_id holds for both unchanged.
ALTER TABLE merchants
    ADD COLUMN kind text NOT NULL DEFAULT 'shop' CHECK (kind IN ('shop', 'developer'));
