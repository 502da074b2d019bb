package subscription

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/store"
	"billingd/invoice"
)

// Run reports what one billing run did.
type Run struct {
	Invoices int // invoices created and finalized
	Canceled int // subscriptions ended at period end
	Batches  int // transactions committed
}

// live lists the statuses of subscriptions that are still billed (a
// trialing one is visited at its trial's end).
var live = []billing.SubscriptionStatus{billing.SubscriptionActive, billing.SubscriptionPastDue, billing.SubscriptionTrialing}

// BillDue is one billing run: it gives every live subscription whose next
// period has started by now exactly one invoice per started period, in
// batches of BatchSize subscriptions, one transaction each. It is driven by
// state, not by the clock's ticks: a run after three months of downtime
// catches up with three invoices per monthly subscription, and a second run
// at the same instant finds nothing to do.
//
// Several daemons may run it at once on PostgreSQL: each batch claims its
// subscriptions with FOR UPDATE SKIP LOCKED, and the unique (subscription_id,
// period_start) constraint on invoices backs that up.
func (s *Service) BillDue(ctx context.Context, now time.Time) (Run, error) {
	var run Run
	batch := s.BatchSize
	if batch <= 0 {
		batch = 500
	}
	// The cursor walks the due index forward, so no batch re-reads the
	// entries of subscriptions already billed (on PostgreSQL their dead
	// index entries would otherwise make every batch slower than the last).
	// A subscription billed for one period that is due again sorts after
	// the cursor and is met again in the same run.
	var cur cursor
	var errs []error
	for {
		from := cur
		claimed, err := s.billBatch(ctx, now, &cur, batch, &run)
		if err != nil {
			// One subscription that cannot be billed must not hold up the
			// others: the batch again, one subscription per transaction;
			// those that fail are skipped (and met again next run).
			cur = from
			for range batch {
				n, err := s.billBatch(ctx, now, &cur, 1, &run)
				if err != nil && cur == from { // not even claimed: nothing to skip past
					return run, errors.Join(append(errs, err)...)
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("billing run: subscription %s skipped: %w", cur.id, err))
				} else if n == 0 {
					break
				}
				from = cur
			}
			continue
		}
		if claimed == 0 {
			// Periods that started while paused were billed as paused
			// above; now the pauses that have ended can be lifted.
			return run, errors.Join(append(errs, s.resumePaused(ctx, now))...)
		}
	}
}

// cursor is where a billing run stands in the due index.
type cursor struct {
	at time.Time
	id string
}

// billBatch bills, in one transaction, up to limit due subscriptions after
// cur, and moves cur past those it claimed (even if billing fails). It
// returns how many it claimed.
func (s *Service) billBatch(ctx context.Context, now time.Time, cur *cursor, limit int, run *Run) (int, error) {
	var claimed, invoices, canceled int
	err := s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var subs []*billing.Subscription
		q := tx.NewSelect().Model(&subs).
			Where("next_billing_at <= ?", now.UTC()).
			Where("(next_billing_at, id) > (?, ?)", cur.at.UTC(), cur.id).
			Where("status IN (?)", bun.In(live)).
			Order("next_billing_at", "id").Limit(int64(limit))
		if s.DB.Engine == store.Postgres {
			q = q.For("UPDATE SKIP LOCKED")
		}
		if err := q.Scan(ctx); err != nil {
			return err
		}
		if claimed = len(subs); claimed == 0 {
			return nil
		}
		last := subs[len(subs)-1]
		*cur = cursor{*last.NextBillingAt, last.ID}
		if err := s.loadItems(ctx, tx, subs); err != nil {
			return err
		}
		invs, err := s.bill(ctx, tx, now, subs)
		invoices = len(invs)
		for _, sub := range subs {
			if sub.Status == billing.SubscriptionCanceled {
				canceled++
			}
		}
		return err
	})
	if err != nil || claimed == 0 {
		return claimed, err
	}
	run.Batches++
	run.Invoices += invoices
	run.Canceled += canceled
	return claimed, nil
}

