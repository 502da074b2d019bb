package invoice

import (
	"context"
	"time"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/store"
)

// AdjustBalance appends an entry to a customer's balance ledger and updates
// the balance, in tx. It returns the new balance.
func AdjustBalance(ctx context.Context, tx bun.IDB, customerID string, amount int64, typ string, invoiceID *string, desc string, now time.Time) (int64, error) {
	return AdjustBalanceTaxed(ctx, tx, customerID, amount, typ, invoiceID, desc, nil, now)
}

// AdjustBalanceTaxed is AdjustBalance for a movement that gives back
// consideration (a proration credit): bd splits amount by tax rate.
func AdjustBalanceTaxed(ctx context.Context, tx bun.IDB, customerID string, amount int64, typ string, invoiceID *string, desc string, bd []billing.TaxAmount, now time.Time) (int64, error) {
	var balance int64
	err := tx.NewRaw("UPDATE customers SET balance = balance + ? WHERE id = ? RETURNING balance", amount, customerID).Scan(ctx, &balance)
	if err != nil {
		return 0, store.Translate(err)
	}
	bt := &billing.BalanceTransaction{ID: billing.NewID(billing.PrefixBalanceTxn), CustomerID: customerID, Type: typ, Amount: amount,
		EndingBalance: balance, InvoiceID: invoiceID, Description: desc, TaxBreakdown: bd, CreatedAt: now.UTC()}
	if _, err := tx.NewInsert().Model(bt).Exec(ctx); err != nil {
		return 0, store.Translate(err)
	}
	ev, err := billing.NewEvent(now.UTC(), "customer.balance_transaction.created", customerID, bt)
	if err != nil {
		return 0, err
	}
	return balance, store.InsertEvents(ctx, tx, ev)
}
