// Package subscription owns what is billed and when: customers, plans,
// subscriptions, the period arithmetic that cuts time into billing periods,
// and the billing run that gives every started period exactly one invoice.
//
// Customers and plans live here because they exist to be subscribed; the
// invoices a run creates are finalized by package invoice in the same
// transaction.
//
// The lifecycle (lifecycle.go) changes a subscription mid-period: trials,
// item changes with prorations (proration.go: exact to the second, rounded
// once per line), pauses of collection, cancellation now or at period end
// and reactivation. Prorations wait as invoice items for the next invoice,
// or are invoiced at once; a net credit goes to the customer's balance
// (issuance.go), so no invoice is ever negative.
package subscription
