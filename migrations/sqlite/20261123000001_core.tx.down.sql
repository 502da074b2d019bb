DROP TABLE IF EXISTS documents;

--bun:split

DROP TABLE IF EXISTS balance_transactions;

--bun:split

DROP TABLE IF EXISTS provider_events;

--bun:split

DROP TABLE IF EXISTS vouchers;

--bun:split

DROP TABLE IF EXISTS idempotency_keys;

--bun:split

DROP TABLE IF EXISTS tasks;

--bun:split

DROP TABLE IF EXISTS events;

--bun:split

DROP TABLE IF EXISTS sequences;

--bun:split

DROP TABLE IF EXISTS invoice_lines;

--bun:split

DROP TABLE IF EXISTS invoices;

--bun:split

DROP TABLE IF EXISTS subscription_items;

--bun:split

DROP TABLE IF EXISTS subscriptions;

--bun:split

DROP TABLE IF EXISTS plans;

--bun:split

DROP TABLE IF EXISTS customers;

--bun:split

DROP TABLE IF EXISTS settings;

