package invoice

import (
	"context"
	"testing"
	"time"

	"billingd/billing"
	"billingd/billing/store"
	"billingd/billing/store/storetest"
)

// TestVoidReturnsAppliedBalance voids an invoice that used the customer's
// credit: the credit goes back to the balance, with a ledger row. An
// invoice partly paid is not voided.
func TestVoidReturnsAppliedBalance(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2027, 1, 1, 1, 0, 0, 0, time.UTC)
		svc := &Service{DB: db, Clock: billing.ClockFunc(func() time.Time { return now }), Settings: billing.DefaultSettings()}
		cus := &billing.Customer{ID: billing.NewID(billing.PrefixCustomer), Name: "山田太郎", Email: "taro@example.com", Language: "ja", CreatedAt: now}
		if _, err := db.NewInsert().Model(cus).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := AdjustBalance(ctx, db, cus.ID, -500, "credit_note", nil, "goodwill", now); err != nil {
			t.Fatal(err)
		}
		draft := func() *billing.Invoice {
			in, err := svc.CreateDraft(ctx, DraftParams{Customer: cus.ID, Lines: []LineParams{{Description: "Pro", UnitAmount: ptr[int64](3000)}}})
			if err != nil {
				t.Fatal(err)
			}
			if in, err = svc.Finalize(ctx, in.ID); err != nil {
				t.Fatal(err)
			}
			return in
		}
		in := draft()
		if in.StartingBalance != -500 || in.AmountDue != 2800 {
			t.Fatalf("finalized: starting balance %d, due %d", in.StartingBalance, in.AmountDue)
		}
		if _, err := svc.Void(ctx, in.ID); err != nil {
			t.Fatal(err)
		}
		c := new(billing.Customer)
		if err := db.NewSelect().Model(c).Where("id = ?", cus.ID).Scan(ctx); err != nil || c.Balance != -500 {
			t.Fatalf("balance %d after the void (%v), want the credit of 500 back", c.Balance, err)
		}
		var bt billing.BalanceTransaction
		if err := db.NewSelect().Model(&bt).Where("customer_id = ?", cus.ID).Where("type = 'invoice_voided'").Scan(ctx); err != nil || bt.Amount != -500 {
			t.Fatalf("ledger row %+v %v", bt, err)
		}

		in = draft()
		if _, err := db.NewUpdate().Model(in).Set("amount_paid = 1000").Set("amount_remaining = amount_due - 1000").WherePK().Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Void(ctx, in.ID); billing.ErrorCode(err) != billing.ECONFLICT {
			t.Fatalf("void of a partly paid invoice: %v", err)
		}
	})
}
