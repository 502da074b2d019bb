package collection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/store"
	"billingd/invoice"
)

// Collector turns open invoices into vouchers and payments into paid
// invoices. It is driven by state, like the billing run: invoices marked
// CollectionPending get voucher rows (the attempt recorded before any call),
// voucher rows without a provider id get created at the provider, stored
// provider events get applied after re-fetching the charge. Every step can
// crash and be redone without a second live voucher or a lost payment.
type Collector struct {
	DB       *store.DB
	Clock    billing.Clock
	Provider Provider
	Settings billing.Settings
	Logger   *slog.Logger
	// SplitAboveMax splits an amount above the provider's maximum into
	// several vouchers; otherwise such an invoice needs action.
	SplitAboveMax bool
	// Reissues is how many new vouchers an invoice gets after one expires
	// unpaid (default 2); ReissueDays is how long each is valid (default 7).
	Reissues, ReissueDays int
	// Dunning is the operator's dunning policy (a subscription's dunning
	// field overrides it): the reminder schedule, the number of reissues and
	// their validity (where set, in place of Reissues and ReissueDays), and
	// what becomes of an invoice and its subscription after the last voucher.
	Dunning billing.DunningPolicy
	// ReissueGrace is how long after an expiry the new voucher is issued
	// (default an hour), so a payment made at the deadline can arrive first.
	ReissueGrace time.Duration
	// ActionRequired counts collections the provider refused.
	ActionRequired prometheus.Counter
	// Concurrency is how many vouchers are created at the provider at once
	// (default parallel.DefaultN).
	Concurrency int

	mu sync.Mutex // one pass at a time in this process
}

// graceAfterExpiry is how long after a voucher's deadline billingd asks the
// provider about it if no webhook came: Stripe reports expiry about an hour
// late because a customer holding the slip may still pay.
const graceAfterExpiry = 2 * time.Hour

// creationLease is how long a voucher creation may run before another pass
// takes it over (looking the attempt up first).
const creationLease = 2 * time.Minute

// Run does all collection work due at now. It is a scheduled job.
func (c *Collector) Run(ctx context.Context, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Payments first (they may end invoices), cancellations last (payments
	// and voids ask for them).
	return errors.Join(
		c.prepare(ctx, now),
		c.applyEvents(ctx, now),
		c.reconcile(ctx, now),
		c.createAll(ctx, now),
		c.cancelAll(ctx, now),
	)
}

// Next returns the next instant after after at which Run has work of its
// own: a creation retry, or a voucher past its deadline to ask about (see
// reconcile).
func (c *Collector) Next(ctx context.Context, after time.Time) (time.Time, bool, error) {
	var retry, overdue []time.Time
	err := c.DB.NewSelect().Model((*billing.Voucher)(nil)).ColumnExpr("next_attempt_at").
		Where("status = ?", StatusPending).Where("next_attempt_at > ?", after.UTC()).
		Order("next_attempt_at").Limit(1).Scan(ctx, &retry)
	if err != nil {
		return time.Time{}, false, store.Translate(err)
	}
	err = c.DB.NewSelect().Model((*billing.Voucher)(nil)).ColumnExpr("expires_at").
		Where("status IN (?)", bun.In([]string{StatusPending, StatusCanceled})).Where("provider_id <> ''").Where("next_attempt_at IS NULL").
		Where("expires_at > ?", after.UTC().Add(-graceAfterExpiry)).Order("expires_at").Limit(1).Scan(ctx, &overdue)
	if err != nil {
		return time.Time{}, false, store.Translate(err)
	}
	var next time.Time
	if len(retry) > 0 {
		next = retry[0]
	}
	if len(overdue) > 0 {
		if t := overdue[0].Add(graceAfterExpiry + time.Second); next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next, !next.IsZero(), nil
}

// prepare gives every invoice marked CollectionPending its voucher rows, or
// closes it by carrying a small amount to the customer's balance, or marks
// it action_required when the provider cannot take it.
func (c *Collector) prepare(ctx context.Context, now time.Time) error {
	for {
		var n int
		err := c.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
			var invs []*billing.Invoice
			q := tx.NewSelect().Model(&invs).Where("collection_status = ?", billing.CollectionPending).Order("id").Limit(50)
			if c.DB.Engine == store.Postgres {
				q = q.For("UPDATE SKIP LOCKED")
			}
			if err := q.Scan(ctx); err != nil {
				return err
			}
			n = len(invs)
			for _, in := range invs {
				if err := c.prepareOne(ctx, tx, in, now); err != nil {
					return fmt.Errorf("prepare collection of %s: %w", in.ID, err)
				}
			}
			return nil
		})
		if err != nil || n == 0 {
			return err
		}
	}
}

