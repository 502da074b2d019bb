DROP TABLE IF EXISTS credit_note_lines;

--bun:split

DROP TABLE IF EXISTS credit_notes;

--bun:split

DROP INDEX IF EXISTS vouchers_reminders;

--bun:split

ALTER TABLE vouchers DROP COLUMN next_reminder_at;

--bun:split

ALTER TABLE subscriptions DROP COLUMN dunning;

--bun:split

ALTER TABLE invoices DROP COLUMN post_payment_credit_notes_amount;

--bun:split

ALTER TABLE invoices DROP COLUMN pre_payment_credit_notes_amount;
