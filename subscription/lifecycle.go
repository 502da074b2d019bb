package subscription

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/store"
	"billingd/invoice"
)

// TrialEnd is trial_end in a request: an RFC 3339 time, Unix seconds, or
// "now" (no trial, or end the current one now). It is checked by the
// service so that a bad value is a 400 naming trial_end.
type TrialEnd struct{ raw json.RawMessage }

// UnmarshalJSON keeps the raw value for the service to check.
func (t *TrialEnd) UnmarshalJSON(b []byte) error {
	t.raw = append(json.RawMessage(nil), b...)
	return nil
}

// TrialEndAt returns a TrialEnd for the time at (for callers in Go).
func TrialEndAt(at time.Time) *TrialEnd {
	b, _ := json.Marshal(at)
	return &TrialEnd{raw: b}
}

// TrialEndNow returns the TrialEnd "now".
func TrialEndNow() *TrialEnd { return &TrialEnd{raw: json.RawMessage(`"now"`)} }

// parse returns the time, or now=true for "now".
func (t *TrialEnd) parse() (at time.Time, now bool, err error) {
	bad := billing.Invalid("trial_end", "trial_end must be an RFC 3339 time, Unix seconds or \"now\", got %s", t.raw)
	var str string
	if json.Unmarshal(t.raw, &str) == nil {
		if str == "now" {
			return time.Time{}, true, nil
		}
		at, err := time.Parse(time.RFC3339, str)
		if err != nil {
			return time.Time{}, false, bad
		}
		return at.UTC().Truncate(time.Second), false, nil
	}
	n, err := strconv.ParseInt(string(t.raw), 10, 64)
	if err != nil {
		return time.Time{}, false, bad
	}
	return time.Unix(n, 0).UTC(), false, nil
}

// PauseParam is pause_collection in an update: absent (leave the pause as
// it is), null or "" (resume collection), or {behavior, resumes_at?}.
type PauseParam struct {
	set bool
	raw json.RawMessage
}

// UnmarshalJSON records that the field was given, null included.
func (p *PauseParam) UnmarshalJSON(b []byte) error {
	p.set, p.raw = true, append(json.RawMessage(nil), b...)
	return nil
}

// Pause returns a PauseParam that pauses with behavior until resumesAt (nil:
// until resumed), or resumes if behavior is "".
func Pause(behavior string, resumesAt *time.Time) PauseParam {
	if behavior == "" {
		return PauseParam{set: true, raw: json.RawMessage("null")}
	}
	b, _ := json.Marshal(billing.PauseCollection{Behavior: behavior, ResumesAt: resumesAt})
	return PauseParam{set: true, raw: b}
}

