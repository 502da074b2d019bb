package collection

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/mail"
	"billingd/billing/outbox"
	"billingd/billing/store"
	"billingd/invoice"
	"billingd/invoice/delivery"
)

// apply records what the provider says about a charge: a payment marks the
// invoice paid (or, if the invoice ended meanwhile, credits the customer);
// an expiry or failure gets the invoice a new voucher while reissues remain.
// It is idempotent: applying the same state twice changes nothing.
func (c *Collector) apply(ctx context.Context, ch *Charge, now time.Time) error {
	now = now.UTC()
	return c.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		// The voucher that holds the charge, or else the one whose attempt
		// created it (the attempt id is the voucher's id): one whose
		// creation response was lost. Two lookups, each on its own index
		// (one OR would make SQLite scan the provider's rows).
		v := new(billing.Voucher)
		err := tx.NewSelect().Model(v).Column("id", "invoice_id").Where("provider = ?", c.Provider.Name()).Where("provider_id = ?", ch.ID).Limit(1).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) && ch.AttemptID != "" {
			err = tx.NewSelect().Model(v).Column("id", "invoice_id").Where("id = ?", ch.AttemptID).Where("provider = ?", c.Provider.Name()).Scan(ctx)
		}
		if err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				c.Logger.Warn("provider charge matches no voucher", "charge", ch.ID, "invoice", ch.InvoiceID)
				return nil
			}
			return err
		}
		// Locks in the order every writer takes them: the invoice, then its
		// vouchers (credit notes and voids do the same).
		in := new(billing.Invoice)
		if err := c.DB.ForUpdate(tx.NewSelect().Model(in).Where("id = ?", v.InvoiceID)).Scan(ctx); err != nil {
			return err
		}
		if err := c.DB.ForUpdate(tx.NewSelect().Model(v).Where("id = ?", v.ID)).Scan(ctx); err != nil {
			return err
		}
		if v.ProviderID != "" && v.ProviderID != ch.ID {
			return c.duplicate(ctx, tx, in, v, ch, now)
		}
		if v.Status == StatusPending && v.ProviderID == "" && ch.Status == StatusPending {
			// The charge of a creation whose response was lost: the
			// creation's retry adopts it, with the customer's e-mail and
			// reminders, after looking the attempt up.
			return nil
		}
		if v.Status == ch.Status && v.ProviderID == ch.ID {
			if ch.Status == StatusSuccessful && v.Fee == nil && ch.Fee != nil {
				fill(v, ch, now)
				_, err := tx.NewUpdate().Model(v).WherePK().Exec(ctx)
				return err
			}
			return nil // nothing new
		}
		if v.Status == StatusSuccessful {
			return nil // a payment is final
		}
		if v.Status != StatusPending && ch.Status == StatusPending {
			// A late event about a voucher settled here (canceled with its
			// invoice): only a payment can still change it.
			return nil
		}
		if invoice.Replaced(v.FailureCode) && ch.Status != StatusSuccessful {
			// A replaced voucher stays replaced (Opn cannot cancel it and
			// reports its expiry later): only a payment can still change it.
			return nil
		}
		wasLive, replaced := v.Status == StatusPending, invoice.Replaced(v.FailureCode)
		fill(v, ch, now)
		v.NextAttemptAt = nil
		if _, err := tx.NewUpdate().Model(v).WherePK().Exec(ctx); err != nil {
			return err
		}
		switch ch.Status {
		case StatusSuccessful:
			if !wasLive && !replaced {
				// A part paid after it expired: its reissued voucher is no
				// longer needed (B). (After a replaced slip is paid, paid
				// replaces the live vouchers if they ask too much.)
				if err := c.cancelPart(ctx, tx, in, v, now); err != nil {
					return err
				}
			}
			return c.paid(ctx, tx, in, v, now)
		case StatusFailed, StatusExpired, StatusCanceled:
			if !wasLive {
				return nil
			}
			return c.expired(ctx, tx, in, v, now)
		}
		return nil
	})
}

// duplicate handles a second charge created by one attempt (a retry whose
// look-up missed the first): it never replaces the voucher's own charge,
// but if the customer paid it, the payment is recorded on a voucher of its
// own and applied like any other (an excess goes to the balance).
func (c *Collector) duplicate(ctx context.Context, tx bun.Tx, in *billing.Invoice, v *billing.Voucher, ch *Charge, now time.Time) error {
	if ch.Status != StatusSuccessful {
		c.Logger.Warn("second charge for one voucher attempt", "voucher", v.ID, "charge", ch.ID, "status", ch.Status)
		return nil
	}
	d := &billing.Voucher{ID: billing.NewID(billing.PrefixCharge), InvoiceID: in.ID, Part: v.Part, Provider: v.Provider,
		Amount: ch.Amount, CreatedAt: now, FailureMessage: "A second charge created for voucher " + v.ID + "."}
	fill(d, ch, now)
	if _, err := tx.NewInsert().Model(d).Exec(ctx); err != nil {
		return err
	}
	return c.paid(ctx, tx, in, d, now)
}

