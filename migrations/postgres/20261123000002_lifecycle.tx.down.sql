DROP TABLE IF EXISTS invoice_items;

--bun:split

ALTER TABLE invoice_lines DROP COLUMN proration;

--bun:split

DROP INDEX IF EXISTS subscriptions_pause_resumes;

--bun:split

ALTER TABLE subscriptions DROP COLUMN has_pending_items;

--bun:split

ALTER TABLE subscriptions DROP COLUMN pause_resumes_at;

--bun:split

ALTER TABLE subscriptions DROP COLUMN pause_behavior;

--bun:split

ALTER TABLE subscriptions DROP COLUMN trial_end;

--bun:split

ALTER TABLE subscriptions DROP COLUMN trial_start;

--bun:split

ALTER TABLE plans DROP COLUMN billing_timing;
