package subscription

import (
	"math/rand/v2"
	"testing"
	"time"

	"billingd/billing"
)

var tokyo = billing.DefaultSettings().Location

func jst(y int, m time.Month, d, hh int) time.Time { return time.Date(y, m, d, hh, 0, 0, 0, tokyo) }

func TestBoundary(t *testing.T) {
	tests := []struct {
		name   string
		anchor time.Time
		iv     billing.Interval
		count  int
		want   []time.Time // boundaries 0, 1, 2, …
	}{
		{"MonthEndClampsAndReturns", jst(2027, 1, 31, 0), billing.Month, 1,
			[]time.Time{jst(2027, 1, 31, 0), jst(2027, 2, 28, 0), jst(2027, 3, 31, 0), jst(2027, 4, 30, 0), jst(2027, 5, 31, 0)}},
		{"LeapYearFebruary", jst(2028, 1, 31, 9), billing.Month, 1,
			[]time.Time{jst(2028, 1, 31, 9), jst(2028, 2, 29, 9), jst(2028, 3, 31, 9)}},
		{"Day30FallsOnFeb28", jst(2027, 1, 30, 0), billing.Month, 1,
			[]time.Time{jst(2027, 1, 30, 0), jst(2027, 2, 28, 0), jst(2027, 3, 30, 0)}},
		{"QuarterlyFromNov30", jst(2026, 11, 30, 0), billing.Month, 3,
			[]time.Time{jst(2026, 11, 30, 0), jst(2027, 2, 28, 0), jst(2027, 5, 30, 0), jst(2027, 8, 30, 0)}},
		{"YearlyFromLeapDay", jst(2028, 2, 29, 0), billing.Year, 1,
			[]time.Time{jst(2028, 2, 29, 0), jst(2029, 2, 28, 0), jst(2030, 2, 28, 0), jst(2031, 2, 28, 0), jst(2032, 2, 29, 0)}},
		{"Weekly", jst(2026, 12, 28, 0), billing.Week, 1,
			[]time.Time{jst(2026, 12, 28, 0), jst(2027, 1, 4, 0), jst(2027, 1, 11, 0)}},
		{"EveryTwoDays", jst(2026, 12, 31, 12), billing.Day, 2,
			[]time.Time{jst(2026, 12, 31, 12), jst(2027, 1, 2, 12), jst(2027, 1, 4, 12)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for n, want := range tt.want {
				if got := Boundary(tt.anchor, tt.iv, tt.count, n); !got.Equal(want) {
					t.Errorf("Boundary(%d) = %v, want %v", n, got, want)
				}
				if n+1 < len(tt.want) {
					mid := want.Add(tt.want[n+1].Sub(want) / 2)
					if s, e := PeriodAt(tt.anchor, tt.iv, tt.count, mid); !s.Equal(want) || !e.Equal(tt.want[n+1]) {
						t.Errorf("PeriodAt(%v) = [%v, %v), want [%v, %v)", mid, s, e, want, tt.want[n+1])
					}
				}
			}
		})
	}
}

// TestPeriodsTileTheYear checks that every instant of a year belongs to
// exactly one period: consecutive periods meet with no gap or overlap, and
// PeriodAt of random instants returns the period that contains them.
func TestPeriodsTileTheYear(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ivs := []billing.Interval{billing.Day, billing.Week, billing.Month, billing.Year}
	for i := 0; i < 200; i++ {
		anchor := jst(2026, time.Month(1+r.IntN(12)), 1+r.IntN(31), r.IntN(24)).Add(time.Duration(r.IntN(3600)) * time.Second)
		iv := ivs[r.IntN(len(ivs))]
		count := 1 + r.IntN(3)
		from, to := anchor, anchor.AddDate(1, 0, 0)
		for n := 0; Boundary(anchor, iv, count, n).Before(to); n++ {
			s, e := Boundary(anchor, iv, count, n), Boundary(anchor, iv, count, n+1)
			if !e.After(s) {
				t.Fatalf("%v %s×%d: period %d [%v, %v) is empty", anchor, iv, count, n, s, e)
			}
			if ps, pe := PeriodAt(anchor, iv, count, s); !ps.Equal(s) || !pe.Equal(e) {
				t.Fatalf("%v %s×%d: PeriodAt(start of %d) = [%v, %v), want [%v, %v)", anchor, iv, count, n, ps, pe, s, e)
			}
			if ps, _ := PeriodAt(anchor, iv, count, e.Add(-time.Nanosecond)); !ps.Equal(s) {
				t.Fatalf("%v %s×%d: last instant of period %d belongs to the period starting %v", anchor, iv, count, n, ps)
			}
		}
		for j := 0; j < 50; j++ {
			x := from.Add(time.Duration(r.Int64N(int64(to.Sub(from)))))
			s, e := PeriodAt(anchor, iv, count, x)
			if x.Before(s) || !x.Before(e) {
				t.Fatalf("%v %s×%d: %v not in its period [%v, %v)", anchor, iv, count, x, s, e)
			}
			n := PeriodIndex(anchor, iv, count, x)
			if !Boundary(anchor, iv, count, n).Equal(s) {
				t.Fatalf("PeriodIndex disagrees with PeriodAt")
			}
		}
	}
}
