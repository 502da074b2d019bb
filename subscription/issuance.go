package subscription

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/store"
	"billingd/invoice"
)

// issuance gathers what one transaction issues for subscriptions (invoices,
// each with the pause behavior it was billed under, the pending items they
// consumed, events) and writes it in bulk.
type issuance struct {
	now       time.Time
	customers map[string]*billing.Customer
	invs      []*billing.Invoice
	pauses    []string // pause behavior of each invoice of invs, "" if collected
	items     []*billing.InvoiceItem
	events    []*billing.Event
}

// add adds an invoice (a draft with lines and totals) to issue.
func (b *issuance) add(in *billing.Invoice, pause string) {
	b.invs, b.pauses = append(b.invs, in), append(b.pauses, pause)
}

// consume records that items went to an invoice or a credit.
func (b *issuance) consume(items []*billing.InvoiceItem, status string, invoiceID *string) {
	for _, it := range items {
		it.Status, it.InvoiceID = status, invoiceID
		b.items = append(b.items, it)
	}
}

func (b *issuance) event(typ, id string, obj any) error {
	ev, err := billing.NewEvent(b.now, typ, id, obj)
	if err != nil {
		return err
	}
	b.events = append(b.events, ev)
	return nil
}

// pauseAt returns the pause behavior under which sub's invoices for the
// instant at are issued: none once the pause's resumes_at has come, which
// also lifts the pause.
func (b *issuance) pauseAt(sub *billing.Subscription, at time.Time) (string, error) {
	if sub.PauseBehavior == "" {
		return "", nil
	}
	if sub.PauseResumesAt != nil && !at.Before(*sub.PauseResumesAt) {
		sub.PauseBehavior, sub.PauseResumesAt = "", nil
		return "", b.event("subscription.updated", sub.ID, sub)
	}
	return sub.PauseBehavior, nil
}

