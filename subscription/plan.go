package subscription

import (
	"context"
	"unicode/utf8"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/store"
)

// PlanParams creates a plan.
type PlanParams struct {
	Name          string              `json:"name"`
	Amount        *int64              `json:"amount"`
	Currency      string              `json:"currency"`
	Interval      billing.Interval    `json:"interval"`
	IntervalCount *int                `json:"interval_count"`
	TaxRate       billing.TaxRate     `json:"tax_rate"`
	TaxBehavior   billing.TaxBehavior `json:"tax_behavior"`
	// BillingTiming is in_advance (default: a period is invoiced when it
	// starts) or in_arrears (when it ends: 月末締め).
	BillingTiming billing.BillingTiming `json:"billing_timing"`
}

// maxIntervalDays caps a plan's period at about three years, as Stripe does.
var maxIntervals = map[billing.Interval]int{billing.Day: 1095, billing.Week: 156, billing.Month: 36, billing.Year: 3}

// CreatePlan creates a plan. Plans cannot be changed afterwards.
func (s *Service) CreatePlan(ctx context.Context, p PlanParams) (*billing.Plan, error) {
	pl := &billing.Plan{ID: billing.NewID(billing.PrefixPlan), Name: p.Name, Currency: billing.Currency,
		Interval: p.Interval, IntervalCount: 1, TaxRate: p.TaxRate, TaxBehavior: p.TaxBehavior, BillingTiming: p.BillingTiming, CreatedAt: s.Clock.Now().UTC()}
	if pl.BillingTiming == "" {
		pl.BillingTiming = billing.BillInAdvance
	}
	if p.IntervalCount != nil {
		pl.IntervalCount = *p.IntervalCount
	}
	if pl.TaxRate == "" {
		pl.TaxRate = billing.TaxStandard
	}
	if pl.TaxBehavior == "" {
		pl.TaxBehavior = billing.TaxExclusive
	}
	switch {
	case pl.Name == "" || utf8.RuneCountInString(pl.Name) > 200:
		return nil, billing.Invalid("name", "name is required and must be at most 200 characters")
	case p.Amount == nil || *p.Amount < 1 || *p.Amount > billing.MaxAmount:
		return nil, billing.Invalid("amount", "amount is required and must be a whole number of yen between 1 and %d", int64(billing.MaxAmount))
	case p.Currency != "" && p.Currency != billing.Currency:
		return nil, billing.Invalid("currency", "currency must be jpy, got %q", p.Currency)
	case !pl.Interval.Valid():
		return nil, billing.Invalid("interval", "interval must be one of day, week, month, year, got %q", p.Interval)
	case pl.IntervalCount < 1 || pl.IntervalCount > maxIntervals[pl.Interval]:
		return nil, billing.Invalid("interval_count", "interval_count must be between 1 and %d for interval %s (at most three years)", maxIntervals[pl.Interval], pl.Interval)
	case !pl.TaxRate.Valid():
		return nil, billing.Invalid("tax_rate", "tax_rate must be one of standard, reduced, exempt, got %q", p.TaxRate)
	case !pl.TaxBehavior.Valid():
		return nil, billing.Invalid("tax_behavior", "tax_behavior must be exclusive or inclusive, got %q", p.TaxBehavior)
	case !pl.BillingTiming.Valid():
		return nil, billing.Invalid("billing_timing", "billing_timing must be in_advance or in_arrears, got %q", p.BillingTiming)
	}
	pl.Amount = *p.Amount
	err := s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(pl).Exec(ctx); err != nil {
			return err
		}
		return s.record(ctx, tx, "plan.created", pl.ID, pl)
	})
	if err != nil {
		return nil, err
	}
	return pl, nil
}

// GetPlan returns a plan.
func (s *Service) GetPlan(ctx context.Context, id string) (*billing.Plan, error) {
	pl := new(billing.Plan)
	if err := s.DB.NewSelect().Model(pl).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, notFound(err, "plan", id)
	}
	return pl, nil
}

// ListPlans returns one page of plans, newest first.
func (s *Service) ListPlans(ctx context.Context, p store.Page) ([]*billing.Plan, bool, error) {
	return store.List[*billing.Plan](ctx, s.DB.NewSelect().Model((*billing.Plan)(nil)), "id", p)
}
