CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

--bun:split

CREATE TABLE customers (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    email               TEXT NOT NULL,
    phone               TEXT NOT NULL DEFAULT '',
    kana_name           TEXT NOT NULL DEFAULT '',
    language            TEXT NOT NULL DEFAULT 'ja',
    address             TEXT NOT NULL DEFAULT '',
    registration_number TEXT NOT NULL DEFAULT '',
    metadata            TEXT,
    balance             BIGINT NOT NULL DEFAULT 0,
    created_at          TIMESTAMP NOT NULL
);

--bun:split

CREATE INDEX customers_email ON customers (email);

--bun:split

CREATE TABLE plans (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    amount         BIGINT NOT NULL CHECK (amount >= 0),
    currency       TEXT NOT NULL,
    interval       TEXT NOT NULL,
    interval_count INTEGER NOT NULL CHECK (interval_count >= 1),
    tax_rate       TEXT NOT NULL,
    tax_behavior   TEXT NOT NULL,
    created_at     TIMESTAMP NOT NULL
);

--bun:split

CREATE TABLE subscriptions (
    id                   TEXT PRIMARY KEY,
    customer_id          TEXT NOT NULL REFERENCES customers (id),
    status               TEXT NOT NULL,
    interval             TEXT NOT NULL,
    interval_count       INTEGER NOT NULL,
    start_date           TIMESTAMP NOT NULL,
    billing_cycle_anchor TIMESTAMP NOT NULL,
    days_until_due       INTEGER NOT NULL,
    current_period_start TIMESTAMP,
    current_period_end   TIMESTAMP,
    next_billing_at      TIMESTAMP,
    cancel_at_period_end BOOLEAN NOT NULL DEFAULT FALSE,
    canceled_at          TIMESTAMP,
    ended_at             TIMESTAMP,
    created_at           TIMESTAMP NOT NULL
);

--bun:split

CREATE INDEX subscriptions_due ON subscriptions (next_billing_at, id) WHERE next_billing_at IS NOT NULL;

--bun:split

CREATE INDEX subscriptions_customer ON subscriptions (customer_id);

--bun:split

CREATE TABLE subscription_items (
    id              TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id),
    plan_id         TEXT NOT NULL REFERENCES plans (id),
    quantity        BIGINT NOT NULL CHECK (quantity >= 1)
);

--bun:split

CREATE INDEX subscription_items_subscription ON subscription_items (subscription_id);

--bun:split

CREATE TABLE invoices (
    id                         TEXT PRIMARY KEY,
    number                     TEXT UNIQUE,
    status                     TEXT NOT NULL,
    customer_id                TEXT NOT NULL REFERENCES customers (id),
    subscription_id            TEXT REFERENCES subscriptions (id),
    billing_reason             TEXT NOT NULL,
    currency                   TEXT NOT NULL,
    tax_behavior               TEXT NOT NULL,
    period_start               TIMESTAMP,
    period_end                 TIMESTAMP,
    days_until_due             INTEGER NOT NULL,
    due_date                   TIMESTAMP,
    subtotal                   BIGINT NOT NULL,
    tax                        BIGINT NOT NULL,
    total                      BIGINT NOT NULL,
    starting_balance           BIGINT NOT NULL DEFAULT 0,
    amount_due                 BIGINT NOT NULL,
    amount_paid                BIGINT NOT NULL,
    amount_remaining           BIGINT NOT NULL,
    carried_to_balance         BIGINT NOT NULL DEFAULT 0,
    tax_breakdown              TEXT,
    customer_name              TEXT NOT NULL,
    customer_email             TEXT NOT NULL,
    issuer_name                TEXT NOT NULL,
    issuer_registration_number TEXT NOT NULL,
    collection_status          TEXT NOT NULL DEFAULT 'none',
    collection_error           TEXT NOT NULL DEFAULT '',
    pay_token                  TEXT NOT NULL UNIQUE,
    created_at                 TIMESTAMP NOT NULL,
    finalized_at               TIMESTAMP,
    paid_at                    TIMESTAMP,
    voided_at                  TIMESTAMP,
    marked_uncollectible_at    TIMESTAMP,
    UNIQUE (subscription_id, period_start)
);

--bun:split

CREATE INDEX invoices_customer ON invoices (customer_id, id);