// NextDue returns the earliest instant after after at which a live
// subscription has a period to bill or a paused one resumes collection; ok
// is false if none has.
func (s *Service) NextDue(ctx context.Context, after time.Time) (t time.Time, ok bool, err error) {
	var next, resume []time.Time
	err = s.DB.NewSelect().Model((*billing.Subscription)(nil)).Column("next_billing_at").
		Where("next_billing_at > ?", after.UTC()).Where("status IN (?)", bun.In(live)).
		Order("next_billing_at").Limit(1).Scan(ctx, &next)
	if err != nil {
		return time.Time{}, false, store.Translate(err)
	}
	err = s.DB.NewSelect().Model((*billing.Subscription)(nil)).Column("pause_resumes_at").
		Where("pause_resumes_at > ?", after.UTC()).Order("pause_resumes_at").Limit(1).Scan(ctx, &resume)
	if err != nil {
		return time.Time{}, false, store.Translate(err)
	}
	next = append(next, resume...)
	for _, n := range next {
		if !ok || n.Before(t) {
			t, ok = n, true
		}
	}
	return t, ok, nil
}

// resumePaused lifts the pauses whose resumes_at has passed, with an event
// each. Periods that started before resumes_at stay billed as paused.
func (s *Service) resumePaused(ctx context.Context, now time.Time) error {
	// One cheap look (a partial index) unless some pause has ended.
	if due, err := s.DB.NewSelect().Model((*billing.Subscription)(nil)).Where("pause_resumes_at <= ?", now.UTC()).Exists(ctx); err != nil || !due {
		return store.Translate(err)
	}
	return s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var subs []*billing.Subscription
		q := tx.NewSelect().Model(&subs).Where("pause_resumes_at <= ?", now.UTC()).Order("id")
		if err := store.ForUpdateIf(q, tx).Scan(ctx); err != nil || len(subs) == 0 {
			return err
		}
		events := make([]*billing.Event, 0, len(subs))
		for _, sub := range subs {
			sub.PauseBehavior, sub.PauseResumesAt = "", nil
			if err := s.loadItemsOf(ctx, tx, sub); err != nil {
				return err
			}
			ev, err := billing.NewEvent(now.UTC(), "subscription.updated", sub.ID, sub)
			if err != nil {
				return err
			}
			events = append(events, ev)
		}
		if err := store.UpdateColumns(ctx, tx, &subs, "pause_behavior", "pause_resumes_at"); err != nil {
			return err
		}
		return store.InsertEvents(ctx, tx, events...)
	})
}

// loadItems loads the items of subs and their plans.
func (s *Service) loadItems(ctx context.Context, tx bun.IDB, subs []*billing.Subscription) error {
	byID := make(map[string]*billing.Subscription, len(subs))
	ids := make([]string, len(subs))
	for i, sub := range subs {
		byID[sub.ID], ids[i] = sub, sub.ID
		sub.Items = nil
	}
	var items []*billing.SubscriptionItem
	if err := tx.NewSelect().Model(&items).Where("?", store.In("subscription_id", ids)).Scan(ctx); err != nil {
		return err
	}
	if err := s.attachPlans(ctx, tx, items); err != nil {
		return err
	}
	for _, it := range items {
		sub := byID[it.SubscriptionID]
		sub.Items = append(sub.Items, it)
	}
	// Each subscription's items in id order: sorted here, per subscription,
	// rather than by the database for the whole batch.
	for _, sub := range subs {
		if len(sub.Items) > 1 {
			slices.SortFunc(sub.Items, func(a, b *billing.SubscriptionItem) int { return strings.Compare(a.ID, b.ID) })
		}
	}
	return nil
}

