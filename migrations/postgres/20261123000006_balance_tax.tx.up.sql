-- A balance movement that stands for consideration given back (a proration
-- credit) carries its tax breakdown, so the journal can reduce sales and
-- consumption tax rate by rate.
ALTER TABLE balance_transactions ADD COLUMN tax_breakdown TEXT;
