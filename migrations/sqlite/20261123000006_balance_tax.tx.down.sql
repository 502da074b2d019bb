ALTER TABLE balance_transactions DROP COLUMN tax_breakdown;
