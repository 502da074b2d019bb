package invoice

import (
	"github.com/shopspring/decimal"

	"billingd/billing"
)

// rateOrder is the order of rates in a tax breakdown: standard, reduced, exempt.
var rateOrder = []billing.TaxRate{billing.TaxStandard, billing.TaxReduced, billing.TaxExempt}

// ComputeTotals sets in's Subtotal, Tax, Total, TaxBreakdown, AmountDue and
// AmountRemaining from its lines. Consumption tax is computed once per rate
// from that rate's total and rounded once by mode, never per line, as the
// qualified invoice system requires.
//
// With exclusive tax behavior the lines are net: tax is added on top
// (tax = total × rate). With inclusive behavior the lines contain the tax
// (tax = total × rate / (1 + rate)) and Total equals Subtotal.
func ComputeTotals(in *billing.Invoice, mode billing.Rounding) {
	sums := map[billing.TaxRate]int64{}
	var subtotal int64
	for _, l := range in.Lines {
		sums[l.TaxRate] += l.Amount
		subtotal += l.Amount
	}
	in.Subtotal, in.Tax, in.TaxBreakdown = subtotal, 0, nil
	for _, r := range rateOrder {
		sum, ok := sums[r]
		if !ok {
			continue
		}
		base := decimal.NewFromInt(sum)
		var tax, taxable int64
		if in.TaxBehavior == billing.TaxInclusive {
			tax = mode.Round(base.Mul(r.Rate()).Div(decimal.NewFromInt(1).Add(r.Rate())))
			taxable = sum - tax
		} else {
			tax = mode.Round(base.Mul(r.Rate()))
			taxable = sum
		}
		in.Tax += tax
		in.TaxBreakdown = append(in.TaxBreakdown, billing.TaxAmount{Rate: r, Percent: r.Percent(), TaxableAmount: taxable, Tax: tax})
	}
	in.Total = in.Subtotal
	if in.TaxBehavior != billing.TaxInclusive {
		in.Total += in.Tax
	}
	in.AmountDue = in.Total
	in.AmountRemaining = in.AmountDue - in.AmountPaid
}
