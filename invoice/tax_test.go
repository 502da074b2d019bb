package invoice

import (
	"testing"

	"billingd/billing"
)

func TestComputeTotals(t *testing.T) {
	line := func(amount int64, r billing.TaxRate) *billing.InvoiceLine {
		return &billing.InvoiceLine{Amount: amount, TaxRate: r}
	}
	tests := []struct {
		name     string
		behavior billing.TaxBehavior
		mode     billing.Rounding
		lines    []*billing.InvoiceLine
		tax      int64
		total    int64
		per      []billing.TaxAmount
	}{
		{"ExclusiveStandard", billing.TaxExclusive, billing.RoundDown, []*billing.InvoiceLine{line(1000, billing.TaxStandard)}, 100, 1100,
			[]billing.TaxAmount{{Rate: billing.TaxStandard, Percent: 10, TaxableAmount: 1000, Tax: 100}}},
		// Per-line rounding would give 0+0+0 = 0 for three ¥9 lines at 10 %; per invoice gives floor(2.7) = 2.
		{"RoundedOncePerRateNotPerLine", billing.TaxExclusive, billing.RoundDown,
			[]*billing.InvoiceLine{line(9, billing.TaxStandard), line(9, billing.TaxStandard), line(9, billing.TaxStandard)}, 2, 29,
			[]billing.TaxAmount{{Rate: billing.TaxStandard, Percent: 10, TaxableAmount: 27, Tax: 2}}},
		{"MixedRates", billing.TaxExclusive, billing.RoundDown,
			[]*billing.InvoiceLine{line(1999, billing.TaxReduced), line(1234, billing.TaxStandard), line(500, billing.TaxExempt)}, 123 + 159, 3733 + 282,
			[]billing.TaxAmount{
				{Rate: billing.TaxStandard, Percent: 10, TaxableAmount: 1234, Tax: 123},
				{Rate: billing.TaxReduced, Percent: 8, TaxableAmount: 1999, Tax: 159},
				{Rate: billing.TaxExempt, Percent: 0, TaxableAmount: 500, Tax: 0}}},
		{"RoundUp", billing.TaxExclusive, billing.RoundUp, []*billing.InvoiceLine{line(1234, billing.TaxStandard)}, 124, 1358,
			[]billing.TaxAmount{{Rate: billing.TaxStandard, Percent: 10, TaxableAmount: 1234, Tax: 124}}},
		{"HalfUp", billing.TaxExclusive, billing.RoundHalfUp, []*billing.InvoiceLine{line(1235, billing.TaxStandard)}, 124, 1359,
			[]billing.TaxAmount{{Rate: billing.TaxStandard, Percent: 10, TaxableAmount: 1235, Tax: 124}}},
		{"HalfUpBelowHalf", billing.TaxExclusive, billing.RoundHalfUp, []*billing.InvoiceLine{line(1234, billing.TaxStandard)}, 123, 1357,
			[]billing.TaxAmount{{Rate: billing.TaxStandard, Percent: 10, TaxableAmount: 1234, Tax: 123}}},
		// ¥1,100 tax included at 10 % holds ¥100 of tax.
		{"InclusiveStandard", billing.TaxInclusive, billing.RoundDown, []*billing.InvoiceLine{line(1100, billing.TaxStandard)}, 100, 1100,
			[]billing.TaxAmount{{Rate: billing.TaxStandard, Percent: 10, TaxableAmount: 1000, Tax: 100}}},
		// ¥1,000 at 8 % included: 1000 × 8/108 = 74.07 → 74.
		{"InclusiveReduced", billing.TaxInclusive, billing.RoundDown, []*billing.InvoiceLine{line(600, billing.TaxReduced), line(400, billing.TaxReduced)}, 74, 1000,
			[]billing.TaxAmount{{Rate: billing.TaxReduced, Percent: 8, TaxableAmount: 926, Tax: 74}}},
		{"InclusiveRoundUp", billing.TaxInclusive, billing.RoundUp, []*billing.InvoiceLine{line(1000, billing.TaxStandard)}, 91, 1000,
			[]billing.TaxAmount{{Rate: billing.TaxStandard, Percent: 10, TaxableAmount: 909, Tax: 91}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &billing.Invoice{TaxBehavior: tt.behavior, Lines: tt.lines}
			ComputeTotals(in, tt.mode)
			if in.Tax != tt.tax || in.Total != tt.total || in.AmountDue != tt.total {
				t.Errorf("tax %d total %d due %d, want tax %d total %d", in.Tax, in.Total, in.AmountDue, tt.tax, tt.total)
			}
			if len(in.TaxBreakdown) != len(tt.per) {
				t.Fatalf("breakdown %+v, want %+v", in.TaxBreakdown, tt.per)
			}
			for i := range tt.per {
				if in.TaxBreakdown[i] != tt.per[i] {
					t.Errorf("breakdown[%d] = %+v, want %+v", i, in.TaxBreakdown[i], tt.per[i])
				}
			}
		})
	}
}
