package subscription

import (
	"testing"
	"time"

	"billingd/billing"
	"billingd/invoice"
)

func plan(id string, amount int64, iv billing.Interval, count int) *billing.Plan {
	return &billing.Plan{ID: id, Name: id, Amount: amount, Interval: iv, IntervalCount: count, TaxRate: billing.TaxStandard, TaxBehavior: billing.TaxExclusive}
}

func item(id string, p *billing.Plan, qty int64) *billing.SubscriptionItem {
	return &billing.SubscriptionItem{ID: id, PlanID: p.ID, Plan: p, Quantity: qty}
}

// TestProrationWorkedExamples checks prorations against examples worked by
// hand: each line is the price times the remaining (in advance) or used (in
// arrears) seconds over the period's seconds, rounded half up once per
// line; tax is then computed once for the invoice.
func TestProrationWorkedExamples(t *testing.T) {
	basic, pro := plan("basic", 3000, billing.Month, 1), plan("pro", 6000, billing.Month, 1)
	seat := plan("seat", 1980, billing.Month, 1)
	small, big := plan("small", 1000, billing.Month, 1), plan("big", 2000, billing.Month, 1)
	yearly, yearlyPlus := plan("yearly", 12000, billing.Year, 1), plan("yearly_plus", 24000, billing.Year, 1)
	odd := plan("odd", 1001, billing.Day, 2)
	oddPlus := plan("odd_plus", 2003, billing.Day, 2)
	huge, huger := plan("huge", 10_000_000, billing.Month, 1), plan("huger", 20_000_000, billing.Month, 1)
	sec := func(y int, m time.Month, d, hh, mm, ss int) time.Time {
		return time.Date(y, m, d, hh, mm, ss, 0, tokyo)
	}

	tests := []struct {
		name     string
		anchor   time.Time
		old, new []*billing.SubscriptionItem
		at       time.Time
		arrears  bool
		want     []int64 // line amounts, credits negative
		subtotal int64
		tax      int64 // 10 %, rounded down once for the invoice
	}{
		{
			// April 2027 has 30 days; after 10 of them, 20/30 remain.
			name: "UpgradeOnDay10Of30", anchor: jst(2027, 4, 1, 0),
			old: []*billing.SubscriptionItem{item("si_1", basic, 1)}, new: []*billing.SubscriptionItem{item("si_1", pro, 1)},
			at: jst(2027, 4, 11, 0), want: []int64{-2000, 4000}, subtotal: 2000, tax: 200,
		},
		{
			name: "DowngradeOnDay10Of30", anchor: jst(2027, 4, 1, 0),
			old: []*billing.SubscriptionItem{item("si_1", pro, 1)}, new: []*billing.SubscriptionItem{item("si_1", basic, 1)},
			at: jst(2027, 4, 11, 0), want: []int64{-4000, 2000}, subtotal: -2000, tax: -200,
		},
		{
			// January has 31 days; 21 remain: 3,960 × 21/31 = 2,682.58 → 2,683
			// and 9,900 × 21/31 = 6,706.45 → 6,706.
			name: "QuantityTwoToFive", anchor: jst(2027, 1, 1, 0),
			old: []*billing.SubscriptionItem{item("si_1", seat, 2)}, new: []*billing.SubscriptionItem{item("si_1", seat, 5)},
			at: jst(2027, 1, 11, 0), want: []int64{-2683, 6706}, subtotal: 4023, tax: 402,
		},
		{
			// Anchored on Jan 31: the period from Feb 28 to Mar 31 has 31 days;
			// from Mar 15 12:00, 15.5 of them remain: exactly half.
			name: "MonthEndAnchorMarch", anchor: jst(2027, 1, 31, 0),
			old: []*billing.SubscriptionItem{item("si_1", small, 1)}, new: []*billing.SubscriptionItem{item("si_1", big, 1)},
			at: jst(2027, 3, 15, 12), want: []int64{-500, 1000}, subtotal: 500, tax: 50,
		},
		{
			// Anchored on Jan 31: the period from Jan 31 to Feb 28 has 28 days.
			name: "MonthEndAnchorFebruary", anchor: jst(2027, 1, 31, 0),
			old: []*billing.SubscriptionItem{item("si_1", basic, 1)}, new: []*billing.SubscriptionItem{item("si_1", pro, 1)},
			at: jst(2027, 2, 14, 0), want: []int64{-1500, 3000}, subtotal: 1500, tax: 150,
		},
		{
			// 2028 is a leap year: Jan 31 to Feb 29 has 29 days, 14 remain
			// from Feb 15: 1,000 × 14/29 = 482.76 → 483, 2,000 × 14/29 = 965.52 → 966.
			name: "LeapYearFebruary", anchor: jst(2028, 1, 31, 0),
			old: []*billing.SubscriptionItem{item("si_1", small, 1)}, new: []*billing.SubscriptionItem{item("si_1", big, 1)},
			at: jst(2028, 2, 15, 0), want: []int64{-483, 966}, subtotal: 483, tax: 48,
		},
		{
			// A yearly period over 2028 has 366 days; from Mar 1, 306 remain:
			// 12,000 × 306/366 = 10,032.79 → 10,033; 24,000 × 306/366 = 20,065.57 → 20,066.
			name: "LeapYearYearly", anchor: jst(2028, 1, 1, 0),
			old: []*billing.SubscriptionItem{item("si_1", yearly, 1)}, new: []*billing.SubscriptionItem{item("si_1", yearlyPlus, 1)},
			at: jst(2028, 3, 1, 0), want: []int64{-10033, 20066}, subtotal: 10033, tax: 1003,
		},
		{
			// Half a two-day period: 1,001 / 2 = 500.5 rounds up to 501 (and
			// the credit to −501); 2,003 / 2 = 1,001.5 → 1,002.
			name: "HalfRoundsUp", anchor: jst(2027, 4, 1, 0),
			old: []*billing.SubscriptionItem{item("si_1", odd, 1)}, new: []*billing.SubscriptionItem{item("si_1", oddPlus, 1)},
			at: jst(2027, 4, 2, 0), want: []int64{-501, 1002}, subtotal: 501, tax: 50,
		},
		{
			// To the second: 1,295,999 of April's 2,592,000 seconds remain:
			// 10,000,000 × that = 4,999,996.14 → 4,999,996; 20,000,000 × = 9,999,992.28 → 9,999,992.
			name: "ExactToTheSecond", anchor: jst(2027, 4, 1, 0),
			old: []*billing.SubscriptionItem{item("si_1", huge, 1)}, new: []*billing.SubscriptionItem{item("si_1", huger, 1)},
			at: sec(2027, 4, 16, 0, 0, 1), want: []int64{-4999996, 9999992}, subtotal: 4999996, tax: 499999,
		},
		{
			// Adding an item charges only the new one; unchanged items give no line.
			name: "AddItem", anchor: jst(2027, 4, 1, 0),
			old: []*billing.SubscriptionItem{item("si_1", basic, 1)}, new: []*billing.SubscriptionItem{item("si_1", basic, 1), item("si_2", seat, 3)},
			at: jst(2027, 4, 11, 0), want: []int64{3960}, subtotal: 3960, tax: 396,
		},
		{
			// In arrears the period is invoiced at its end with the new items;
			// the old one's 10 used days are charged and the new one's credited:
			// the period-end invoice then totals 1,000 + 4,000 for 10 + 20 days.
			name: "ArrearsUpgrade", anchor: jst(2027, 4, 1, 0), arrears: true,
			old: []*billing.SubscriptionItem{item("si_1", basic, 1)}, new: []*billing.SubscriptionItem{item("si_1", pro, 1)},
			at: jst(2027, 4, 11, 0), want: []int64{1000, -2000}, subtotal: -1000, tax: -100,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.old[0].Plan
			fullStart, fullEnd := PeriodAt(tt.anchor, p.Interval, p.IntervalCount, tt.at)
			w := Window{FullStart: fullStart, FullEnd: fullEnd, From: tt.at, To: fullEnd}
			if tt.arrears {
				w.From, w.To = fullStart, tt.at
			}
			lines := prorationLines(tt.old, tt.new, w, tt.arrears, tokyo)
			if len(lines) != len(tt.want) {
				t.Fatalf("%d lines, want %d: %+v", len(lines), len(tt.want), lines)
			}
			for i, l := range lines {
				if l.Amount != tt.want[i] || !l.Proration {
					t.Errorf("line %d (%s): %d, want %d", i, l.Description, l.Amount, tt.want[i])
				}
			}
			in := &billing.Invoice{TaxBehavior: billing.TaxExclusive, Lines: lines}
			invoice.ComputeTotals(in, billing.RoundDown)
			if in.Subtotal != tt.subtotal || in.Tax != tt.tax {
				t.Errorf("subtotal %d tax %d, want %d and %d", in.Subtotal, in.Tax, tt.subtotal, tt.tax)
			}
		})
	}
}

func TestProratedAmountBounds(t *testing.T) {
	w := Window{FullStart: jst(2027, 4, 1, 0), FullEnd: jst(2027, 5, 1, 0)}
	for _, tt := range []struct {
		name     string
		from, to time.Time
		want     int64
	}{
		{"Empty", jst(2027, 4, 10, 0), jst(2027, 4, 10, 0), 0},
		{"Whole", jst(2027, 4, 1, 0), jst(2027, 5, 1, 0), 3000},
		{"OneSecond", jst(2027, 4, 1, 0), jst(2027, 4, 1, 0).Add(time.Second), 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w.From, w.To = tt.from, tt.to
			if got := ProratedAmount(1, 3000, w); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}
