package collection

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/mail"
	"billingd/billing/parallel"
	"billingd/billing/store"
	"billingd/invoice/delivery"
)

// backoff is the wait before the n-th retry of a provider call: 1, 2, 4 …
// minutes, at most an hour.
func backoff(n int) time.Duration {
	d := time.Minute << min(n-1, 6)
	return min(d, time.Hour)
}

// createAll calls the provider for every voucher row that has no provider id
// yet and whose attempt is due. A row is leased before the call, so a
// concurrent pass leaves it alone; a retry first looks the attempt up, so a
// charge whose response was lost is adopted, not created twice.
func (c *Collector) createAll(ctx context.Context, now time.Time) error {
	for {
		var vs []*billing.Voucher
		err := c.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
			q := tx.NewSelect().Model(&vs).Where("status = ?", StatusPending).Where("provider_id = ''").
				Where("next_attempt_at <= ?", now.UTC()).Order("next_attempt_at", "part").Limit(20)
			if c.DB.Engine == store.Postgres {
				q = q.For("UPDATE SKIP LOCKED")
			}
			if err := q.Scan(ctx); err != nil || len(vs) == 0 {
				return err
			}
			lease := c.leaseEnd(now)
			for _, v := range vs {
				v.Attempts++
				v.NextAttemptAt = &lease
			}
			_, err := tx.NewUpdate().Model(&vs).Column("attempts", "next_attempt_at").Bulk().Exec(ctx)
			return err
		})
		if err != nil || len(vs) == 0 {
			return err
		}
		// Provider calls take most of the time: several at once, one
		// invoice's (the parts of a split) one after the other.
		err = parallel.Groups(c.Concurrency, vs, func(v *billing.Voucher) string { return v.InvoiceID },
			func(v *billing.Voucher) error {
				if mine, err := c.renew(ctx, v, now); err != nil || !mine {
					return err
				}
				return c.createOne(ctx, v, now)
			})
		if err != nil {
			return err
		}
	}
}