func (c *Collector) prepareOne(ctx context.Context, tx bun.Tx, in *billing.Invoice, now time.Time) error {
	now = now.UTC()
	due := in.AmountDue - in.AmountPaid
	lim := c.Provider.Limits()
	if in.Status != billing.InvoiceOpen || due <= 0 {
		return c.setCollection(ctx, tx, in, billing.CollectionNone, "", "")
	}
	if due < lim.Min {
		return c.carryOver(ctx, tx, in, due, now)
	}
	parts := []int64{due}
	if due > lim.Max {
		if !c.SplitAboveMax {
			msg := fmt.Sprintf("The amount due ¥%d is above the %s maximum of ¥%d for one Konbini voucher; set BILLING_SPLIT_VOUCHERS=true to split it or collect it another way.", due, c.Provider.Name(), lim.Max)
			return c.actionRequired(ctx, tx, in, msg)
		}
		parts = split(due, lim.Max)
	}
	cust := new(billing.Customer)
	if err := tx.NewSelect().Model(cust).Where("id = ?", in.CustomerID).Scan(ctx); err != nil {
		return err
	}
	for i, amount := range parts {
		v := c.newVoucher(in, amount, now)
		if len(parts) > 1 {
			v.Part = i + 1
		}
		if err := c.Provider.Validate(c.request(in, cust, v)); err != nil {
			return c.actionRequired(ctx, tx, in, billing.ErrorMessage(err))
		}
		if _, err := tx.NewInsert().Model(v).Exec(ctx); err != nil {
			return err
		}
	}
	return c.setCollection(ctx, tx, in, billing.CollectionActive, "", "")
}

// split divides amount into the fewest parts of at most max, as equal as
// whole yen allow.
func split(amount, max int64) []int64 {
	n := (amount + max - 1) / max
	parts := make([]int64, n)
	for i := range parts {
		parts[i] = amount / n
		if int64(i) < amount%n {
			parts[i]++
		}
	}
	return parts
}

func (c *Collector) newVoucher(in *billing.Invoice, amount int64, now time.Time) *billing.Voucher {
	exp := now.Add(24 * time.Hour)
	if in.DueDate != nil && in.DueDate.After(exp) {
		exp = in.DueDate.UTC()
	}
	return &billing.Voucher{ID: billing.NewID(billing.PrefixCharge), InvoiceID: in.ID, Provider: c.Provider.Name(),
		Status: StatusPending, Amount: amount, ExpiresAt: &exp, NextAttemptAt: &now, CreatedAt: now, UpdatedAt: now}
}

func (c *Collector) request(in *billing.Invoice, cust *billing.Customer, v *billing.Voucher) CreateRequest {
	name := cust.KanaName
	if name == "" {
		name = cust.Name
	}
	desc := "請求書"
	if in.Number != nil {
		desc += " " + *in.Number
	}
	return CreateRequest{InvoiceID: in.ID, AttemptID: v.ID, Amount: v.Amount, ExpiresAt: *v.ExpiresAt,
		Payer: Payer{Name: name, Email: cust.Email, Phone: cust.Phone}, Description: desc}
}

// carryOver closes an invoice whose amount is below the provider's minimum
// by moving it to the customer's balance, to be added to the next invoice,
// as Stripe does.
func (c *Collector) carryOver(ctx context.Context, tx bun.Tx, in *billing.Invoice, amount int64, now time.Time) error {
	if _, err := invoice.AdjustBalance(ctx, tx, in.CustomerID, amount, "carry_over", &in.ID,
		fmt.Sprintf("Invoice %s: ¥%d is below the Konbini minimum and is carried to the next invoice.", num(in), amount), now); err != nil {
		return err
	}
	in.CarriedToBalance, in.AmountRemaining = amount, 0
	in.Status, in.PaidAt, in.CollectionStatus = billing.InvoicePaid, &now, billing.CollectionNone
	if _, err := tx.NewUpdate().Model(in).Column("carried_to_balance", "amount_remaining", "status", "paid_at", "collection_status").WherePK().Exec(ctx); err != nil {
		return err
	}
	return record(ctx, tx, now, "invoice.paid", in.ID, in)
}

func (c *Collector) actionRequired(ctx context.Context, tx bun.IDB, in *billing.Invoice, msg string) error {
	if c.ActionRequired != nil {
		c.ActionRequired.Inc()
	}
	c.Logger.Warn("collection needs action", "invoice", in.ID, "reason", msg)
	return c.setCollection(ctx, tx, in, billing.CollectionActionRequired, msg, "invoice.collection_action_required")
}

func (c *Collector) setCollection(ctx context.Context, tx bun.IDB, in *billing.Invoice, status, msg, event string) error {
	in.CollectionStatus, in.CollectionError = status, msg
	if _, err := tx.NewUpdate().Model(in).Column("collection_status", "collection_error").WherePK().Exec(ctx); err != nil {
		return err
	}
	if event == "" {
		return nil
	}
	return record(ctx, tx, c.Clock.Now(), event, in.ID, in)
}

func record(ctx context.Context, tx bun.IDB, now time.Time, typ, id string, obj any) error {
	ev, err := billing.NewEvent(now.UTC(), typ, id, obj)
	if err != nil {
		return err
	}
	return store.InsertEvents(ctx, tx, ev)
}

func num(in *billing.Invoice) string {
	if in.Number != nil {
		return *in.Number
	}
	return in.ID
}
