DROP INDEX IF EXISTS vouchers_reconcile;
