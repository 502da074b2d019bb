// Package billing holds billingd's domain: the types every other package
// shares (customers, plans, subscriptions, invoices, vouchers, events), the
// one error vocabulary the API maps to HTTP statuses, money and tax rules,
// and the clock through which all code reads the time.
//
// It imports nothing from the rest of the module. The subpackages provide
// infrastructure around the domain: store (SQLite and PostgreSQL through
// bun), api (the HTTP surface), and scheduler (cron and the test clock).
package billing
