package subscription_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/store"
	"billingd/billing/store/storetest"
	"billingd/subscription"
)

// BenchmarkBillingRun measures a billing run over n due subscriptions (one
// item each), and the floor: inserting the same rows (invoices and lines)
// with plain multi-row INSERTs and no logic. Each iteration bills the next
// period of every subscription. Run with: make bench BENCH=BillingRun
func BenchmarkBillingRun(b *testing.B) {
	for _, dialect := range storetest.Dialects {
		for _, n := range []int{10_000, 100_000} {
			b.Run(fmt.Sprintf("%s/%d/sweep", dialect, n), func(b *testing.B) { benchSweep(b, dialect, n) })
			b.Run(fmt.Sprintf("%s/%d/floor", dialect, n), func(b *testing.B) { benchFloor(b, dialect, n) })
		}
	}
}

var benchStart = time.Date(2027, 1, 1, 0, 0, 0, 0, billing.DefaultSettings().Location)

// seedSubscriptions inserts n subscriptions due at benchStart directly.
func seedSubscriptions(b *testing.B, db *store.DB, n int) {
	ctx := context.Background()
	c := &billing.Customer{ID: billing.NewID(billing.PrefixCustomer), Name: "顧客", Email: "c@example.com", Language: "ja", CreatedAt: benchStart}
	p := &billing.Plan{ID: billing.NewID(billing.PrefixPlan), Name: "Pro", Amount: 1980, Currency: "jpy", Interval: billing.Month, IntervalCount: 1,
		TaxRate: billing.TaxStandard, TaxBehavior: billing.TaxExclusive, CreatedAt: benchStart}
	if _, err := db.NewInsert().Model(c).Exec(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := db.NewInsert().Model(p).Exec(ctx); err != nil {
		b.Fatal(err)
	}
	start := benchStart.UTC()
	for i := 0; i < n; i += 1000 {
		var subs []*billing.Subscription
		var items []*billing.SubscriptionItem
		for j := i; j < min(n, i+1000); j++ {
			s := &billing.Subscription{ID: billing.NewID(billing.PrefixSubscription), CustomerID: c.ID, Status: billing.SubscriptionActive,
				Interval: billing.Month, IntervalCount: 1, StartDate: start, BillingCycleAnchor: start, DaysUntilDue: 30, NextBillingAt: &start, CreatedAt: start}
			subs = append(subs, s)
			items = append(items, &billing.SubscriptionItem{ID: billing.NewID(billing.PrefixSubItem), SubscriptionID: s.ID, PlanID: p.ID, Quantity: 1})
		}
		if _, err := db.NewInsert().Model(&subs).Exec(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := db.NewInsert().Model(&items).Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	// A production database has planner statistics (autovacuum keeps them);
	// a freshly filled one has none until analyzed.
	if _, err := db.ExecContext(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
}

// peakHeap samples the heap in use until stop is called and returns the peak.
func peakHeap() (stop func() uint64) {
	runtime.GC()
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); <-finished; return peak.Load() }
}

func benchSweep(b *testing.B, dialect string, n int) {
	db := storetest.Open(b, dialect)
	seedSubscriptions(b, db, n)
	svc := &subscription.Service{DB: db, Clock: billing.WallClock{}, Settings: billing.DefaultSettings()}
	ctx := context.Background()
	b.ResetTimer()
	stop := peakHeap()
	for i := 0; i < b.N; i++ {
		run, err := svc.BillDue(ctx, benchStart.AddDate(0, i, 0))
		if err != nil {
			b.Fatal(err)
		}
		if run.Invoices != n {
			b.Fatalf("run %d billed %d, want %d", i, run.Invoices, n)
		}
	}
	peak := stop()
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "invoices/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}

func benchFloor(b *testing.B, dialect string, n int) {
	db := storetest.Open(b, dialect)
	ctx := context.Background()
	c := &billing.Customer{ID: billing.NewID(billing.PrefixCustomer), Name: "顧客", Email: "c@example.com", Language: "ja", CreatedAt: benchStart}
	if _, err := db.NewInsert().Model(c).Exec(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	stop := peakHeap()
	for it := 0; it < b.N; it++ {
		ps, pe := benchStart.AddDate(0, it, 0).UTC(), benchStart.AddDate(0, it+1, 0).UTC()
		for i := 0; i < n; i += 500 {
			var invs []*billing.Invoice
			var lines []*billing.InvoiceLine
			for j := i; j < min(n, i+500); j++ {
				num := fmt.Sprintf("F-%d-%06d", it, j)
				in := &billing.Invoice{ID: billing.NewID(billing.PrefixInvoice), Number: &num, Status: billing.InvoiceOpen, CustomerID: c.ID,
					BillingReason: "subscription_cycle", Currency: "jpy", TaxBehavior: billing.TaxExclusive, PeriodStart: &ps, PeriodEnd: &pe,
					DaysUntilDue: 30, DueDate: &pe, Subtotal: 1980, Tax: 198, Total: 2178, AmountDue: 2178, AmountRemaining: 2178,
					TaxBreakdown: []billing.TaxAmount{{Rate: billing.TaxStandard, Percent: 10, TaxableAmount: 1980, Tax: 198}},
					CustomerName: c.Name, CustomerEmail: c.Email, PayToken: billing.NewToken(), CreatedAt: ps, FinalizedAt: &ps}
				invs = append(invs, in)
				lines = append(lines, &billing.InvoiceLine{ID: billing.NewID(billing.PrefixLine), InvoiceID: in.ID, Description: "Pro", Quantity: 1,
					UnitAmount: 1980, Amount: 1980, TaxRate: billing.TaxStandard, PeriodStart: &ps, PeriodEnd: &pe})
			}
			err := db.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
				if _, err := tx.NewInsert().Model(&invs).Exec(ctx); err != nil {
					return err
				}
				_, err := tx.NewInsert().Model(&lines).Exec(ctx)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	peak := stop()
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "invoices/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}