// renew extends v's creation lease from the clock's time, just before its
// provider call: the batch's earlier creations may have taken most of it.
// It reports false if another pass has taken v over since (its attempt
// count moved on) or it is settled: then v is left to it.
func (c *Collector) renew(ctx context.Context, v *billing.Voucher, now time.Time) (bool, error) {
	res, err := c.DB.NewUpdate().Model((*billing.Voucher)(nil)).Set("next_attempt_at = ?", c.leaseEnd(now)).Where("id = ?", v.ID).
		Where("attempts = ?", v.Attempts).Where("status = ?", StatusPending).Where("provider_id = ''").Exec(ctx)
	if err != nil {
		return false, store.Translate(err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// leaseEnd is when a creation lease taken now ends. It is dated from the
// clock: a round may reach creation long after the instant it was started
// for.
func (c *Collector) leaseEnd(now time.Time) time.Time {
	return billing.NotBefore(c.Clock, now).UTC().Add(creationLease)
}

func (c *Collector) createOne(ctx context.Context, v *billing.Voucher, now time.Time) error {
	in := new(billing.Invoice)
	if err := c.DB.NewSelect().Model(in).Where("id = ?", v.InvoiceID).Scan(ctx); err != nil {
		return store.Translate(err)
	}
	if in.Status != billing.InvoiceOpen {
		if in.CollectionStatus == billing.CollectionCanceling {
			return nil // the cancel pass settles vouchers of ended invoices
		}
		return c.withdraw(ctx, v, now)
	}
	cust := new(billing.Customer)
	if err := c.DB.NewSelect().Model(cust).Where("id = ?", in.CustomerID).Scan(ctx); err != nil {
		return store.Translate(err)
	}
	var ch *Charge
	var err error
	if v.Attempts > 1 {
		ch, err = c.Provider.FindByAttempt(ctx, in.ID, v.ID, v.CreatedAt)
	}
	if err == nil && ch == nil {
		ch, err = c.Provider.Create(ctx, c.request(in, cust, v))
	}
	var orphan bool  // created at the provider for a voucher canceled meanwhile
	var settled bool // found no longer pending at the provider
	txErr := c.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		cur := new(billing.Voucher)
		if err := c.DB.ForUpdate(tx.NewSelect().Model(cur).Where("id = ?", v.ID)).Scan(ctx); err != nil {
			return err
		}
		if cur.ProviderID == "" && cur.Status == StatusCanceled && err == nil {
			// Canceled here while the provider created it (a credit note,
			// a void): keep its id, so reconciliation still learns of a
			// payment, and cancel it there below.
			orphan = true
			_, err := tx.NewUpdate().Model(cur).Set("provider_id = ?", ch.ID).WherePK().Exec(ctx)
			return err
		}
		if cur.ProviderID != "" || cur.Status != StatusPending {
			return nil // settled meanwhile (a webhook adopted it)
		}
		switch {
		case err == nil && ch.Status != StatusPending:
			// Adopted already paid, expired or failed (a retry found the
			// charge of a lost response late): only its id here; apply,
			// below, records what happened to it like any webhook.
			settled = true
			_, err := tx.NewUpdate().Model(cur).Set("provider_id = ?", ch.ID).WherePK().Exec(ctx)
			return err
		case err == nil:
			fill(cur, ch, now)
			cur.NextAttemptAt = nil
			// The reminders of the invoice's dunning policy count down to
			// this voucher's deadline.
			if err := c.scheduleReminder(ctx, tx, in, cur, now); err != nil {
				return err
			}
			if _, err := tx.NewUpdate().Model(cur).WherePK().Exec(ctx); err != nil {
				return err
			}
			if err := record(ctx, tx, now, "invoice.voucher_created", in.ID, cur); err != nil {
				return err
			}
			// The customer hears of it: the invoice e-mail for the first
			// voucher, a "new voucher" e-mail for a reissue (the voucher
			// it follows expired or failed; one replaced after a credit
			// note is announced by the credit note's e-mail).
			var before []string
			err := tx.NewSelect().Model((*billing.Voucher)(nil)).Column("status").Where("invoice_id = ?", in.ID).Where("part = ?", cur.Part).
				Where("id <> ?", cur.ID).Where("status <> ?", StatusPending).OrderExpr("id DESC").Limit(1).Scan(ctx, &before)
			if err != nil {
				return err
			}
			if reissue := len(before) == 1 && (before[0] == StatusExpired || before[0] == StatusFailed); reissue {
				return delivery.Enqueue(ctx, tx, mail.KindReissued, cur.ID, in.ID, now)
			}
			return delivery.Enqueue(ctx, tx, mail.KindInvoice, in.ID, in.ID, now)
		case IsTemporary(err):
			next := now.UTC().Add(backoff(cur.Attempts))
			cur.NextAttemptAt, cur.FailureMessage = &next, err.Error()
			c.Logger.Warn("voucher creation failed; will retry", "invoice", in.ID, "voucher", v.ID, "attempt", cur.Attempts, "retry_at", next, "err", err)
			_, err := tx.NewUpdate().Model(cur).Column("next_attempt_at", "failure_message").WherePK().Exec(ctx)
			return err
		}
		var pe *Error
		cur.Status, cur.FailureMessage, cur.NextAttemptAt, cur.UpdatedAt = StatusFailed, billing.ErrorMessage(err), nil, now.UTC()
		if errors.As(err, &pe) {
			cur.FailureCode, cur.FailureMessage = pe.Code, pe.Message
		}
		if _, err := tx.NewUpdate().Model(cur).WherePK().Exec(ctx); err != nil {
			return err
		}
		inv := new(billing.Invoice)
		if err := c.DB.ForUpdate(tx.NewSelect().Model(inv).Where("id = ?", in.ID)).Scan(ctx); err != nil {
			return err
		}
		return c.actionRequired(ctx, tx, inv, fmt.Sprintf("%s refused the voucher: %s", c.Provider.Name(), cur.FailureMessage))
	})
	if txErr == nil && settled {
		return c.apply(ctx, ch, now)
	}
	if txErr == nil && orphan {
		if err := c.Provider.Cancel(ctx, ch.ID); err != nil {
			c.Logger.Warn("could not cancel the charge of a voucher canceled during its creation", "voucher", v.ID, "charge", ch.ID, "err", err)
		}
	}
	return txErr
}

// fill copies a provider's charge onto a voucher row.
func fill(v *billing.Voucher, ch *Charge, now time.Time) {
	v.ProviderID, v.Status = ch.ID, ch.Status
	if !ch.ExpiresAt.IsZero() {
		exp := ch.ExpiresAt.UTC()
		v.ExpiresAt = &exp
	}
	if len(ch.PaymentCodes) > 0 {
		v.PaymentCodes = ch.PaymentCodes
	}
	if ch.InstructionsURL != "" {
		v.InstructionsURL = ch.InstructionsURL
	}
	if ch.Fee != nil {
		v.Fee, v.FeeVAT, v.Net = ch.Fee, ch.FeeVAT, ch.Net
	}
	v.FailureCode, v.FailureMessage = ch.FailureCode, ch.FailureMessage
	if ch.PaidAt != nil {
		p := ch.PaidAt.UTC()
		v.PaidAt = &p
	}
	v.UpdatedAt = now.UTC()
}

// cancelAll settles the live vouchers of invoices that ended (voided): each
// is canceled at the provider where possible and marked canceled here. Opn
// cannot cancel a Konbini charge, so a customer may still pay it; such a
// payment becomes a credit on the customer's balance.
func (c *Collector) cancelAll(ctx context.Context, now time.Time) error {
	var invs []*billing.Invoice
	if err := c.DB.NewSelect().Model(&invs).Where("collection_status = ?", billing.CollectionCanceling).Order("id").Limit(100).Scan(ctx); err != nil {
		return store.Translate(err)
	}
	var errs []error
	for _, in := range invs {
		if err := c.cancelInvoice(ctx, in, now); err != nil {
			// One the provider refuses must not hold up the others.
			errs = append(errs, fmt.Errorf("cancel vouchers of invoice %s: %w", in.ID, err))
		}
	}
	return errors.Join(errs...)
}

// cancelInvoice cancels the live vouchers of an ended invoice, here and at
// the provider, and ends its collection.
func (c *Collector) cancelInvoice(ctx context.Context, in *billing.Invoice, now time.Time) error {
	c.Logger.Debug("canceling vouchers of ended invoice", "invoice", in.ID, "status", in.Status)
	var vs []*billing.Voucher
	if err := c.DB.NewSelect().Model(&vs).Where("invoice_id = ?", in.ID).Where("status = ?", StatusPending).Scan(ctx); err != nil {
		return store.Translate(err)
	}
	c.Logger.Debug("live vouchers to cancel", "invoice", in.ID, "count", len(vs))
	for _, v := range vs {
		id := v.ProviderID
		if id == "" && v.Attempts > 0 { // the provider may have it without our knowing
			ch, err := c.Provider.FindByAttempt(ctx, in.ID, v.ID, v.CreatedAt)
			if err != nil {
				return err
			}
			if ch != nil {
				id = ch.ID
			}
		}
		if id != "" {
			if err := c.Provider.Cancel(ctx, id); err != nil {
				return err
			}
		}
		v.ProviderID, v.Status, v.NextAttemptAt, v.UpdatedAt = id, StatusCanceled, nil, now.UTC()
		if _, err := c.DB.NewUpdate().Model(v).Column("provider_id", "status", "next_attempt_at", "updated_at").WherePK().Where("status = ?", StatusPending).Exec(ctx); err != nil {
			return store.Translate(err)
		}
	}
	if _, err := c.DB.NewUpdate().Model(in).Set("collection_status = ?", billing.CollectionNone).WherePK().Where("collection_status = ?", billing.CollectionCanceling).Exec(ctx); err != nil {
		return store.Translate(err)
	}
	return nil
}

// ProviderEvent is a webhook from a provider, stored raw before it is
// applied, and de-duplicated by the provider's event id.
type ProviderEvent struct {
	bun.BaseModel `bun:"table:provider_events"`

	ID          string     `bun:"id,pk"`
	Provider    string     `bun:"provider"`
	Type        string     `bun:"type"`
	ChargeID    string     `bun:"charge_id"`
	Body        string     `bun:"body"`
	ReceivedAt  time.Time  `bun:"received_at"`
	ProcessedAt *time.Time `bun:"processed_at"`
	Attempts    int        `bun:"attempts"`
	LastError   string     `bun:"last_error"`
}

// WebhookHandler receives the provider's webhooks: it verifies the
// signature, stores the event (a duplicate is acknowledged and ignored) and
// answers at once; kick, if set, asks for the event to be applied soon.
func (c *Collector) WebhookHandler(kick func()) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		now := c.Clock.Now()
		ev, err := c.Provider.ParseWebhook(r.Header, body, now)
		if err != nil {
			// A bad signature or body is a 400 and changes nothing.
			c.Logger.Warn("webhook rejected", "provider", c.Provider.Name(), "err", err)
			http.Error(w, billing.ErrorMessage(err), http.StatusBadRequest)
			return
		}
		pe := &ProviderEvent{ID: ev.ID, Provider: c.Provider.Name(), Type: ev.Type, ChargeID: ev.ChargeID, Body: string(body), ReceivedAt: now.UTC()}
		if _, err := c.DB.NewInsert().Model(pe).On("CONFLICT (id) DO NOTHING").Exec(r.Context()); err != nil {
			c.Logger.Error("store webhook", "err", err)
			http.Error(w, "could not store the event; retry", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"received":true}`)
		if kick != nil {
			kick()
		}
	}
}

// applyEvents applies stored provider events: each names a charge, which is
// fetched from the provider and acted on as the provider reports it.
func (c *Collector) applyEvents(ctx context.Context, now time.Time) error {
	var evs []*ProviderEvent
	if err := c.DB.NewSelect().Model(&evs).Where("processed_at IS NULL").Where("attempts < 20").Order("received_at").Limit(100).Scan(ctx); err != nil {
		return store.Translate(err)
	}
	var errs []error
	for _, ev := range evs {
		var err error
		if ev.ChargeID != "" {
			var ch *Charge
			if ch, err = c.Provider.Get(ctx, ev.ChargeID); err == nil {
				err = c.apply(ctx, ch, now)
			}
		}
		q := c.DB.NewUpdate().Model(ev).WherePK()
		if err != nil {
			errs = append(errs, fmt.Errorf("provider event %s: %w", ev.ID, err))
			q = q.Set("attempts = attempts + 1").Set("last_error = ?", err.Error())
		} else {
			q = q.Set("processed_at = ?", now.UTC())
		}
		if _, err := q.Exec(ctx); err != nil {
			return store.Translate(err)
		}
	}
	return errors.Join(errs...)
}

// withdraw cancels a voucher not issued yet (one waiting out its grace
// period, say) of an invoice that is no longer open: an uncollectible
// invoice gets no new voucher. If an earlier attempt may have reached the
// provider, an outbox task looks it up and cancels it there. With no live
// voucher left, the invoice's collection is over.
func (c *Collector) withdraw(ctx context.Context, v *billing.Voucher, now time.Time) error {
	return c.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		in := new(billing.Invoice)
		if err := c.DB.ForUpdate(tx.NewSelect().Model(in).Where("id = ?", v.InvoiceID)).Scan(ctx); err != nil {
			return err
		}
		cur := new(billing.Voucher)
		if err := c.DB.ForUpdate(tx.NewSelect().Model(cur).Where("id = ?", v.ID)).Scan(ctx); err != nil {
			return err
		}
		if cur.ProviderID != "" || cur.Status != StatusPending || in.Status == billing.InvoiceOpen {
			return nil // settled meanwhile
		}
		cur.NextAttemptAt = nil // this pass's lease: no creation is in flight
		if err := cancelHere(ctx, tx, in, cur, fmt.Sprintf("Not issued: the invoice is %s.", in.Status), cur.Attempts > 1, now); err != nil {
			return err
		}
		live, err := tx.NewSelect().Model((*billing.Voucher)(nil)).Where("invoice_id = ?", in.ID).Where("status = ?", StatusPending).Exists(ctx)
		if err != nil || live || in.CollectionStatus != billing.CollectionActive {
			return err
		}
		return c.setCollection(ctx, tx, in, billing.CollectionNone, "", "")
	})
}

// reconcileWindow is how long after its deadline a voucher is asked about:
// the provider's answer is final by then.
const reconcileWindow = 90 * 24 * time.Hour

// reconcile asks the provider about vouchers well past their deadline: live
// ones, and ones canceled here that the provider may not have been able to
// cancel (Opn), so a lost webhook never leaves a payment or an expiry
// unrecorded (D).
func (c *Collector) reconcile(ctx context.Context, now time.Time) error {
	var vs []*billing.Voucher
	err := c.DB.NewSelect().Model(&vs).Where("status IN (?)", bun.In([]string{StatusPending, StatusCanceled})).Where("provider_id <> ''").
		Where("expires_at < ?", now.UTC().Add(-graceAfterExpiry)).
		Where("expires_at > ?", now.UTC().Add(-reconcileWindow)).
		Where("next_attempt_at IS NULL OR next_attempt_at <= ?", now.UTC()).Order("expires_at").Limit(100).Scan(ctx)
	if err != nil {
		return store.Translate(err)
	}
	var errs []error
	for _, v := range vs {
		ch, err := c.Provider.Get(ctx, v.ProviderID)
		if err == nil {
			err = c.apply(ctx, ch, now)
		}
		var next time.Time
		switch {
		case err != nil:
			// One charge the provider cannot answer for must not hold up
			// the others: ask about it again in an hour.
			errs = append(errs, fmt.Errorf("reconcile voucher %s: %w", v.ID, err))
			next = now.UTC().Add(time.Hour)
		case ch.Status == StatusPending && v.Status == StatusCanceled:
			next = now.UTC().Add(24 * time.Hour) // ask again tomorrow: it should have expired
		case ch.Status == StatusPending:
			next = now.UTC().Add(time.Hour) // ask again later, not on every pass
		case v.Status == StatusCanceled && ch.Status != StatusSuccessful:
			// The provider's answer is final and was not a payment: never
			// ask again (past the window of the query above).
			next = v.ExpiresAt.UTC().Add(reconcileWindow + 24*time.Hour)
		default:
			continue
		}
		if _, err := c.DB.NewUpdate().Model(v).Set("next_attempt_at = ?", next).WherePK().Exec(ctx); err != nil {
			return store.Translate(err)
		}
	}
	return errors.Join(errs...)
}
