-- Reconciliation reads the vouchers past their deadline that may still change at
-- the provider (live ones, and ones canceled here that Opn cannot cancel), by
-- deadline, on every collector pass.
CREATE INDEX vouchers_reconcile ON vouchers (expires_at) WHERE status IN ('pending', 'canceled');
