-- rule U7, unchanged: vouchers move only along allowed edges and keep their value, owner and
-- expiry. The check function now runs only when an update is not the everyday redemption
-- (available -> redeemed, nothing else changed): the trigger's WHEN clause is evaluated by
-- the executor, which spares every redemption a PL/pgSQL call per voucher
-- (docs/BENCHMARKS.md). Anything else still goes through the full check.
DROP TRIGGER vouchers_transition ON vouchers;
CREATE TRIGGER vouchers_transition BEFORE UPDATE ON vouchers
    FOR EACH ROW
    WHEN (NOT (OLD.status = 'available' AND NEW.status = 'redeemed'
               AND NEW.face_value_fen = OLD.face_value_fen
               AND NEW.expires_at = OLD.expires_at
               AND NEW.citizen_id = OLD.citizen_id))
    EXECUTE FUNCTION vouchers_check_transition();
