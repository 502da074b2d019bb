// Package invoice owns invoices: drafts and their lines, consumption tax
// computed once per invoice per rate, finalization with gapless numbering,
// the terminal transitions void and uncollectible, and credit notes
// (適格返還請求書, their own gapless series) that lower an invoice's amount
// due, credit the customer's balance or record a refund. Every state change
// writes its event, and the tasks it triggers (collecting the invoice by
// Konbini, canceling a replaced voucher, e-mails), in the same transaction.
package invoice