// paid records a voucher's payment on its invoice.
func (c *Collector) paid(ctx context.Context, tx bun.Tx, in *billing.Invoice, v *billing.Voucher, now time.Time) error {
	if err := record(ctx, tx, now, "invoice.payment_succeeded", in.ID, v); err != nil {
		return err
	}
	if in.Status != billing.InvoiceOpen && in.Status != billing.InvoiceUncollectible || in.AmountRemaining <= 0 {
		// The invoice was voided or is already settled: the money is the
		// customer's, as a credit for the next invoice.
		_, err := invoice.AdjustBalance(ctx, tx, in.CustomerID, -v.Amount, "excess_payment", &in.ID,
			fmt.Sprintf("Payment of ¥%d on voucher %s after invoice %s was %s.", v.Amount, v.ID, num(in), in.Status), now)
		return err
	}
	in.AmountPaid += v.Amount
	in.AmountRemaining = max(in.AmountDue-in.AmountPaid, 0)
	if excess := in.AmountPaid - in.AmountDue; excess > 0 {
		if _, err := invoice.AdjustBalance(ctx, tx, in.CustomerID, -excess, "excess_payment", &in.ID,
			fmt.Sprintf("Overpayment of ¥%d on invoice %s.", excess, num(in)), now); err != nil {
			return err
		}
	}
	if in.AmountRemaining > 0 {
		if _, err := tx.NewUpdate().Model(in).Column("amount_paid", "amount_remaining").WherePK().Exec(ctx); err != nil {
			return err
		}
		var live struct {
			N      int64 `bun:"n"`
			Amount int64 `bun:"amount"`
		}
		if err := tx.NewSelect().Model((*billing.Voucher)(nil)).ColumnExpr("COUNT(*) AS n, COALESCE(SUM(amount), 0) AS amount").
			Where("invoice_id = ?", in.ID).Where("status = ?", StatusPending).Scan(ctx, &live); err != nil {
			return err
		}
		if live.Amount > in.AmountRemaining {
			// An old slip paid (one replaced after a credit note, or a
			// part's expired one) leaves the live vouchers asking more than
			// is owed: they are replaced by vouchers for what is left (on
			// an open invoice; prepare ends an uncollectible one's
			// collection).
			if _, err := invoice.ReplaceVouchers(ctx, tx, in, invoice.VoucherReplacedAfterPayment,
				fmt.Sprintf("Replaced after a payment left ¥%d to collect.", in.AmountRemaining), now); err != nil {
				return err
			}
			return c.setCollection(ctx, tx, in, billing.CollectionPending, "", "")
		}
		if live.N > 0 || in.CollectionStatus != billing.CollectionActive {
			// Still collecting, or waiting for prepare to issue vouchers
			// for what is left (pending), or already over.
			return nil
		}
		// The other parts' vouchers may all have run out while this one
		// was live: then the collection is over, and on an open invoice
		// the dunning outcome is due now (A).
		if err := c.setCollection(ctx, tx, in, billing.CollectionNone, "", ""); err != nil || in.Status != billing.InvoiceOpen {
			return err
		}
		policy, err := c.policy(ctx, tx, in)
		if err != nil {
			return err
		}
		return c.exhausted(ctx, tx, in, policy, now)
	}
	in.Status, in.PaidAt, in.CollectionStatus = billing.InvoicePaid, &now, billing.CollectionNone
	// Other live vouchers (a reissue while the old slip was paid) are
	// canceled at the provider by the collector's cancel pass.
	others, err := tx.NewSelect().Model((*billing.Voucher)(nil)).Where("invoice_id = ?", in.ID).Where("status = ?", StatusPending).Exists(ctx)
	if err != nil {
		return err
	}
	if others {
		in.CollectionStatus = billing.CollectionCanceling
	}
	if _, err := tx.NewUpdate().Model(in).Column("amount_paid", "amount_remaining", "status", "paid_at", "collection_status").WherePK().Exec(ctx); err != nil {
		return err
	}
	// A past-due or unpaid subscription is current again once nothing is overdue.
	if ev, err := invoice.ReactivateSubscription(ctx, tx, in, now); err != nil {
		return err
	} else if ev != nil {
		if err := store.InsertEvents(ctx, tx, ev); err != nil {
			return err
		}
	}
	if err := delivery.Enqueue(ctx, tx, mail.KindReceipt, in.ID, in.ID, now); err != nil {
		return err
	}
	return record(ctx, tx, now, "invoice.paid", in.ID, in)
}

