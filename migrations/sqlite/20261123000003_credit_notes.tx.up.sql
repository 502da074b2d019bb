-- Credit notes (適格返還請求書) and the dunning policy: credit notes and
-- their lines, the credited amounts on invoices, per-subscription dunning
-- overrides, and the next payment reminder of each voucher.

ALTER TABLE invoices ADD COLUMN pre_payment_credit_notes_amount BIGINT NOT NULL DEFAULT 0;

--bun:split

ALTER TABLE invoices ADD COLUMN post_payment_credit_notes_amount BIGINT NOT NULL DEFAULT 0;

--bun:split

ALTER TABLE subscriptions ADD COLUMN dunning TEXT;

--bun:split

ALTER TABLE vouchers ADD COLUMN next_reminder_at TIMESTAMP;

--bun:split

CREATE INDEX vouchers_reminders ON vouchers (next_reminder_at) WHERE status = 'pending' AND next_reminder_at IS NOT NULL;

--bun:split

-- Live vouchers not yet reminded get their reminder on the next pass, as
-- before the schedule existed (one reminder inside the window).
UPDATE vouchers SET next_reminder_at = created_at
WHERE status = 'pending' AND provider_id <> ''
  AND NOT EXISTS (SELECT 1 FROM tasks WHERE tasks.kind = 'email' AND tasks.key = 'reminder:' || vouchers.id);

--bun:split

CREATE TABLE credit_notes (
    id                         TEXT PRIMARY KEY,
    number                     TEXT NOT NULL UNIQUE,
    invoice_id                 TEXT NOT NULL REFERENCES invoices (id),
    customer_id                TEXT NOT NULL REFERENCES customers (id),
    status                     TEXT NOT NULL,
    reason                     TEXT NOT NULL DEFAULT '',
    outcome                    TEXT NOT NULL,
    memo                       TEXT NOT NULL DEFAULT '',
    currency                   TEXT NOT NULL,
    tax_behavior               TEXT NOT NULL,
    subtotal                   BIGINT NOT NULL,
    tax                        BIGINT NOT NULL,
    total                      BIGINT NOT NULL CHECK (total > 0),
    tax_breakdown              TEXT,
    amount_due_before          BIGINT NOT NULL,
    amount_due_after           BIGINT NOT NULL,
    invoice_number             TEXT NOT NULL,
    invoice_date               TIMESTAMP NOT NULL,
    customer_name              TEXT NOT NULL,
    customer_email             TEXT NOT NULL,
    issuer_name                TEXT NOT NULL,
    issuer_registration_number TEXT NOT NULL,
    effective_at               TIMESTAMP NOT NULL,
    created_at                 TIMESTAMP NOT NULL
);

--bun:split

CREATE INDEX credit_notes_invoice ON credit_notes (invoice_id, id);

--bun:split

CREATE INDEX credit_notes_customer ON credit_notes (customer_id, id);

--bun:split

CREATE TABLE credit_note_lines (
    id              TEXT PRIMARY KEY,
    credit_note_id  TEXT NOT NULL REFERENCES credit_notes (id),
    invoice_line_id TEXT REFERENCES invoice_lines (id),
    position        INTEGER NOT NULL,
    description     TEXT NOT NULL,
    quantity        BIGINT NOT NULL,
    unit_amount     BIGINT NOT NULL,
    amount          BIGINT NOT NULL CHECK (amount > 0),
    tax_rate        TEXT NOT NULL,
    period_start    TIMESTAMP,
    period_end      TIMESTAMP
);

--bun:split

CREATE INDEX credit_note_lines_credit_note ON credit_note_lines (credit_note_id, position);