// attachPlans sets the plan of each item, from the Service's cache of
// plans (plans never change) or, for those not yet cached, from one query.
func (s *Service) attachPlans(ctx context.Context, tx bun.IDB, items []*billing.SubscriptionItem) error {
	var missing []string
	for _, it := range items {
		if pl, ok := s.plans.Load(it.PlanID); ok {
			it.Plan = pl.(*billing.Plan)
		} else {
			missing = append(missing, it.PlanID)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	var plans []*billing.Plan
	if err := tx.NewSelect().Model(&plans).Where("id IN (?)", bun.In(missing)).Scan(ctx); err != nil {
		return err
	}
	for _, pl := range plans {
		s.plans.Store(pl.ID, pl)
	}
	for _, it := range items {
		if it.Plan == nil {
			pl, ok := s.plans.Load(it.PlanID)
			if !ok {
				return fmt.Errorf("plan %s of subscription item %s not found", it.PlanID, it.ID)
			}
			it.Plan = pl.(*billing.Plan)
		}
	}
	return nil
}

// bill issues the due invoices of subs (items and plans loaded, rows locked)
// and advances them, writing everything in tx. It returns the invoices.
//
// The common path (an active subscription in advance, not paused, no
// pending items) costs no statement of its own: the batch's invoices, lines
// and events are inserted in bulk, its subscriptions updated in one
// statement. Pending items are loaded only for subscriptions flagged
// HasPendingItems, and the status, pause and pending-item columns are
// written only when some subscription of the batch changed them.
func (s *Service) bill(ctx context.Context, tx bun.IDB, now time.Time, subs []*billing.Subscription) ([]*billing.Invoice, error) {
	now = now.UTC()
	customers, err := s.customers(ctx, tx, subs)
	if err != nil {
		return nil, err
	}
	pending, err := s.pendingItems(ctx, tx, subs)
	if err != nil {
		return nil, err
	}
	b := &issuance{now: now, customers: customers}
	statusChanged, extra := false, false
	for _, sub := range subs {
		hadStatus, hadPending, hadPause := sub.Status, sub.HasPendingItems, sub.PauseBehavior
		if err := s.advance(ctx, tx, b, sub, now, pending[sub.ID]); err != nil {
			return nil, err
		}
		statusChanged = statusChanged || hadStatus != sub.Status
		extra = extra || hadPending != sub.HasPendingItems || hadPause != sub.PauseBehavior
	}
	cols := []string{"current_period_start", "current_period_end", "next_billing_at"}
	if statusChanged { // a trial ended or a subscription was canceled
		cols = append(cols, "status", "ended_at")
	}
	if extra {
		cols = append(cols, "pause_behavior", "pause_resumes_at", "has_pending_items")
	}
	// The update of the subscriptions is rendered while their invoices are
	// finalized, and runs first.
	advanced := store.Render(tx, store.UpdateColumnsQuery(tx, &subs, cols...))
	if err := b.write(ctx, tx, s.Settings, advanced); err != nil {
		return nil, err
	}
	return b.invs, nil
}

// inArrears reports whether sub bills each period at its end (月末締め).
// All items of a subscription share their plans' timing.
func inArrears(sub *billing.Subscription) bool {
	return len(sub.Items) > 0 && sub.Items[0].Plan != nil && sub.Items[0].Plan.BillingTiming == billing.BillInArrears
}

// advance bills every instant of sub's schedule that has come by now, in
// order: in advance, the period starting there; in arrears, the period
// ending there. On the way it ends a trial (status active, no invoice for
// the trial), ends a subscription set to cancel at period end, bills paused
// periods by the pause's behavior, and puts the pending items on the first
// invoice.
func (s *Service) advance(ctx context.Context, tx bun.IDB, b *issuance, sub *billing.Subscription, now time.Time, items []*billing.InvoiceItem) error {
	arrears := inArrears(sub)
	for sub.NextBillingAt != nil && !sub.NextBillingAt.After(now) {
		at := *sub.NextBillingAt
		pause, err := b.pauseAt(sub, at)
		if err != nil {
			return err
		}
		trialEnds := sub.Status == billing.SubscriptionTrialing
		if arrears && !trialEnds && sub.CurrentPeriodStart != nil {
			in, _ := s.invoiceFor(sub, *sub.CurrentPeriodStart, now, "subscription_cycle")
			if items, err = s.addCycle(ctx, tx, b, sub, in, items, pause); err != nil {
				return err
			}
		}
		if sub.CancelAtPeriodEnd {
			// Stripe collects pending prorations at the end of the period
			// of a subscription set to cancel then.
			if err := s.settle(ctx, tx, b, sub, items, "subscription_cycle", pause); err != nil {
				return err
			}
			sub.Status, sub.EndedAt, sub.NextBillingAt, sub.HasPendingItems = billing.SubscriptionCanceled, &at, nil, false
			sub.PauseBehavior, sub.PauseResumesAt = "", nil
			return b.event("subscription.canceled", sub.ID, sub)
		}
		if trialEnds {
			sub.Status = billing.SubscriptionActive
			if err := b.event("subscription.updated", sub.ID, sub); err != nil {
				return err
			}
		}
		anchor := sub.BillingCycleAnchor.In(s.Settings.Location)
		_, end := PeriodAt(anchor, sub.Interval, sub.IntervalCount, at)
		end = end.UTC()
		if !arrears {
			reason := "subscription_cycle"
			if at.Equal(sub.StartDate) {
				reason = "subscription_create"
			}
			in, _ := s.invoiceFor(sub, at, now, reason)
			if items, err = s.addCycle(ctx, tx, b, sub, in, items, pause); err != nil {
				return err
			}
		}
		sub.CurrentPeriodStart, sub.CurrentPeriodEnd, sub.NextBillingAt = &at, &end, &end
	}
	return nil
}

// addCycle adds a period's invoice to b with the pending items on it, and
// returns the items still pending (none). Should the items make the invoice
// negative, they are settled on their own instead (a credit to the
// customer's balance): an invoice is never negative.
func (s *Service) addCycle(ctx context.Context, tx bun.IDB, b *issuance, sub *billing.Subscription, in *billing.Invoice, items []*billing.InvoiceItem, pause string) ([]*billing.InvoiceItem, error) {
	if len(items) > 0 {
		cycle := len(in.Lines)
		for _, it := range items {
			in.Lines = append(in.Lines, itemLine(in, it, len(in.Lines)))
		}
		invoice.ComputeTotals(in, s.Settings.Rounding)
		if in.Total < 0 {
			in.Lines = in.Lines[:cycle]
			invoice.ComputeTotals(in, s.Settings.Rounding)
			if err := s.settle(ctx, tx, b, sub, items, "subscription_update", pause); err != nil {
				return nil, err
			}
		} else {
			b.consume(items, billing.ItemInvoiced, &in.ID)
		}
		sub.HasPendingItems = false
	}
	b.add(in, pause)
	return nil, nil
}

// newInvoice returns an empty draft invoice of sub.
func (s *Service) newInvoice(sub *billing.Subscription, reason string, now time.Time) *billing.Invoice {
	return &billing.Invoice{
		ID: billing.NewID(billing.PrefixInvoice), Status: billing.InvoiceDraft, CollectionStatus: billing.CollectionNone, CustomerID: sub.CustomerID,
		SubscriptionID: &sub.ID, BillingReason: reason, Currency: billing.Currency,
		TaxBehavior: sub.Items[0].Plan.TaxBehavior, DaysUntilDue: sub.DaysUntilDue, PayToken: billing.NewToken(), CreatedAt: now,
	}
}

// invoiceFor builds the draft invoice of sub for the period starting at
// start and returns it with the period's end. A period shorter than the
// plan's interval (the stub before a billing cycle anchor) is prorated to the
// second, rounded half up once per line.
func (s *Service) invoiceFor(sub *billing.Subscription, start, now time.Time, reason string) (*billing.Invoice, time.Time) {
	anchor := sub.BillingCycleAnchor.In(s.Settings.Location)
	fullStart, end := PeriodAt(anchor, sub.Interval, sub.IntervalCount, start)
	start, end = start.UTC(), end.UTC()
	in := s.newInvoice(sub, reason, now)
	in.PeriodStart, in.PeriodEnd = &start, &end
	for i, it := range sub.Items {
		amount := it.Quantity * it.Plan.Amount
		if !fullStart.Equal(start) {
			amount = ProratedAmount(it.Quantity, it.Plan.Amount, Window{FullStart: fullStart, FullEnd: end, From: start, To: end})
		}
		planID := it.PlanID
		in.Lines = append(in.Lines, &billing.InvoiceLine{
			ID: billing.NewID(billing.PrefixLine), InvoiceID: in.ID, Position: i, Description: it.Plan.Name,
			PlanID: &planID, Quantity: it.Quantity, UnitAmount: it.Plan.Amount, Amount: amount,
			TaxRate: it.Plan.TaxRate, PeriodStart: &start, PeriodEnd: &end,
		})
	}
	invoice.ComputeTotals(in, s.Settings.Rounding)
	return in, end
}

// customers loads the customers of subs.
func (s *Service) customers(ctx context.Context, tx bun.IDB, subs []*billing.Subscription) (map[string]*billing.Customer, error) {
	var ids []string
	seen := make(map[string]bool, len(subs))
	for _, sub := range subs {
		if !seen[sub.CustomerID] {
			seen[sub.CustomerID] = true
			ids = append(ids, sub.CustomerID)
		}
	}
	var cs []*billing.Customer
	if err := tx.NewSelect().Model(&cs).Where("?", store.In("id", ids)).Scan(ctx); err != nil {
		return nil, err
	}
	m := make(map[string]*billing.Customer, len(cs))
	for _, c := range cs {
		m[c.ID] = c
	}
	if len(m) == 0 && len(ids) > 0 {
		return nil, fmt.Errorf("customers of %d subscriptions not found", len(ids))
	}
	return m, nil
}
