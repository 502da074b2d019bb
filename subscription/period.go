package subscription

import (
	"time"

	"billingd/billing"
)

// Boundary returns the start of period n of a schedule anchored at anchor
// (period 0 starts at anchor; n may be negative). Calendar arithmetic
// happens in anchor's location. Monthly and yearly schedules anchored on a
// day a shorter month lacks fall on that month's last day and return to the
// anchor day afterwards (Jan 31 → Feb 28/29 → Mar 31), because every
// boundary is computed from the anchor, never from the previous boundary.
func Boundary(anchor time.Time, iv billing.Interval, count, n int) time.Time {
	switch iv {
	case billing.Day:
		return anchor.AddDate(0, 0, n*count)
	case billing.Week:
		return anchor.AddDate(0, 0, 7*n*count)
	case billing.Year:
		return addMonthsClamped(anchor, 12*n*count)
	default:
		return addMonthsClamped(anchor, n*count)
	}
}

func addMonthsClamped(t time.Time, months int) time.Time {
	y, m, d := t.Date()
	hh, mm, ss := t.Clock()
	first := time.Date(y, m+time.Month(months), 1, hh, mm, ss, t.Nanosecond(), t.Location())
	if last := daysIn(first.Year(), first.Month()); d > last {
		d = last
	}
	return time.Date(first.Year(), first.Month(), d, hh, mm, ss, t.Nanosecond(), t.Location())
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// PeriodIndex returns n such that Boundary(n) ≤ t < Boundary(n+1).
func PeriodIndex(anchor time.Time, iv billing.Interval, count int, t time.Time) int {
	t = t.In(anchor.Location())
	var n int
	switch iv {
	case billing.Day:
		n = int(t.Sub(anchor).Hours()/24) / count
	case billing.Week:
		n = int(t.Sub(anchor).Hours()/24/7) / count
	case billing.Year:
		n = (t.Year() - anchor.Year()) / count
	default:
		n = ((t.Year()-anchor.Year())*12 + int(t.Month()-anchor.Month())) / count
	}
	// The estimate is off by at most one or two; walk to the exact period.
	for Boundary(anchor, iv, count, n).After(t) {
		n--
	}
	for !Boundary(anchor, iv, count, n+1).After(t) {
		n++
	}
	return n
}

// PeriodAt returns the period [start, end) of the schedule that contains t.
func PeriodAt(anchor time.Time, iv billing.Interval, count int, t time.Time) (start, end time.Time) {
	n := PeriodIndex(anchor, iv, count, t)
	return Boundary(anchor, iv, count, n), Boundary(anchor, iv, count, n+1)
}