// parse returns the pause asked for; nil means resume.
func (p PauseParam) parse(now time.Time) (*billing.PauseCollection, error) {
	if t := bytes.TrimSpace(p.raw); bytes.Equal(t, []byte("null")) || bytes.Equal(t, []byte(`""`)) {
		return nil, nil
	}
	var pc billing.PauseCollection
	dec := json.NewDecoder(bytes.NewReader(p.raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pc); err != nil {
		return nil, billing.Invalid("pause_collection", "pause_collection must be null or {\"behavior\": …, \"resumes_at\": …}: %v", err)
	}
	switch pc.Behavior {
	case billing.PauseKeepAsDraft, billing.PauseMarkUncollectible, billing.PauseVoid:
	default:
		return nil, billing.Invalid("pause_collection.behavior", "pause_collection.behavior must be keep_as_draft, mark_uncollectible or void, got %q", pc.Behavior)
	}
	if pc.ResumesAt != nil {
		t := pc.ResumesAt.UTC().Truncate(time.Second)
		if !t.After(now) {
			return nil, billing.Invalid("pause_collection.resumes_at", "pause_collection.resumes_at must be in the future")
		}
		pc.ResumesAt = &t
	}
	return &pc, nil
}

// UpdateItemParams changes the items of a subscription, as Stripe's items
// on an update: with id, it changes (plan, quantity) or removes (deleted)
// that item; without, it adds an item for plan.
type UpdateItemParams struct {
	ID       string `json:"id"`
	Plan     string `json:"plan"`
	Quantity *int64 `json:"quantity"`
	Deleted  bool   `json:"deleted"`
}

// UpdateParams updates a subscription. Absent fields are left as they are.
type UpdateParams struct {
	Items             []UpdateItemParams `json:"items"`
	ProrationBehavior ProrationBehavior  `json:"proration_behavior"`
	TrialEnd          *TrialEnd          `json:"trial_end"`
	CancelAtPeriodEnd *bool              `json:"cancel_at_period_end"`
	PauseCollection   PauseParam         `json:"pause_collection"`
	// Dunning replaces the subscription's overrides of the dunning policy;
	// {} removes them.
	Dunning *billing.DunningPolicy `json:"dunning"`
}

// CancelParams cancels a subscription, as Stripe's cancel: at the end of
// the current period, or now. Canceling now with Prorate credits the unused
// time of an in-advance subscription; with InvoiceNow the pending items (and
// that credit) are settled at once: a final invoice if they add up to a
// charge, a credit on the customer's balance if they add up to a credit.
// Without either, pending prorations are dropped. In arrears, the service
// used and not yet invoiced is invoiced unless InvoiceNow is false.
type CancelParams struct {
	AtPeriodEnd bool  `json:"at_period_end"`
	Prorate     *bool `json:"prorate"`
	InvoiceNow  *bool `json:"invoice_now"`
}

// lock reads sub for update with its items and plans, refusing a canceled
// one, and bills what has come due (so a change applies to the current
// period, after its invoice).
func (s *Service) lock(ctx context.Context, tx bun.Tx, id string, now time.Time) (*billing.Subscription, error) {
	sub := new(billing.Subscription)
	if err := s.DB.ForUpdate(tx.NewSelect().Model(sub).Where("id = ?", id)).Scan(ctx); err != nil {
		return nil, notFound(err, "subscription", id)
	}
	if sub.Status == billing.SubscriptionCanceled {
		return nil, billing.Errorf(billing.ECONFLICT, "Subscription %s is canceled; a canceled subscription cannot be changed.", id)
	}
	if err := s.loadItemsOf(ctx, tx, sub); err != nil {
		return nil, err
	}
	if sub.NextBillingAt != nil && !sub.NextBillingAt.After(now) && slices.Contains(live, sub.Status) {
		if _, err := s.bill(ctx, tx, now, []*billing.Subscription{sub}); err != nil {
			return nil, err
		}
		if sub.Status == billing.SubscriptionCanceled {
			return nil, billing.Errorf(billing.ECONFLICT, "Subscription %s ended at the end of its period; a canceled subscription cannot be changed.", id)
		}
	}
	return sub, nil
}

// loadItemsOf loads sub's items with their plans.
func (s *Service) loadItemsOf(ctx context.Context, tx bun.IDB, sub *billing.Subscription) error {
	return s.loadItems(ctx, tx, []*billing.Subscription{sub})
}

// period returns the schedule period containing t (its full extent, even
// for the stub before an anchor).
func (s *Service) period(sub *billing.Subscription, t time.Time) (start, end time.Time) {
	start, end = PeriodAt(sub.BillingCycleAnchor.In(s.Settings.Location), sub.Interval, sub.IntervalCount, t)
	return start.UTC(), end.UTC()
}

// inPeriod reports whether sub is in a billed period at now: started, not
// trialing, now within [current_period_start, current_period_end).
func inPeriod(sub *billing.Subscription, now time.Time) bool {
	return sub.Status != billing.SubscriptionTrialing && sub.CurrentPeriodStart != nil && sub.CurrentPeriodEnd != nil &&
		!now.Before(*sub.CurrentPeriodStart) && now.Before(*sub.CurrentPeriodEnd)
}

// Update changes a subscription: its items (with prorations by
// ProrationBehavior), its trial's end, a scheduled cancellation
// (cancel_at_period_end false reactivates) and the pause of collection. It
// is one transaction; invalid input changes nothing.
func (s *Service) Update(ctx context.Context, id string, p UpdateParams) (*billing.Subscription, error) {
	now := s.Clock.Now().UTC().Truncate(time.Second)
	behavior := p.ProrationBehavior
	if behavior == "" {
		behavior = CreateProrations
	}
	if !behavior.Valid() {
		return nil, billing.Invalid("proration_behavior", "proration_behavior must be create_prorations, always_invoice or none, got %q", p.ProrationBehavior)
	}
	if p.Items != nil && (len(p.Items) == 0 || len(p.Items) > 2*maxItems) {
		return nil, billing.Invalid("items", "items must list between 1 and %d changes", 2*maxItems)
	}
	for i, ip := range p.Items {
		param := fmt.Sprintf("items[%d]", i)
		switch {
		case ip.ID == "" && ip.Plan == "":
			return nil, billing.Invalid(param+".plan", "%s needs an id (to change or delete an item) or a plan (to add one)", param)
		case ip.ID == "" && ip.Deleted:
			return nil, billing.Invalid(param+".id", "%s.deleted needs the id of the item to delete", param)
		case ip.Quantity != nil && (*ip.Quantity < 1 || *ip.Quantity > billing.MaxQuantity):
			return nil, billing.Invalid(param+".quantity", "%s.quantity must be between 1 and %d, got %d", param, billing.MaxQuantity, *ip.Quantity)
		}
	}
	var trialAt time.Time
	var trialNow bool
	if p.TrialEnd != nil {
		var err error
		if trialAt, trialNow, err = p.TrialEnd.parse(); err != nil {
			return nil, err
		}
		if !trialNow && !trialAt.After(now) {
			return nil, billing.Invalid("trial_end", "trial_end must be in the future, or \"now\"")
		}
	}
	var pause *billing.PauseCollection
	if p.PauseCollection.set {
		var err error
		if pause, err = p.PauseCollection.parse(now); err != nil {
			return nil, err
		}
	}
	if p.Dunning != nil {
		if err := p.Dunning.Validate("dunning."); err != nil {
			return nil, err
		}
	}
	var sub *billing.Subscription
	err := s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) (err error) {
		if sub, err = s.lock(ctx, tx, id, now); err != nil {
			return err
		}
		if p.Dunning != nil {
			sub.Dunning = p.Dunning
			if p.Dunning.IsZero() {
				sub.Dunning = nil
			}
		}
		b := &issuance{now: now}
		if b.customers, err = s.customers(ctx, tx, []*billing.Subscription{sub}); err != nil {
			return err
		}
		if p.Items != nil {
			if err := s.changeItems(ctx, tx, b, sub, p.Items, behavior, now); err != nil {
				return err
			}
		}
		if p.TrialEnd != nil {
			if sub.Status != billing.SubscriptionTrialing {
				return billing.Invalid("trial_end", "trial_end can only be changed while the subscription is trialing (it is %s)", sub.Status)
			}
			if trialNow {
				trialAt = now
			}
			// The billing cycle restarts at the trial's end, as with Stripe.
			sub.TrialEnd, sub.BillingCycleAnchor, sub.CurrentPeriodEnd, sub.NextBillingAt = &trialAt, trialAt, &trialAt, &trialAt
		}
		if p.CancelAtPeriodEnd != nil {
			if *p.CancelAtPeriodEnd {
				if sub.CurrentPeriodEnd == nil || !sub.CurrentPeriodEnd.After(now) || sub.NextBillingAt == nil {
					return billing.Invalid("cancel_at_period_end", "subscription %s has no current period to end; cancel it now instead", id)
				}
				if !sub.CancelAtPeriodEnd {
					sub.CancelAtPeriodEnd, sub.CanceledAt = true, &now
				}
			} else {
				// Reactivation: the scheduled cancellation is undone.
				sub.CancelAtPeriodEnd, sub.CanceledAt = false, nil
			}
		}
		if p.PauseCollection.set {
			sub.PauseBehavior, sub.PauseResumesAt = "", nil
			if pause != nil {
				sub.PauseBehavior, sub.PauseResumesAt = pause.Behavior, pause.ResumesAt
			}
		}
		if err := b.write(ctx, tx, s.Settings); err != nil {
			return err
		}
		if _, err := tx.NewUpdate().Model(sub).WherePK().Exec(ctx); err != nil {
			return err
		}
		if err := s.record(ctx, tx, "subscription.updated", sub.ID, sub); err != nil {
			return err
		}
		if trialNow {
			// The first period starts now: bill it with the new items.
			_, err := s.bill(ctx, tx, now, []*billing.Subscription{sub})
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sub, nil
}

// changeItems applies item changes to sub (locked, items loaded): it checks
// them against the plans, writes the new items and settles the current
// period by behavior.
func (s *Service) changeItems(ctx context.Context, tx bun.Tx, b *issuance, sub *billing.Subscription, changes []UpdateItemParams, behavior ProrationBehavior, now time.Time) error {
	old := sub.Items
	byID := map[string]*billing.SubscriptionItem{}
	next := make([]*billing.SubscriptionItem, 0, len(old))
	for _, it := range old {
		cp := *it
		byID[it.ID] = &cp
		next = append(next, &cp)
	}
	deleted := map[string]bool{}
	first := old[0].Plan
	for i, ip := range changes {
		param := fmt.Sprintf("items[%d]", i)
		var it *billing.SubscriptionItem
		if ip.ID != "" {
			if it = byID[ip.ID]; it == nil {
				return billing.Invalid(param+".id", "subscription %s has no item '%s'", sub.ID, ip.ID)
			}
			if ip.Deleted {
				deleted[ip.ID] = true
				continue
			}
		} else {
			it = &billing.SubscriptionItem{ID: billing.NewID(billing.PrefixSubItem), SubscriptionID: sub.ID, Quantity: 1}
			next = append(next, it)
			byID[it.ID] = it
		}
		if ip.Quantity != nil {
			it.Quantity = *ip.Quantity
		}
		if ip.Plan != "" && (it.Plan == nil || ip.Plan != it.PlanID) {
			pl := new(billing.Plan)
			if err := tx.NewSelect().Model(pl).Where("id = ?", ip.Plan).Scan(ctx); err != nil {
				if billing.ErrorCode(store.Translate(err)) == billing.ENOTFOUND {
					return billing.Invalid(param+".plan", "No such plan: '%s'", ip.Plan)
				}
				return err
			}
			if pl.Interval != sub.Interval || pl.IntervalCount != sub.IntervalCount || pl.TaxBehavior != first.TaxBehavior ||
				timing(pl) != timing(first) {
				return billing.Invalid(param+".plan", "plan %s must have the subscription's interval (%d %s), tax_behavior (%s) and billing_timing (%s)",
					pl.ID, sub.IntervalCount, sub.Interval, first.TaxBehavior, timing(first))
			}
			it.PlanID, it.Plan = pl.ID, pl
		}
	}
	var items []*billing.SubscriptionItem
	seen := map[string]bool{}
	var total int64
	for _, it := range next {
		if deleted[it.ID] {
			continue
		}
		if seen[it.PlanID] {
			return billing.Invalid("items", "plan %s may appear only once on a subscription", it.PlanID)
		}
		seen[it.PlanID] = true
		if it.Plan.Amount > (billing.MaxAmount-total)/it.Quantity {
			return billing.Invalid("items", "the subscription's amount per period must not exceed %d", int64(billing.MaxAmount))
		}
		total += it.Plan.Amount * it.Quantity
		items = append(items, it)
	}
	if len(items) == 0 || len(items) > maxItems {
		return billing.Invalid("items", "a subscription has between 1 and %d items", maxItems)
	}

	// Settle the current period.
	if behavior != NoProration && inPeriod(sub, now) {
		fullStart, fullEnd := s.period(sub, now)
		arrears := inArrears(sub)
		w := Window{FullStart: fullStart, FullEnd: fullEnd, From: now, To: *sub.CurrentPeriodEnd}
		if arrears {
			w.From, w.To = *sub.CurrentPeriodStart, now
		}
		lines := prorationLines(old, items, w, arrears, s.Settings.Location)
		if len(lines) > 0 {
			var pending map[string][]*billing.InvoiceItem
			if behavior == AlwaysInvoice || !arrears {
				var err error
				if pending, err = s.pendingItems(ctx, tx, []*billing.Subscription{sub}); err != nil {
					return err
				}
			}
			fresh := newItems(sub, lines, now)
			if _, err := tx.NewInsert().Model(&fresh).Exec(ctx); err != nil {
				return err
			}
			switch behavior {
			case AlwaysInvoice:
				if err := s.settle(ctx, tx, b, sub, append(pending[sub.ID], fresh...), "subscription_update", b.pauseNow(sub, now)); err != nil {
					return err
				}
				sub.HasPendingItems = false
			default:
				// A net credit in advance (of these prorations with those
				// still pending: an upgrade's charge, then a downgrade's
				// credit) goes to the balance now, all of them together;
				// anything else waits for the next invoice, which (in
				// arrears, with the new items for the whole period) absorbs
				// it.
				if all := append(pending[sub.ID], fresh...); !arrears && s.net(sub, all) < 0 {
					if err := s.settle(ctx, tx, b, sub, all, "subscription_update", ""); err != nil {
						return err
					}
					sub.HasPendingItems = false
				} else {
					sub.HasPendingItems = true
				}
			}
		}
	}

	// Write the items.
	var gone []string
	for _, it := range old {
		if deleted[it.ID] {
			gone = append(gone, it.ID)
		}
	}
	if len(gone) > 0 {
		if _, err := tx.NewDelete().Model((*billing.SubscriptionItem)(nil)).Where("id IN (?)", bun.In(gone)).Exec(ctx); err != nil {
			return err
		}
	}
	for _, it := range items {
		var prev *billing.SubscriptionItem
		for _, o := range old {
			if o.ID == it.ID {
				prev = o
			}
		}
		switch {
		case prev == nil:
			if _, err := tx.NewInsert().Model(it).Exec(ctx); err != nil {
				return err
			}
		case prev.PlanID != it.PlanID || prev.Quantity != it.Quantity:
			if _, err := tx.NewUpdate().Model(it).Column("plan_id", "quantity").WherePK().Exec(ctx); err != nil {
				return err
			}
		}
	}
	sub.Items = items
	return nil
}

// pauseNow returns the pause behavior for an invoice of sub issued at now.
func (b *issuance) pauseNow(sub *billing.Subscription, now time.Time) string {
	if sub.PauseBehavior == "" || (sub.PauseResumesAt != nil && !now.Before(*sub.PauseResumesAt)) {
		return ""
	}
	return sub.PauseBehavior
}

// net returns what items would add to an invoice of sub, tax included.
func (s *Service) net(sub *billing.Subscription, items []*billing.InvoiceItem) int64 {
	in := &billing.Invoice{TaxBehavior: sub.Items[0].Plan.TaxBehavior}
	for _, it := range items {
		in.Lines = append(in.Lines, &billing.InvoiceLine{Amount: it.Amount, TaxRate: it.TaxRate})
	}
	invoice.ComputeTotals(in, s.Settings.Rounding)
	return in.Total
}

// timing returns a plan's billing timing, in advance if unset.
func timing(p *billing.Plan) billing.BillingTiming {
	if p.BillingTiming == "" {
		return billing.BillInAdvance
	}
	return p.BillingTiming
}

// Cancel ends a subscription now, or at the end of the current period if
// atPeriodEnd is set. Invoices already issued are not changed.
func (s *Service) Cancel(ctx context.Context, id string, atPeriodEnd bool) (*billing.Subscription, error) {
	return s.CancelWith(ctx, id, CancelParams{AtPeriodEnd: atPeriodEnd})
}

// CancelWith cancels a subscription as p says (see CancelParams). A trial
// canceled now ends without any invoice.
func (s *Service) CancelWith(ctx context.Context, id string, p CancelParams) (*billing.Subscription, error) {
	if p.AtPeriodEnd && (p.Prorate != nil && *p.Prorate || p.InvoiceNow != nil && *p.InvoiceNow) {
		return nil, billing.Invalid("prorate", "prorate and invoice_now apply to canceling now, not at_period_end")
	}
	now := s.Clock.Now().UTC().Truncate(time.Second)
	var sub *billing.Subscription
	err := s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) (err error) {
		if sub, err = s.lock(ctx, tx, id, now); err != nil {
			if billing.ErrorCode(err) == billing.ECONFLICT {
				return billing.Errorf(billing.ECONFLICT, "Subscription %s is already canceled.", id)
			}
			return err
		}
		if p.AtPeriodEnd && sub.CurrentPeriodEnd != nil && sub.CurrentPeriodEnd.After(now) && sub.NextBillingAt != nil {
			sub.CancelAtPeriodEnd, sub.CanceledAt = true, &now
			if _, err := tx.NewUpdate().Model(sub).WherePK().Exec(ctx); err != nil {
				return err
			}
			return s.record(ctx, tx, "subscription.updated", sub.ID, sub)
		}
		b := &issuance{now: now}
		if b.customers, err = s.customers(ctx, tx, []*billing.Subscription{sub}); err != nil {
			return err
		}
		arrears := inArrears(sub)
		prorate := p.Prorate != nil && *p.Prorate
		invoiceNow := arrears
		if p.InvoiceNow != nil {
			invoiceNow = *p.InvoiceNow
		}
		pending, err := s.pendingItems(ctx, tx, []*billing.Subscription{sub})
		if err != nil {
			return err
		}
		items := pending[sub.ID]
		if inPeriod(sub, now) {
			fullStart, fullEnd := s.period(sub, now)
			var lines []*billing.InvoiceLine
			switch {
			case arrears && invoiceNow:
				lines = usageLines(sub.Items, Window{FullStart: fullStart, FullEnd: fullEnd, From: *sub.CurrentPeriodStart, To: now}, +1, s.Settings.Location)
			case !arrears && prorate:
				lines = usageLines(sub.Items, Window{FullStart: fullStart, FullEnd: fullEnd, From: now, To: *sub.CurrentPeriodEnd}, -1, s.Settings.Location)
			}
			if fresh := newItems(sub, lines, now); len(fresh) > 0 {
				if _, err := tx.NewInsert().Model(&fresh).Exec(ctx); err != nil {
					return err
				}
				items = append(items, fresh...)
			}
		}
		if invoiceNow || (prorate && !arrears) {
			if err := s.settle(ctx, tx, b, sub, items, "subscription_update", b.pauseNow(sub, now)); err != nil {
				return err
			}
		} else {
			// As with Stripe, canceling now without prorate or invoice_now
			// drops the pending prorations.
			b.consume(items, billing.ItemDeleted, nil)
		}
		sub.Status, sub.EndedAt, sub.CanceledAt, sub.NextBillingAt, sub.HasPendingItems = billing.SubscriptionCanceled, &now, &now, nil, false
		sub.PauseBehavior, sub.PauseResumesAt = "", nil
		if err := b.write(ctx, tx, s.Settings); err != nil {
			return err
		}
		if _, err := tx.NewUpdate().Model(sub).WherePK().Exec(ctx); err != nil {
			return err
		}
		return s.record(ctx, tx, "subscription.canceled", sub.ID, sub)
	})
	if err != nil {
		return nil, err
	}
	return sub, nil
}

// BalanceTransactions returns one page of a customer's balance ledger,
// newest first.
func (s *Service) BalanceTransactions(ctx context.Context, customer string, p store.Page) ([]*billing.BalanceTransaction, bool, error) {
	if ok, err := s.DB.NewSelect().Model((*billing.Customer)(nil)).Where("id = ?", customer).Exists(ctx); err != nil {
		return nil, false, store.Translate(err)
	} else if !ok {
		return nil, false, billing.NotFound("customer", customer)
	}
	q := s.DB.NewSelect().Model((*billing.BalanceTransaction)(nil)).Where("customer_id = ?", customer)
	return store.List[*billing.BalanceTransaction](ctx, q, "id", p)
}
