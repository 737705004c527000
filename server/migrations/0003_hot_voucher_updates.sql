-- Redeeming and refunding change only a voucher's status and redeemed_at. With neither in any
-- index (nor in a partial index's predicate) and room left on each page, PostgreSQL updates
-- the row in place (a HOT update): no new entries in the voucher indexes and less WAL for
-- every voucher spent or returned (docs/BENCHMARKS.md). A citizen's available vouchers are
-- found through vouchers_citizen: a handful of rows on one page, filtered by status.
DROP INDEX vouchers_citizen_available;
ALTER TABLE vouchers SET (fillfactor = 85);
