package delivery

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/mail"
	"billingd/billing/store"
)

// Policy returns the dunning policy of an invoice: defaults with the
// overrides of its subscription (subscriptionID), if it has one.
func Policy(ctx context.Context, db bun.IDB, defaults billing.DunningPolicy, subscriptionID *string) (billing.DunningPolicy, error) {
	if subscriptionID == nil {
		return defaults, nil
	}
	sub := new(billing.Subscription)
	if err := db.NewSelect().Model(sub).Column("id", "dunning").Where("id = ?", *subscriptionID).Scan(ctx); err != nil {
		return defaults, store.Translate(err)
	}
	return defaults.Merge(sub.Dunning), nil
}

// policies returns the dunning policy of each of the invoices, by id.
func policies(ctx context.Context, db bun.IDB, defaults billing.DunningPolicy, invoiceIDs []string) (map[string]billing.DunningPolicy, error) {
	out := make(map[string]billing.DunningPolicy, len(invoiceIDs))
	var invs []*billing.Invoice
	if err := db.NewSelect().Model(&invs).Column("id", "subscription_id").Where("id IN (?)", bun.In(invoiceIDs)).Scan(ctx); err != nil {
		return nil, err
	}
	var subIDs []string
	for _, in := range invs {
		out[in.ID] = defaults
		if in.SubscriptionID != nil {
			subIDs = append(subIDs, *in.SubscriptionID)
		}
	}
	if len(subIDs) == 0 {
		return out, nil
	}
	var subs []*billing.Subscription
	if err := db.NewSelect().Model(&subs).Column("id", "dunning").Where("id IN (?)", bun.In(subIDs)).Where("dunning IS NOT NULL").Scan(ctx); err != nil {
		return nil, err
	}
	bySub := make(map[string]*billing.DunningPolicy, len(subs))
	for _, sub := range subs {
		bySub[sub.ID] = sub.Dunning
	}
	for _, in := range invs {
		if in.SubscriptionID != nil {
			out[in.ID] = defaults.Merge(bySub[*in.SubscriptionID])
		}
	}
	return out, nil
}

// defaults is the operator's policy, with the reminder of ReminderDays when
// it has no schedule of its own.
func (s *Service) defaults() billing.DunningPolicy {
	p := s.Dunning
	if p.ReminderDays == nil && s.ReminderDays > 0 {
		p.ReminderDays = []int{s.ReminderDays}
	}
	return p
}

// reminderBatch is how many vouchers one transaction of Remind handles.
const reminderBatch = 200

// Remind sends the payment reminders that are due at now. Each issued
// voucher carries the instant of its next reminder (set by the collector
// when the provider issued it, from the invoice's dunning policy); Remind
// queues the e-mail of the latest reminder of the schedule that is due (one
// e-mail per voucher and reminder: the task key is
// reminder:<voucher>:<days before the deadline>), records an
// invoice.will_be_due event and moves the voucher to its next reminder.
func (s *Service) Remind(ctx context.Context, now time.Time) error {
	now = now.UTC()
	defaults := s.defaults()
	for {
		var n int
		err := s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
			var vs []*billing.Voucher
			q := tx.NewSelect().Model(&vs).Where("status = 'pending'").Where("next_reminder_at <= ?", now).
				Order("next_reminder_at", "id").Limit(reminderBatch)
			if s.DB.Engine == store.Postgres {
				q = q.For("UPDATE SKIP LOCKED")
			}
			if err := q.Scan(ctx); err != nil || len(vs) == 0 {
				return err
			}
			n = len(vs)
			ids := make([]string, 0, len(vs))
			for _, v := range vs {
				ids = append(ids, v.InvoiceID)
			}
			pols, err := policies(ctx, tx, defaults, ids)
			if err != nil {
				return err
			}
			var events []*billing.Event
			for _, v := range vs {
				p := pols[v.InvoiceID]
				if v.ExpiresAt != nil && v.ProviderID != "" {
					if days, ok := p.DueReminder(*v.ExpiresAt, *v.NextReminderAt, now); ok {
						if err := Enqueue(ctx, tx, mail.KindReminder, v.ID+":"+strconv.Itoa(days), v.InvoiceID, now); err != nil {
							return err
						}
						ev, err := billing.NewEvent(now, "invoice.will_be_due", v.InvoiceID, map[string]any{
							"invoice": v.InvoiceID, "voucher": v.ID, "expires_at": v.ExpiresAt, "days_before": days})
						if err != nil {
							return err
						}
						events = append(events, ev)
					}
				}
				v.NextReminderAt = nil
				if v.ExpiresAt != nil {
					if at, ok := p.NextReminder(*v.ExpiresAt, now); ok {
						at = at.UTC()
						v.NextReminderAt = &at
					}
				}
				if _, err := tx.NewUpdate().Model(v).Column("next_reminder_at").WherePK().Exec(ctx); err != nil {
					return fmt.Errorf("schedule the next reminder of %s: %w", v.ID, err)
				}
			}
			return store.InsertEvents(ctx, tx, events...)
		})
		if err != nil || n < reminderBatch {
			return err
		}
	}
}

// NextReminder returns the next instant after after at which a live voucher
// has a reminder due.
func (s *Service) NextReminder(ctx context.Context, after time.Time) (time.Time, bool, error) {
	var ts []time.Time
	err := s.DB.NewSelect().Model((*billing.Voucher)(nil)).Column("next_reminder_at").Where("status = 'pending'").
		Where("next_reminder_at > ?", after.UTC()).Order("next_reminder_at").Limit(1).Scan(ctx, &ts)
	if err != nil || len(ts) == 0 {
		return time.Time{}, false, store.Translate(err)
	}
	return ts[0], true, nil
}
