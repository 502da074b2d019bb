// Package admin is the operator's dashboard: server-rendered HTML under
// /admin/ (html/template from templates/admin, no JavaScript), in Japanese
// and English, for the operator's staff to see and act on billing without
// writing curl.
//
// # Pages and actions
//
// The overview shows this month's issued and paid amounts, what is open and
// overdue, vouchers about to expire, failed outbox tasks (e-mails and other
// side effects), webhook deliveries given up on and disabled webhook
// endpoints (read from their tables), and collections that need action.
// Customers can be searched by name, e-mail or kana (hiragana, half-width
// and spacing are folded); a customer page lists subscriptions, invoices,
// the balance ledger and events; an invoice page shows lines, vouchers,
// credit notes, e-mails, events and the stored PDFs (credit notes' too).
// Actions call the services the API calls (invoice.Service Finalize, Void,
// MarkUncollectible, CreateCreditNote) or record work for the workers in
// one transaction with an event (reissue a voucher, resend an e-mail); the
// daemon's Kick then runs the collector and the outbox at once. A credit
// note is issued for a tax-included amount (an invoice with one tax rate)
// or for all that is left to credit. Exports are streamed through
// export.Write, like GET /v1/exports/{kind}.
//
// # Sessions
//
// Staff log in with the operator API key or, if set, the admin password.
// Sessions live in memory in this process, in a map keyed by a random
// 256-bit id that is the session cookie's value; each has its own CSRF
// token, required in every form that changes something. A map rather than
// a signed cookie because logging out really ends the session, and nothing
// but a random id ever leaves the server. The cost: a restart logs everyone
// out, and several daemons behind one address (PostgreSQL) need sticky
// sessions. The session cookie is HttpOnly, SameSite=Lax, limited to
// /admin/, and Secure when the request came over TLS (or always, with
// Server.SecureCookies, behind a TLS-terminating proxy). The login form is
// protected against login CSRF with a double-submit cookie, and repeated
// failures from one address are throttled.
//
// Session lifetimes use the wall clock, not the billing clock: advancing
// the test clock a year must not log the operator out.
package admin
