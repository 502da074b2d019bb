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

// ItemParams is one plan on a subscription.
type ItemParams struct {
	Plan     string `json:"plan"`
	Quantity *int64 `json:"quantity"`
}

// Params creates a subscription.
type Params struct {
	Customer           string       `json:"customer"`
	Items              []ItemParams `json:"items"`
	Start              *time.Time   `json:"start"`
	BillingCycleAnchor *time.Time   `json:"billing_cycle_anchor"`
	DaysUntilDue       *int         `json:"days_until_due"`
	// TrialEnd or TrialPeriodDays start the subscription with a free
	// trial; its first period (and invoice) starts when the trial ends.
	TrialEnd        *TrialEnd `json:"trial_end"`
	TrialPeriodDays *int      `json:"trial_period_days"`
	// Dunning overrides the operator's dunning policy for this subscription.
	Dunning *billing.DunningPolicy `json:"dunning"`
}

// maxTrialDays caps a trial, as Stripe does.
const maxTrialDays = 730

// maxStartYears is how far ahead a subscription may start.
const maxStartYears = 5

// maxItems caps the items of one subscription.
const maxItems = 20

// Create subscribes a customer to plans. Billing is in advance unless the
// plans bill in arrears: in advance, if the subscription has started, its
// first invoice is created and finalized in the same transaction; otherwise
// the billing run issues it at the start. In arrears, each period is
// invoiced by the billing run when it ends.
//
// With a billing_cycle_anchor later than the start, periods fall on the
// anchor and the first invoice covers the part period from the start to the
// anchor, prorated to the second.
//
// With a trial (trial_end or trial_period_days) the subscription is
// trialing until the trial ends: no invoice (or a ¥0 one if
// Settings.TrialInvoice), and the billing cycle is anchored on the trial's
// end (or on billing_cycle_anchor, at most one period after it).
func (s *Service) Create(ctx context.Context, p Params) (*billing.Subscription, error) {
	now := s.Clock.Now().UTC()
	sub := &billing.Subscription{ID: billing.NewID(billing.PrefixSubscription), CustomerID: p.Customer,
		Status: billing.SubscriptionActive, DaysUntilDue: s.Settings.DaysUntilDue, CreatedAt: now}
	if p.Customer == "" {
		return nil, billing.Invalid("customer", "customer is required")
	}
	if len(p.Items) == 0 || len(p.Items) > maxItems {
		return nil, billing.Invalid("items", "items must list between 1 and %d plans", maxItems)
	}
	if p.DaysUntilDue != nil {
		sub.DaysUntilDue = *p.DaysUntilDue
	}
	if p.Dunning != nil {
		if err := p.Dunning.Validate("dunning."); err != nil {
			return nil, err
		}
		if !p.Dunning.IsZero() {
			sub.Dunning = p.Dunning
		}
	}
	if sub.DaysUntilDue < 0 || sub.DaysUntilDue > 365 {
		return nil, billing.Invalid("days_until_due", "days_until_due must be between 0 and 365, got %d", sub.DaysUntilDue)
	}
	sub.StartDate = now
	if p.Start != nil {
		sub.StartDate = p.Start.UTC()
		if sub.StartDate.After(now.AddDate(maxStartYears, 0, 0)) {
			return nil, billing.Invalid("start", "start must be at most %d years ahead", maxStartYears)
		}
	}
	sub.StartDate = sub.StartDate.Truncate(time.Second)
	sub.BillingCycleAnchor = sub.StartDate
	var trialEnd *time.Time
	switch {
	case p.TrialEnd != nil && p.TrialPeriodDays != nil:
		return nil, billing.Invalid("trial_end", "give trial_end or trial_period_days, not both")
	case p.TrialPeriodDays != nil:
		if d := *p.TrialPeriodDays; d < 0 || d > maxTrialDays {
			return nil, billing.Invalid("trial_period_days", "trial_period_days must be between 0 and %d, got %d", maxTrialDays, d)
		}
		if *p.TrialPeriodDays > 0 {
			te := sub.StartDate.In(s.Settings.Location).AddDate(0, 0, *p.TrialPeriodDays).UTC()
			trialEnd = &te
		}
	case p.TrialEnd != nil:
		te, isNow, err := p.TrialEnd.parse()
		if err != nil {
			return nil, err
		}
		if !isNow {
			if !te.After(sub.StartDate) || !te.After(now) || te.After(sub.StartDate.AddDate(0, 0, maxTrialDays)) {
				return nil, billing.Invalid("trial_end", "trial_end must be in the future, after the start and at most %d days after it", maxTrialDays)
			}
			trialEnd = &te
		}
	}
	if trialEnd != nil {
		start := sub.StartDate
		sub.Status, sub.TrialStart, sub.TrialEnd, sub.BillingCycleAnchor = billing.SubscriptionTrialing, &start, trialEnd, *trialEnd
	}
	if p.BillingCycleAnchor != nil {
		sub.BillingCycleAnchor = p.BillingCycleAnchor.UTC().Truncate(time.Second)
	}
	seen := map[string]bool{}
	for i, ip := range p.Items {
		it := &billing.SubscriptionItem{ID: billing.NewID(billing.PrefixSubItem), SubscriptionID: sub.ID, PlanID: ip.Plan, Quantity: 1}
		if ip.Quantity != nil {
			it.Quantity = *ip.Quantity
		}
		if ip.Plan == "" || seen[ip.Plan] {
			return nil, billing.Invalid(fmt.Sprintf("items[%d].plan", i), "items[%d].plan is required and may appear only once", i)
		}
		if it.Quantity < 1 || it.Quantity > billing.MaxQuantity {
			return nil, billing.Invalid(fmt.Sprintf("items[%d].quantity", i), "items[%d].quantity must be between 1 and %d, got %d", i, billing.MaxQuantity, it.Quantity)
		}
		seen[ip.Plan] = true
		sub.Items = append(sub.Items, it)
	}

	err := s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if ok, err := tx.NewSelect().Model((*billing.Customer)(nil)).Where("id = ?", p.Customer).Exists(ctx); err != nil {
			return err
		} else if !ok {
			return billing.Invalid("customer", "No such customer: '%s'", p.Customer)
		}
		var total int64
		for i, it := range sub.Items {
			it.Plan = new(billing.Plan)
			if err := tx.NewSelect().Model(it.Plan).Where("id = ?", it.PlanID).Scan(ctx); err != nil {
				if billing.ErrorCode(store.Translate(err)) == billing.ENOTFOUND {
					return billing.Invalid(fmt.Sprintf("items[%d].plan", i), "No such plan: '%s'", it.PlanID)
				}
				return err
			}
			first := sub.Items[0].Plan
			if i == 0 {
				sub.Interval, sub.IntervalCount = first.Interval, first.IntervalCount
			} else if it.Plan.Interval != first.Interval || it.Plan.IntervalCount != first.IntervalCount || it.Plan.TaxBehavior != first.TaxBehavior {
				return billing.Invalid(fmt.Sprintf("items[%d].plan", i), "all plans of a subscription must share interval, interval_count and tax_behavior")
			}
			if it.Plan.Amount > (billing.MaxAmount-total)/it.Quantity {
				return billing.Invalid(fmt.Sprintf("items[%d].quantity", i), "the subscription's amount per period must not exceed %d", int64(billing.MaxAmount))
			}
			total += it.Plan.Amount * it.Quantity
		}
		// The first period starts at the start, or when the trial ends.
		anchor, start := sub.BillingCycleAnchor, sub.StartDate
		if trialEnd != nil {
			start = *trialEnd
		}
		// A backdated start may reach into the current period, not further:
		// every period it spans would be invoiced (and numbered) at once.
		firstEnd := Boundary(start.In(s.Settings.Location), sub.Interval, sub.IntervalCount, 1)
		if !firstEnd.After(now) {
			return billing.Invalid("start", "start (or the end of its trial) may be in the past by less than one billing period")
		}
		if anchor.Before(start) || !anchor.Before(firstEnd) {
			if trialEnd != nil {
				return billing.Invalid("billing_cycle_anchor", "billing_cycle_anchor must be between the trial's end and one period after it")
			}
			return billing.Invalid("billing_cycle_anchor", "billing_cycle_anchor must be between start and one period after it")
		}
		for i, it := range sub.Items {
			if timing(it.Plan) != timing(sub.Items[0].Plan) {
				return billing.Invalid(fmt.Sprintf("items[%d].plan", i), "all plans of a subscription must share billing_timing")
			}
		}
		sub.NextBillingAt = &start
		switch {
		case trialEnd != nil:
			// Trialing: the current period is the trial.
			sub.CurrentPeriodStart, sub.CurrentPeriodEnd = &sub.StartDate, trialEnd
		case inArrears(sub):
			// In arrears the first invoice comes when the first period ends.
			_, end := s.period(sub, start)
			sub.CurrentPeriodStart, sub.CurrentPeriodEnd, sub.NextBillingAt = &start, &end, &end
		}
		if _, err := tx.NewInsert().Model(sub).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(&sub.Items).Exec(ctx); err != nil {
			return err
		}
		if err := s.record(ctx, tx, "subscription.created", sub.ID, sub); err != nil {
			return err
		}
		if trialEnd != nil && s.Settings.TrialInvoice && !sub.StartDate.After(now) {
			if err := s.trialInvoice(ctx, tx, sub, now); err != nil {
				return err
			}
		}
		if sub.NextBillingAt.After(now) {
			return nil
		}
		_, err := s.bill(ctx, tx, now, []*billing.Subscription{sub})
		return err
	})
	if err != nil {
		return nil, err
	}
	return sub, nil
}

