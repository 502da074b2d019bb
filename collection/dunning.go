package collection

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/mail"
	"billingd/billing/outbox"
	"billingd/billing/store"
	"billingd/invoice/delivery"
)

// defaults is the operator's dunning policy, with Reissues and ReissueDays
// where the policy leaves them unset.
func (c *Collector) defaults() billing.DunningPolicy {
	p := c.Dunning
	if p.VoucherReissues == nil && c.Reissues > 0 {
		n := c.Reissues
		p.VoucherReissues = &n
	}
	if p.VoucherReissueDays == nil && c.ReissueDays > 0 {
		n := c.ReissueDays
		p.VoucherReissueDays = &n
	}
	return p
}

// policy returns the dunning policy of an invoice: the operator's, with
// the overrides of the invoice's subscription.
func (c *Collector) policy(ctx context.Context, db bun.IDB, in *billing.Invoice) (billing.DunningPolicy, error) {
	return delivery.Policy(ctx, db, c.defaults(), in.SubscriptionID)
}

// scheduleReminder sets the first reminder of a voucher being issued at
// now, from its invoice's reminder schedule; reminders whose instant has
// passed are skipped (the invoice e-mail is fresh).
func (c *Collector) scheduleReminder(ctx context.Context, db bun.IDB, in *billing.Invoice, v *billing.Voucher, now time.Time) error {
	v.NextReminderAt = nil
	if v.ExpiresAt == nil {
		return nil
	}
	p, err := c.policy(ctx, db, in)
	if err != nil {
		return err
	}
	if at, ok := p.NextReminder(*v.ExpiresAt, now); ok {
		at = at.UTC()
		v.NextReminderAt = &at
	}
	return nil
}

// exhausted carries out the dunning policy's last step on an open invoice
// whose last voucher expired unpaid: an invoice.overdue event, the invoice
// marked uncollectible if the policy says so, its subscription made
// past_due, unpaid or canceled (each with its event), and an e-mail telling
// the customer.
func (c *Collector) exhausted(ctx context.Context, tx bun.Tx, in *billing.Invoice, p billing.DunningPolicy, now time.Time) error {
	if err := record(ctx, tx, now, "invoice.overdue", in.ID, in); err != nil {
		return err
	}
	if p.Invoice() == billing.DunningInvoiceUncollectible {
		in.Status, in.MarkedUncollectibleAt = billing.InvoiceUncollectible, &now
		if _, err := tx.NewUpdate().Model(in).Column("status", "marked_uncollectible_at").WherePK().Exec(ctx); err != nil {
			return err
		}
		if err := record(ctx, tx, now, "invoice.marked_uncollectible", in.ID, in); err != nil {
			return err
		}
	}
	if in.SubscriptionID != nil {
		sub := new(billing.Subscription)
		q := tx.NewUpdate().Model(sub).Where("id = ?", *in.SubscriptionID).Returning("*")
		typ := "subscription.updated"
		switch p.Subscription() {
		case billing.DunningSubscriptionUnpaid:
			q = q.Set("status = ?", billing.SubscriptionUnpaid).
				Where("status IN (?)", bun.In([]billing.SubscriptionStatus{billing.SubscriptionActive, billing.SubscriptionPastDue}))
		case billing.DunningSubscriptionCanceled:
			typ = "subscription.canceled"
			q = q.Set("status = ?", billing.SubscriptionCanceled).Set("canceled_at = ?", now).Set("ended_at = ?", now).
				Set("next_billing_at = NULL").Set("cancel_at_period_end = ?", false).Set("has_pending_items = ?", false).
				Set("pause_behavior = ''").Set("pause_resumes_at = NULL").
				Where("status <> ?", billing.SubscriptionCanceled)
			// As with a cancellation without invoice_now, the pending
			// prorations are dropped: nothing will invoice them.
			if _, err := tx.NewUpdate().Model((*billing.InvoiceItem)(nil)).Set("status = ?", billing.ItemDeleted).
				Where("subscription_id = ?", *in.SubscriptionID).Where("status = ?", billing.ItemPending).Exec(ctx); err != nil {
				return err
			}
		default:
			q = q.Set("status = ?", billing.SubscriptionPastDue).Where("status = ?", billing.SubscriptionActive)
		}
		res, err := q.Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			if err := record(ctx, tx, now, typ, sub.ID, sub); err != nil {
				return err
			}
		}
	}
	return delivery.Enqueue(ctx, tx, mail.KindOverdue, in.ID, in.ID, now)
}

// HandleCancelVoucher is the outbox handler of invoice.TaskCancelVoucher
// tasks: it cancels at the provider a voucher that a credit note replaced
// (already canceled here). A creation still in flight is waited for, then
// looked up by its attempt id. Opn cannot cancel a Konbini charge: a
// payment of it still arrives and is applied to the invoice, any excess
// going to the customer's balance.
func (c *Collector) HandleCancelVoucher(ctx context.Context, t *billing.Task, now time.Time) error {
	v := new(billing.Voucher)
	if err := c.DB.NewSelect().Model(v).Where("id = ?", t.Key).Scan(ctx); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return outbox.Permanent(billing.NotFound("voucher", t.Key))
		}
		return store.Translate(err)
	}
	if v.Status != StatusCanceled {
		return nil // paid meanwhile: nothing to cancel
	}
	id := v.ProviderID
	if id == "" {
		if v.NextAttemptAt != nil && v.NextAttemptAt.After(now) {
			return errors.New("the voucher's creation may still be in flight; cancel it after its lease")
		}
		ch, err := c.Provider.FindByAttempt(ctx, v.InvoiceID, v.ID, v.CreatedAt)
		if err != nil || ch == nil {
			return err
		}
		id = ch.ID
		if _, err := c.DB.NewUpdate().Model(v).Set("provider_id = ?", id).WherePK().Where("provider_id = ''").Exec(ctx); err != nil {
			return store.Translate(err)
		}
	}
	if err := c.Provider.Cancel(ctx, id); err != nil {
		if IsTemporary(err) {
			return err
		}
		return outbox.Permanent(err)
	}
	return nil
}