// write finalizes and inserts the invoices, updates the consumed items and
// inserts the events, in tx, after running first (the caller's statements
// for the same batch, rendered ahead: see store.Render). Collected invoices
// are finalized with the customer's balance applied. Paused ones:
// keep_as_draft stays a draft (the operator finalizes it later),
// mark_uncollectible and void are finalized (numbered) without touching the
// balance and then marked uncollectible or voided at once, with no voucher,
// as Stripe does.
func (b *issuance) write(ctx context.Context, tx bun.IDB, st billing.Settings, first ...*store.Statement) error {
	var collect, finalizePaused []*billing.Invoice
	for i, in := range b.invs {
		switch b.pauses[i] {
		case "":
			collect = append(collect, in)
		case billing.PauseKeepAsDraft:
			if err := b.event("invoice.created", in.ID, in); err != nil {
				return err
			}
		default:
			finalizePaused = append(finalizePaused, in)
		}
	}
	evs, err := invoice.Issue(ctx, tx, st, b.now, collect, b.customers)
	if err != nil {
		return err
	}
	b.events = append(b.events, evs...)
	if len(finalizePaused) > 0 {
		// The pause leaves the balance alone: copies without it.
		unbalanced := make(map[string]*billing.Customer, len(b.customers))
		for id, c := range b.customers {
			cc := *c
			cc.Balance = 0
			unbalanced[id] = &cc
		}
		evs, err := invoice.Issue(ctx, tx, st, b.now, finalizePaused, unbalanced)
		if err != nil {
			return err
		}
		b.events = append(b.events, evs...)
		for i, in := range b.invs {
			if b.pauses[i] == "" || b.pauses[i] == billing.PauseKeepAsDraft || in.Status != billing.InvoiceOpen {
				continue
			}
			now := b.now
			in.CollectionStatus = billing.CollectionNone
			typ := "invoice.voided"
			if b.pauses[i] == billing.PauseVoid {
				in.Status, in.VoidedAt = billing.InvoiceVoid, &now
			} else {
				in.Status, in.MarkedUncollectibleAt, typ = billing.InvoiceUncollectible, &now, "invoice.marked_uncollectible"
			}
			if err := b.event(typ, in.ID, in); err != nil {
				return err
			}
		}
	}
	// The bulk statements are rendered ahead, each while the database runs
	// the ones before it.
	stmts := first
	if len(b.invs) > 0 {
		var lines []*billing.InvoiceLine
		for _, in := range b.invs {
			lines = append(lines, in.Lines...)
		}
		// No RETURNING: the columns left NULL have no other default.
		stmts = append(stmts, store.Render(tx, tx.NewInsert().Model(&b.invs).Returning("")))
		if len(lines) > 0 {
			stmts = append(stmts, store.Render(tx, tx.NewInsert().Model(&lines)))
		}
	}
	if len(b.items) > 0 {
		stmts = append(stmts, store.Render(tx, store.UpdateColumnsQuery(tx, &b.items, "status", "invoice_id")))
	}
	for _, q := range store.EventStatements(tx, b.events) {
		stmts = append(stmts, store.Render(tx, q))
	}
	for _, s := range stmts {
		if err := s.Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// pendingItems loads the pending invoice items of those of subs flagged
// HasPendingItems, oldest first, by subscription. Without any it runs no
// query.
func (s *Service) pendingItems(ctx context.Context, tx bun.IDB, subs []*billing.Subscription) (map[string][]*billing.InvoiceItem, error) {
	var ids []string
	for _, sub := range subs {
		if sub.HasPendingItems {
			ids = append(ids, sub.ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	var items []*billing.InvoiceItem
	err := tx.NewSelect().Model(&items).Where("subscription_id IN (?)", bun.In(ids)).Where("status = ?", billing.ItemPending).
		Order("subscription_id", "id").Scan(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string][]*billing.InvoiceItem, len(ids))
	for _, it := range items {
		m[*it.SubscriptionID] = append(m[*it.SubscriptionID], it)
	}
	return m, nil
}

// itemLine returns the invoice line of a pending item at position pos of in.
func itemLine(in *billing.Invoice, it *billing.InvoiceItem, pos int) *billing.InvoiceLine {
	return &billing.InvoiceLine{ID: billing.NewID(billing.PrefixLine), InvoiceID: in.ID, Position: pos, Description: it.Description,
		PlanID: it.PlanID, Quantity: it.Quantity, UnitAmount: it.UnitAmount, Amount: it.Amount, TaxRate: it.TaxRate,
		PeriodStart: it.PeriodStart, PeriodEnd: it.PeriodEnd, Proration: it.Proration}
}

// newItems turns proration lines into pending invoice items of sub.
func newItems(sub *billing.Subscription, lines []*billing.InvoiceLine, now time.Time) []*billing.InvoiceItem {
	items := make([]*billing.InvoiceItem, 0, len(lines))
	for _, l := range lines {
		items = append(items, &billing.InvoiceItem{ID: billing.NewID(billing.PrefixInvoiceItem), CustomerID: sub.CustomerID,
			SubscriptionID: &sub.ID, Status: billing.ItemPending, Description: l.Description, PlanID: l.PlanID,
			Quantity: l.Quantity, UnitAmount: l.UnitAmount, Amount: l.Amount, TaxRate: l.TaxRate, Proration: l.Proration,
			PeriodStart: l.PeriodStart, PeriodEnd: l.PeriodEnd, CreatedAt: now})
	}
	return items
}

// settle settles items of sub now: an invoice of them (billing reason
// reason) if they add up to a charge, a credit to the customer's balance
// (tax included, computed as on an invoice) if they add up to a credit,
// nothing if they cancel out.
func (s *Service) settle(ctx context.Context, tx bun.IDB, b *issuance, sub *billing.Subscription, items []*billing.InvoiceItem, reason, pause string) error {
	if len(items) == 0 {
		return nil
	}
	in := s.newInvoice(sub, reason, b.now)
	for _, it := range items {
		in.Lines = append(in.Lines, itemLine(in, it, len(in.Lines)))
	}
	invoice.ComputeTotals(in, s.Settings.Rounding)
	switch {
	case in.Total > 0:
		b.consume(items, billing.ItemInvoiced, &in.ID)
		b.add(in, pause)
		return nil
	case in.Total == 0:
		b.consume(items, billing.ItemCredited, nil)
		return nil
	}
	b.consume(items, billing.ItemCredited, nil)
	return s.credit(ctx, tx, b, sub, -in.Total, in.TaxBreakdown)
}

// credit adds amount (yen, tax included) to the credit on sub's customer's
// balance, for prorations; bd is its split by tax rate (negative amounts).
func (s *Service) credit(ctx context.Context, tx bun.IDB, b *issuance, sub *billing.Subscription, amount int64, bd []billing.TaxAmount) error {
	bal, err := invoice.AdjustBalanceTaxed(ctx, tx, sub.CustomerID, -amount, "proration_credit", nil,
		fmt.Sprintf("Credit of ¥%d (tax included) for changes to subscription %s.", amount, sub.ID), bd, b.now)
	if err != nil {
		return err
	}
	if c := b.customers[sub.CustomerID]; c != nil {
		c.Balance = bal
	}
	return nil
}
