-- Subscription lifecycle: trials, pause, billing in arrears, pending invoice
-- items (prorations waiting for the next invoice).

ALTER TABLE plans ADD COLUMN billing_timing TEXT NOT NULL DEFAULT 'in_advance';

--bun:split

ALTER TABLE subscriptions ADD COLUMN trial_start TIMESTAMP;

--bun:split

ALTER TABLE subscriptions ADD COLUMN trial_end TIMESTAMP;

--bun:split

ALTER TABLE subscriptions ADD COLUMN pause_behavior TEXT NOT NULL DEFAULT '';

--bun:split

ALTER TABLE subscriptions ADD COLUMN pause_resumes_at TIMESTAMP;

--bun:split

ALTER TABLE subscriptions ADD COLUMN has_pending_items BOOLEAN NOT NULL DEFAULT FALSE;

--bun:split

CREATE INDEX subscriptions_pause_resumes ON subscriptions (pause_resumes_at) WHERE pause_resumes_at IS NOT NULL;

--bun:split

ALTER TABLE invoice_lines ADD COLUMN proration BOOLEAN NOT NULL DEFAULT FALSE;

--bun:split

CREATE TABLE invoice_items (
    id              TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL REFERENCES customers (id),
    subscription_id TEXT REFERENCES subscriptions (id),
    status          TEXT NOT NULL, -- pending, invoiced, credited, deleted
    description     TEXT NOT NULL,
    plan_id         TEXT,
    quantity        BIGINT NOT NULL,
    unit_amount     BIGINT NOT NULL,
    amount          BIGINT NOT NULL,
    tax_rate        TEXT NOT NULL,
    proration       BOOLEAN NOT NULL DEFAULT FALSE,
    period_start    TIMESTAMP,
    period_end      TIMESTAMP,
    invoice_id      TEXT REFERENCES invoices (id),
    created_at      TIMESTAMP NOT NULL
);

--bun:split

CREATE INDEX invoice_items_pending ON invoice_items (subscription_id, id) WHERE status = 'pending';

--bun:split

CREATE INDEX invoice_items_customer ON invoice_items (customer_id, id);