// expired handles a voucher that can no longer be paid: while the dunning
// policy's reissues remain, the invoice gets a new voucher for the same
// amount; after the last, the policy's outcome follows (see exhausted).
// Vouchers replaced after a credit note do not count.
func (c *Collector) expired(ctx context.Context, tx bun.Tx, in *billing.Invoice, v *billing.Voucher, now time.Time) error {
	if err := record(ctx, tx, now, "invoice.voucher_expired", in.ID, v); err != nil {
		return err
	}
	if in.Status != billing.InvoiceOpen {
		// An uncollectible invoice gets no new voucher; once none is live
		// its collection is over (C).
		live, err := tx.NewSelect().Model((*billing.Voucher)(nil)).Where("invoice_id = ?", in.ID).Where("status = ?", StatusPending).Exists(ctx)
		if err != nil || live || in.CollectionStatus != billing.CollectionActive {
			return err
		}
		return c.setCollection(ctx, tx, in, billing.CollectionNone, "", "")
	}
	used, err := tx.NewSelect().Model((*billing.Voucher)(nil)).Where("invoice_id = ?", in.ID).Where("part = ?", v.Part).
		Where("status IN (?)", bun.In([]string{StatusFailed, StatusExpired, StatusCanceled})).
		Where("failure_code NOT IN (?)", bun.In(invoice.ReplacedCodes)).Count(ctx)
	if err != nil {
		return err
	}
	policy, err := c.policy(ctx, tx, in)
	if err != nil {
		return err
	}
	if used <= int64(policy.Reissues()) {
		days := policy.ReissueDays()
		// The new voucher is issued after a grace period: a customer holding
		// the old slip may have paid right at the deadline, and that
		// payment may still be on its way.
		issueAt := now.Add(c.grace())
		exp := c.Settings.DueDate(issueAt, days).UTC()
		nv := &billing.Voucher{ID: billing.NewID(billing.PrefixCharge), InvoiceID: in.ID, Part: v.Part, Provider: c.Provider.Name(),
			Status: StatusPending, Amount: v.Amount, ExpiresAt: &exp, NextAttemptAt: &issueAt, CreatedAt: now, UpdatedAt: now}
		if _, err := tx.NewInsert().Model(nv).Exec(ctx); err != nil {
			return err
		}
		return record(ctx, tx, now, "invoice.voucher_reissued", in.ID, nv)
	}
	live, err := tx.NewSelect().Model((*billing.Voucher)(nil)).Where("invoice_id = ?", in.ID).Where("status = ?", StatusPending).Count(ctx)
	if err != nil || live > 0 {
		return err
	}
	if err := c.setCollection(ctx, tx, in, billing.CollectionNone, "", ""); err != nil {
		return err
	}
	return c.exhausted(ctx, tx, in, policy, now)
}

func (c *Collector) grace() time.Duration {
	if c.ReissueGrace > 0 {
		return c.ReissueGrace
	}
	return time.Hour
}

// cancelPart cancels the live vouchers of v's part (a reissue made while
// the paid slip was thought expired): here at once, at the provider by an
// outbox task.
func (c *Collector) cancelPart(ctx context.Context, tx bun.Tx, in *billing.Invoice, v *billing.Voucher, now time.Time) error {
	// Only the part's reissues (of the paid slip's amount): a voucher of
	// another split, after a credit note, is left to paid's check of what
	// the live vouchers ask.
	var vs []*billing.Voucher
	if err := c.DB.ForUpdate(tx.NewSelect().Model(&vs).Where("invoice_id = ?", in.ID).Where("part = ?", v.Part).
		Where("amount = ?", v.Amount).Where("status = ?", StatusPending)).Scan(ctx); err != nil {
		return err
	}
	for _, o := range vs {
		if err := cancelHere(ctx, tx, in, o, "The expired voucher it replaced was paid.", o.Attempts > 0, now); err != nil {
			return err
		}
	}
	return nil
}

// cancelHere cancels voucher v of invoice in here, msg saying why, with its
// event; if an attempt may have reached the provider (mayExist), an outbox
// task looks the charge up and cancels it there too.
func cancelHere(ctx context.Context, tx bun.Tx, in *billing.Invoice, v *billing.Voucher, msg string, mayExist bool, now time.Time) error {
	v.Status, v.FailureMessage, v.UpdatedAt = StatusCanceled, msg, now.UTC()
	if _, err := tx.NewUpdate().Model(v).Column("status", "failure_message", "updated_at", "next_attempt_at").WherePK().Exec(ctx); err != nil {
		return err
	}
	if mayExist {
		if err := outbox.Enqueue(ctx, tx, invoice.TaskCancelVoucher, v.ID, in.ID, now); err != nil {
			return err
		}
	}
	return record(ctx, tx, now, "invoice.voucher_canceled", in.ID, v)
}
