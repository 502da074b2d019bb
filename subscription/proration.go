package subscription

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"billingd/billing"
)

// ProrationBehavior says how a change of items in the middle of a period is
// settled, as Stripe's proration_behavior.
type ProrationBehavior string

// Proration behaviors.
const (
	// CreateProrations (the default) credits the unused time of the old
	// items and charges the new ones on the subscription's next invoice; a
	// net credit (a downgrade) goes to the customer's balance at once.
	CreateProrations ProrationBehavior = "create_prorations"
	// AlwaysInvoice invoices the difference (and any pending items) now; a
	// net credit goes to the customer's balance.
	AlwaysInvoice ProrationBehavior = "always_invoice"
	// NoProration changes the items without settling the current period:
	// the next invoice bills the new items.
	NoProration ProrationBehavior = "none"
)

// Valid reports whether b is a known behavior.
func (b ProrationBehavior) Valid() bool {
	return b == CreateProrations || b == AlwaysInvoice || b == NoProration
}

// Window is the part of a period a proration covers: [From, To) within the
// schedule's full period [FullStart, FullEnd). Amounts are the plan's price
// times To−From over FullEnd−FullStart, exact to the second.
type Window struct {
	FullStart, FullEnd time.Time
	From, To           time.Time
}

// seconds returns the window's and the full period's length in seconds.
func (w Window) seconds() (part, full int64) {
	return int64(w.To.Sub(w.From) / time.Second), int64(w.FullEnd.Sub(w.FullStart) / time.Second)
}

// ProratedAmount returns quantity × unit for the window's share of its
// period, rounded half up (away from zero) to whole yen: the amount of one
// proration line. Tax is not included; it is computed once per invoice per
// rate like any other line's.
func ProratedAmount(quantity, unit int64, w Window) int64 {
	part, full := w.seconds()
	if part <= 0 || full <= 0 {
		return 0
	}
	if part >= full {
		return quantity * unit
	}
	return decimal.NewFromInt(quantity * unit).Mul(decimal.NewFromInt(part)).Div(decimal.NewFromInt(full)).Round(0).IntPart()
}

// prorationLines returns the lines that settle replacing the items old by
// the items new during the period of w, as invoice lines (without ids).
//
// In advance (arrears false) the period was invoiced at its start with the
// old items, so the window is [change, period end): the old items' unused
// time is credited and the new items' remaining time charged. In arrears the
// period will be invoiced at its end with the new items for all of it, so
// the window is [period start, change): the old items' used time is charged
// and the new items' share of it credited. Either way the customer pays the
// old items up to the change and the new ones after it.
//
// Items that did not change (same id, plan and quantity) produce no line;
// a changed item produces a credit and a charge, each rounded once.
func prorationLines(old, new []*billing.SubscriptionItem, w Window, arrears bool, loc *time.Location) []*billing.InvoiceLine {
	same := func(a *billing.SubscriptionItem, list []*billing.SubscriptionItem) bool {
		for _, b := range list {
			if a.ID == b.ID && a.PlanID == b.PlanID && a.Quantity == b.Quantity {
				return true
			}
		}
		return false
	}
	from, to := w.From.UTC(), w.To.UTC()
	day := func(t time.Time) string { return t.In(loc).Format("2006/01/02 15:04") }
	line := func(it *billing.SubscriptionItem, sign int64, desc string) *billing.InvoiceLine {
		planID := it.PlanID
		return &billing.InvoiceLine{Description: desc, PlanID: &planID, Quantity: it.Quantity, UnitAmount: it.Plan.Amount,
			Amount: sign * ProratedAmount(it.Quantity, it.Plan.Amount, w), TaxRate: it.Plan.TaxRate,
			PeriodStart: &from, PeriodEnd: &to, Proration: true}
	}
	var lines []*billing.InvoiceLine
	for _, it := range old {
		if same(it, new) {
			continue
		}
		if arrears {
			lines = append(lines, line(it, +1, fmt.Sprintf("%s 利用分（%s〜%s）", it.Plan.Name, day(from), day(to))))
		} else {
			lines = append(lines, line(it, -1, fmt.Sprintf("%s 未使用分の返金（%s〜%s）", it.Plan.Name, day(from), day(to))))
		}
	}
	for _, it := range new {
		if same(it, old) {
			continue
		}
		if arrears {
			lines = append(lines, line(it, -1, fmt.Sprintf("%s 未利用分の差引（%s〜%s）", it.Plan.Name, day(from), day(to))))
		} else {
			lines = append(lines, line(it, +1, fmt.Sprintf("%s 残り期間分（%s〜%s）", it.Plan.Name, day(from), day(to))))
		}
	}
	return nonZero(lines)
}

// usageLines returns the lines for the items' use during w, charged (sign
// +1) or credited (−1): the final invoice of an in-arrears subscription
// canceled during a period, or the credit for the unused time of an
// in-advance one.
func usageLines(items []*billing.SubscriptionItem, w Window, sign int64, loc *time.Location) []*billing.InvoiceLine {
	from, to := w.From.UTC(), w.To.UTC()
	day := func(t time.Time) string { return t.In(loc).Format("2006/01/02 15:04") }
	var lines []*billing.InvoiceLine
	for _, it := range items {
		planID := it.PlanID
		desc := fmt.Sprintf("%s 利用分（%s〜%s）", it.Plan.Name, day(from), day(to))
		if sign < 0 {
			desc = fmt.Sprintf("%s 未使用分の返金（%s〜%s）", it.Plan.Name, day(from), day(to))
		}
		lines = append(lines, &billing.InvoiceLine{Description: desc, PlanID: &planID, Quantity: it.Quantity, UnitAmount: it.Plan.Amount,
			Amount: sign * ProratedAmount(it.Quantity, it.Plan.Amount, w), TaxRate: it.Plan.TaxRate,
			PeriodStart: &from, PeriodEnd: &to, Proration: true})
	}
	return nonZero(lines)
}

// nonZero drops lines of ¥0 (a window too short to cost a yen).
func nonZero(lines []*billing.InvoiceLine) []*billing.InvoiceLine {
	out := lines[:0]
	for _, l := range lines {
		if l.Amount != 0 {
			out = append(out, l)
		}
	}
	return out
}