// Get returns a subscription with its items.
func (s *Service) Get(ctx context.Context, id string) (*billing.Subscription, error) {
	sub := new(billing.Subscription)
	if err := s.DB.NewSelect().Model(sub).Relation("Items").Where("?TableAlias.id = ?", id).Scan(ctx); err != nil {
		return nil, notFound(err, "subscription", id)
	}
	return sub, nil
}

// List returns one page of subscriptions, newest first, optionally of one
// customer.
func (s *Service) List(ctx context.Context, customer string, p store.Page) ([]*billing.Subscription, bool, error) {
	q := s.DB.NewSelect().Model((*billing.Subscription)(nil))
	if customer != "" {
		q = q.Where("customer_id = ?", customer)
	}
	// bun cannot scan a has-many relation into a plain slice: the items
	// are loaded with a second query.
	subs, more, err := store.List[*billing.Subscription](ctx, q, "id", p)
	if err != nil || len(subs) == 0 {
		return subs, more, err
	}
	byID := make(map[string]*billing.Subscription, len(subs))
	ids := make([]string, len(subs))
	for i, sub := range subs {
		byID[sub.ID], ids[i] = sub, sub.ID
	}
	var items []*billing.SubscriptionItem
	if err := s.DB.NewSelect().Model(&items).Where("subscription_id IN (?)", bun.In(ids)).Order("id").Scan(ctx); err != nil {
		return nil, false, store.Translate(err)
	}
	for _, it := range items {
		byID[it.SubscriptionID].Items = append(byID[it.SubscriptionID].Items, it)
	}
	return subs, more, nil
}

// trialInvoice issues the ¥0 invoice of a trial that starts, as Stripe does
// for send_invoice subscriptions: one line per item at ¥0, the period being
// the trial.
func (s *Service) trialInvoice(ctx context.Context, tx bun.IDB, sub *billing.Subscription, now time.Time) error {
	b := &issuance{now: now}
	var err error
	if b.customers, err = s.customers(ctx, tx, []*billing.Subscription{sub}); err != nil {
		return err
	}
	in := s.newInvoice(sub, "subscription_create", now)
	in.PeriodStart, in.PeriodEnd = sub.TrialStart, sub.TrialEnd
	for i, it := range sub.Items {
		planID := it.PlanID
		in.Lines = append(in.Lines, &billing.InvoiceLine{ID: billing.NewID(billing.PrefixLine), InvoiceID: in.ID, Position: i,
			Description: it.Plan.Name + " 無料トライアル", PlanID: &planID, Quantity: it.Quantity, TaxRate: it.Plan.TaxRate,
			PeriodStart: sub.TrialStart, PeriodEnd: sub.TrialEnd})
	}
	invoice.ComputeTotals(in, s.Settings.Rounding)
	b.add(in, "")
	return b.write(ctx, tx, s.Settings)
}