--bun:split

CREATE INDEX invoices_status ON invoices (status, id);

--bun:split

CREATE INDEX invoices_created ON invoices (created_at);

--bun:split

CREATE INDEX invoices_collection ON invoices (collection_status, id) WHERE collection_status IN ('pending', 'canceling');

--bun:split

CREATE TABLE invoice_lines (
    id           TEXT PRIMARY KEY,
    invoice_id   TEXT NOT NULL REFERENCES invoices (id),
    position     INTEGER NOT NULL,
    description  TEXT NOT NULL,
    plan_id      TEXT,
    quantity     BIGINT NOT NULL,
    unit_amount  BIGINT NOT NULL,
    amount       BIGINT NOT NULL,
    tax_rate     TEXT NOT NULL,
    period_start TIMESTAMP,
    period_end   TIMESTAMP
);

--bun:split

CREATE INDEX invoice_lines_invoice ON invoice_lines (invoice_id, position);

--bun:split

CREATE TABLE vouchers (
    id               TEXT PRIMARY KEY,
    invoice_id       TEXT NOT NULL REFERENCES invoices (id),
    part             INTEGER NOT NULL DEFAULT 0,
    provider         TEXT NOT NULL,
    provider_id      TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL,
    amount           BIGINT NOT NULL CHECK (amount > 0),
    expires_at       TIMESTAMP,
    payment_codes    TEXT,
    instructions_url TEXT NOT NULL DEFAULT '',
    fee              BIGINT,
    fee_vat          BIGINT,
    net              BIGINT,
    failure_code     TEXT NOT NULL DEFAULT '',
    failure_message  TEXT NOT NULL DEFAULT '',
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMP,
    paid_at          TIMESTAMP,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);

--bun:split

CREATE UNIQUE INDEX vouchers_one_live ON vouchers (invoice_id, part) WHERE status = 'pending';

--bun:split

CREATE INDEX vouchers_invoice ON vouchers (invoice_id, id);

--bun:split

CREATE INDEX vouchers_provider_id ON vouchers (provider, provider_id);

--bun:split

CREATE INDEX vouchers_work ON vouchers (next_attempt_at) WHERE status = 'pending';

--bun:split

CREATE TABLE provider_events (
    id           TEXT PRIMARY KEY,
    provider     TEXT NOT NULL,
    type         TEXT NOT NULL,
    charge_id    TEXT NOT NULL,
    body         TEXT NOT NULL,
    received_at  TIMESTAMP NOT NULL,
    processed_at TIMESTAMP,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT ''
);

--bun:split

CREATE INDEX provider_events_unprocessed ON provider_events (received_at) WHERE processed_at IS NULL;

--bun:split

CREATE TABLE balance_transactions (
    id             TEXT PRIMARY KEY,
    customer_id    TEXT NOT NULL REFERENCES customers (id),
    type           TEXT NOT NULL,
    amount         BIGINT NOT NULL,
    ending_balance BIGINT NOT NULL,
    invoice_id     TEXT REFERENCES invoices (id) DEFERRABLE INITIALLY DEFERRED, -- written before the run inserts its invoices
    description    TEXT NOT NULL DEFAULT '',
    created_at     TIMESTAMP NOT NULL
);

--bun:split

CREATE INDEX balance_transactions_customer ON balance_transactions (customer_id, id);

--bun:split

CREATE TABLE documents (
    id         TEXT PRIMARY KEY,
    invoice_id TEXT NOT NULL REFERENCES invoices (id),
    kind       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    content    BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (invoice_id, kind)
);

--bun:split

CREATE TABLE sequences (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

--bun:split

CREATE TABLE events (
    id         TEXT PRIMARY KEY,
    type       TEXT NOT NULL,
    object_id  TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

--bun:split

CREATE INDEX events_object ON events (object_id, id);

--bun:split

CREATE TABLE tasks (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,
    object_id  TEXT NOT NULL,
    run_at     TIMESTAMP NOT NULL,
    status     TEXT NOT NULL DEFAULT 'pending',
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    done_at    TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (kind, key)
);

--bun:split

CREATE INDEX tasks_due ON tasks (run_at) WHERE status = 'pending';

--bun:split

CREATE TABLE idempotency_keys (
    key          TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL
);
