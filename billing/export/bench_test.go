package export_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"billingd/billing/export"
	"billingd/billing/store"
	"billingd/billing/store/storetest"
)

// benchSizes are the invoice counts BenchmarkJournalYayoi runs:
// BILLING_EXPORT_BENCH_SIZES (comma-separated), 100,000 by default. The
// figures in the report come from
//
//	BILLING_EXPORT_BENCH_SIZES=100000,1000000 go test -run '^$' -bench JournalYayoi -benchtime 1x ./billing/export
func benchSizes(b *testing.B) []int {
	s := os.Getenv("BILLING_EXPORT_BENCH_SIZES")
	if s == "" {
		s = "100000"
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 100 {
			b.Fatalf("BILLING_EXPORT_BENCH_SIZES: %q is not a count of at least 100", f)
		}
		out = append(out, n)
	}
	return out
}

// seed writes n invoices spread over 2027 (two tax rates each), one
// customer per 100 invoices; half are paid by a voucher with a fee, one in
// 50 is written off, one in 100 voided, one in 10 has a balance applied.
// It uses INSERT … SELECT over generate_series: the server makes the rows.
func seed(b *testing.B, db *store.DB, n int) {
	ctx := context.Background()
	step := 364 * 24 * 3600 / float64(n)
	stmts := []string{
		`INSERT INTO customers (id, name, email, created_at)
		 SELECT 'cus_' || lpad(g::text, 8, '0'), '顧客〜' || g, 'c' || g || '@example.com', '2026-12-01T00:00:00Z'
		 FROM generate_series(0, $N / 100) g`,
		`INSERT INTO invoices (id, number, status, customer_id, billing_reason, currency, tax_behavior, days_until_due, subtotal, tax, total,
		   starting_balance, amount_due, amount_paid, amount_remaining, tax_breakdown, customer_name, customer_email, issuer_name,
		   issuer_registration_number, pay_token, created_at, finalized_at, paid_at, voided_at, marked_uncollectible_at)
		 SELECT 'in_' || lpad(g::text, 9, '0'), 'INV-2027-' || lpad(g::text, 9, '0'),
		   CASE WHEN g % 100 = 0 THEN 'void' WHEN g % 50 = 0 THEN 'uncollectible' WHEN g % 2 = 0 THEN 'paid' ELSE 'open' END,
		   'cus_' || lpad((g / 100)::text, 8, '0'), 'subscription_cycle', 'jpy', 'exclusive', 30, 7020, 680, 7700,
		   CASE WHEN g % 10 = 1 THEN 150 ELSE 0 END, CASE WHEN g % 10 = 1 THEN 7850 ELSE 7700 END,
		   CASE WHEN g % 2 = 0 AND g % 50 <> 0 THEN 7700 ELSE 0 END, CASE WHEN g % 2 = 0 AND g % 50 <> 0 THEN 0 ELSE 7700 END,
		   '[{"rate":"standard","percent":10,"taxable_amount":5940,"tax":594},{"rate":"reduced","percent":8,"taxable_amount":1080,"tax":86}]',
		   '顧客〜' || (g / 100), 'x@example.com', '株式会社テスト', 'T4011001098993', 'tok_' || g, f, f,
		   CASE WHEN g % 2 = 0 AND g % 50 <> 0 THEN f + interval '5 days' END,
		   CASE WHEN g % 100 = 0 THEN f + interval '10 days' END,
		   CASE WHEN g % 50 = 0 AND g % 100 <> 0 THEN f + interval '20 days' END
		 FROM generate_series(1, $N) g, LATERAL (SELECT timestamptz '2027-01-01 00:00:00+09' + make_interval(secs => g * $STEP) AS f) t`,
		`INSERT INTO vouchers (id, invoice_id, provider, provider_id, status, amount, fee, fee_vat, net, paid_at, created_at, updated_at)
		 SELECT 'ch_' || substr(id, 4), id, 'opn', 'chrg_' || substr(id, 4), 'successful', 7700, 189, 18, 7493, paid_at, finalized_at, paid_at
		 FROM invoices WHERE status = 'paid'`,
		`INSERT INTO balance_transactions (id, customer_id, type, amount, ending_balance, invoice_id, description, created_at)
		 SELECT 'cbtxn_' || substr(id, 4), customer_id, 'applied_to_invoice', -150, 0, id, '¥150 applied', finalized_at
		 FROM invoices WHERE starting_balance = 150`,
		`ANALYZE`,
	}
	for _, s := range stmts {
		s = strings.ReplaceAll(strings.ReplaceAll(s, "$N", strconv.Itoa(n)), "$STEP", strconv.FormatFloat(step, 'f', 6, 64))
		if _, err := db.ExecContext(ctx, s); err != nil {
			b.Fatalf("seed: %v\n%s", err, s)
		}
	}
}

// lineCounter counts the lines written to it and keeps nothing.
type lineCounter struct{ n int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	for _, b := range p {
		if b == '\n' {
			c.n++
		}
	}
	return len(p), nil
}

// heapSampler records the largest heap (live and not yet collected
// objects) seen while it runs.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func sampleHeap() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(h.done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > h.peak.Load() {
				h.peak.Store(v)
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) Stop() uint64 { close(h.stop); <-h.done; return h.peak.Load() }

// BenchmarkJournalYayoi measures the journal of a year of invoices in yayoi
// format from PostgreSQL: rows written per second and the peak heap during
// the export, which must not grow with the number of invoices.
func BenchmarkJournalYayoi(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("invoices=%d", n), func(b *testing.B) {
			db := storetest.Open(b, store.Postgres)
			t0 := time.Now()
			seed(b, db, n)
			b.Logf("seeded %d invoices in %s", n, time.Since(t0).Round(time.Millisecond))
			o := export.Options{Kind: export.Journal, Format: export.Yayoi, From: day("2027-01-01"), To: day("2027-12-31")}
			var rows int64
			var elapsed time.Duration
			var peak uint64
			b.ResetTimer()
			for range b.N {
				runtime.GC()
				h := sampleHeap()
				w := &lineCounter{}
				start := time.Now()
				if err := export.Write(context.Background(), db, w, o); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
				peak = max(peak, h.Stop())
				rows += w.n
			}
			b.ReportMetric(float64(rows)/elapsed.Seconds(), "rows/s")
			b.ReportMetric(float64(rows)/float64(b.N), "rows")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		})
	}
}
