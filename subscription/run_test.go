package subscription_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"billingd/billing"
	"billingd/billing/store"
	"billingd/billing/store/storetest"
	"billingd/invoice"
	"billingd/subscription"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.DropTemplates()
	os.Exit(code)
}

func ptr[T any](v T) *T { return &v }

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func newService(db *store.DB, now time.Time) (*subscription.Service, *invoice.Service, *clock) {
	c := &clock{t: now}
	st := billing.DefaultSettings()
	st.Issuer = billing.Issuer{Name: "テスト株式会社", RegistrationNumber: "T4011001098993"}
	return &subscription.Service{DB: db, Clock: c, Settings: st, BatchSize: 7},
		&invoice.Service{DB: db, Clock: c, Settings: st, PublicURL: "http://billing.test"}, c
}

func seed(t *testing.T, svc *subscription.Service, amount int64, iv billing.Interval, start time.Time) *billing.Subscription {
	t.Helper()
	ctx := context.Background()
	c, err := svc.CreateCustomer(ctx, subscription.CustomerParams{Name: ptr("山田太郎"), Email: ptr("taro@example.com"), Phone: ptr("090-1234-5678")})
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.CreatePlan(ctx, subscription.PlanParams{Name: "Pro", Amount: ptr(amount), Interval: iv})
	if err != nil {
		t.Fatal(err)
	}
	s, err := svc.Create(ctx, subscription.Params{Customer: c.ID, Items: []subscription.ItemParams{{Plan: p.ID, Quantity: ptr(int64(2))}}, Start: &start})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBillDueCatchesUpOncePerPeriod(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		start := time.Date(2027, 1, 31, 10, 0, 0, 0, billing.DefaultSettings().Location)
		svc, inv, clk := newService(db, start)
		var subs []*billing.Subscription
		for range 20 {
			subs = append(subs, seed(t, svc, 1980, billing.Month, start))
		}
		// Each subscription's first invoice was issued at creation.
		all, _, err := inv.List(ctx, invoice.Filter{}, store.Page{Limit: 100})
		if err != nil || len(all) != 20 {
			t.Fatalf("after creation: %d invoices, %v", len(all), err)
		}
		// Three months of downtime: one run catches up with three invoices each.
		clk.Set(time.Date(2027, 4, 30, 12, 0, 0, 0, billing.DefaultSettings().Location))
		run, err := svc.BillDue(ctx, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if run.Invoices != 60 {
			t.Fatalf("catch-up run created %d invoices, want 60 (Feb 28, Mar 31, Apr 30)", run.Invoices)
		}
		again, err := svc.BillDue(ctx, clk.Now())
		if err != nil || again.Invoices != 0 {
			t.Fatalf("second run at the same instant: %+v, %v", again, err)
		}
		got, _, err := inv.List(ctx, invoice.Filter{Subscription: subs[0].ID}, store.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		wantStarts := []string{"2027-04-30", "2027-03-31", "2027-02-28", "2027-01-31"}
		if len(got) != len(wantStarts) {
			t.Fatalf("%d invoices for one subscription, want %d", len(got), len(wantStarts))
		}
		for i, in := range got {
			if s := in.PeriodStart.In(billing.DefaultSettings().Location).Format("2006-01-02"); s != wantStarts[i] {
				t.Errorf("invoice %d starts %s, want %s", i, s, wantStarts[i])
			}
			if in.Status != billing.InvoiceOpen || in.Total != 4356 || in.Tax != 396 || in.Number == nil {
				t.Errorf("invoice %s: status %s total %d tax %d number %v", in.ID, in.Status, in.Total, in.Tax, in.Number)
			}
		}
		// Numbers are gapless over all 80 invoices.
		seen := map[string]bool{}
		all, _, _ = inv.List(ctx, invoice.Filter{}, store.Page{Limit: 100})
		for _, in := range all {
			seen[*in.Number] = true
		}
		for n := 1; n <= 80; n++ {
			if !seen[fmt.Sprintf("INV-2027-%06d", n)] {
				t.Errorf("number INV-2027-%06d missing", n)
			}
		}
	})
}

func TestCancelAtPeriodEnd(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		start := time.Date(2027, 3, 1, 0, 0, 0, 0, billing.DefaultSettings().Location)
		svc, inv, clk := newService(db, start)
		sub := seed(t, svc, 500, billing.Week, start)
		clk.Set(start.AddDate(0, 0, 10))
		if _, err := svc.BillDue(ctx, clk.Now()); err != nil {
			t.Fatal(err)
		}
		sub, err := svc.Cancel(ctx, sub.ID, true)
		if err != nil || sub.Status != billing.SubscriptionActive || !sub.CancelAtPeriodEnd {
			t.Fatalf("cancel at period end: %+v, %v", sub, err)
		}
		clk.Set(start.AddDate(0, 1, 0))
		if _, err := svc.BillDue(ctx, clk.Now()); err != nil {
			t.Fatal(err)
		}
		sub, _ = svc.Get(ctx, sub.ID)
		if sub.Status != billing.SubscriptionCanceled || !sub.EndedAt.Equal(start.AddDate(0, 0, 14)) {
			t.Fatalf("after period end: status %s ended %v", sub.Status, sub.EndedAt)
		}
		list, _, _ := inv.List(ctx, invoice.Filter{Subscription: sub.ID}, store.Page{})
		if len(list) != 2 {
			t.Fatalf("%d invoices, want 2 (weeks 1 and 2)", len(list))
		}
		if _, err := svc.Cancel(ctx, sub.ID, false); billing.ErrorCode(err) != billing.ECONFLICT {
			t.Fatalf("cancel twice: %v", err)
		}
	})
}

func TestBillingCycleAnchorProratesFirstPeriod(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		loc := billing.DefaultSettings().Location
		start := time.Date(2027, 4, 21, 0, 0, 0, 0, loc)
		svc, inv, _ := newService(db, start)
		c, _ := svc.CreateCustomer(ctx, subscription.CustomerParams{Name: ptr("A"), Email: ptr("a@example.com"), Phone: ptr("090-1234-5678")})
		p, _ := svc.CreatePlan(ctx, subscription.PlanParams{Name: "Pro", Amount: ptr(int64(3000)), Interval: billing.Month})
		anchor := time.Date(2027, 5, 1, 0, 0, 0, 0, loc)
		sub, err := svc.Create(ctx, subscription.Params{Customer: c.ID, Items: []subscription.ItemParams{{Plan: p.ID}}, Start: &start, BillingCycleAnchor: &anchor})
		if err != nil {
			t.Fatal(err)
		}
		list, _, _ := inv.List(ctx, invoice.Filter{Subscription: sub.ID}, store.Page{})
		// 10 of April's 30 days: ¥1,000, plus 10 % tax.
		if len(list) != 1 || list[0].Subtotal != 1000 || list[0].Total != 1100 || !list[0].PeriodEnd.Equal(anchor) {
			t.Fatalf("first invoice: %+v", list)
		}
	})
}

func TestConcurrentRunsBillEachPeriodOnce(t *testing.T) {
	ctx := context.Background()
	url := storetest.URL(t, store.Postgres)
	db, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Date(2027, 1, 1, 0, 0, 0, 0, billing.DefaultSettings().Location)
	svc, inv, _ := newService(db, start.Add(-time.Hour))
	c, _ := svc.CreateCustomer(ctx, subscription.CustomerParams{Name: ptr("A"), Email: ptr("a@example.com"), Phone: ptr("090-1234-5678")})
	p, _ := svc.CreatePlan(ctx, subscription.PlanParams{Name: "Pro", Amount: ptr(int64(1000)), Interval: billing.Month})
	for range 1000 {
		if _, err := svc.Create(ctx, subscription.Params{Customer: c.ID, Items: []subscription.ItemParams{{Plan: p.ID}}, Start: &start}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	runs := make([]subscription.Run, 4)
	errs := make([]error, 4)
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each "daemon" has its own service and connection pool.
			other, err := store.Open(ctx, url)
			if err != nil {
				errs[i] = err
				return
			}
			defer other.Close()
			s, _, _ := newService(other, start)
			s.BatchSize = 50
			runs[i], errs[i] = s.BillDue(ctx, start.Add(time.Minute))
		}()
	}
	wg.Wait()
	total := 0
	for i := range runs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		total += runs[i].Invoices
	}
	var count int
	if err := db.NewSelect().Model((*billing.Invoice)(nil)).ColumnExpr("count(DISTINCT number)").Scan(ctx, &count); err != nil {
		t.Fatal(err)
	}
	if total != 1000 || count != 1000 {
		t.Fatalf("runs created %d invoices with %d distinct numbers, want 1000 (per run: %+v)", total, count, runs)
	}
	var maxNum string
	db.NewSelect().Model((*billing.Invoice)(nil)).ColumnExpr("max(number)").Scan(ctx, &maxNum)
	if maxNum != "INV-2027-001000" {
		t.Fatalf("highest number %s, want INV-2027-001000 (gapless)", maxNum)
	}
	_ = inv
}

// TestOneFailingSubscriptionDoesNotHoldUpTheRun: a subscription whose next
// period already has an invoice (written by hand, say) cannot be billed;
// the run bills all the others, reports the one it skipped, and meets it
// again next time.
func TestOneFailingSubscriptionDoesNotHoldUpTheRun(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		start := time.Date(2027, 1, 10, 10, 0, 0, 0, billing.DefaultSettings().Location)
		svc, inv, clk := newService(db, start)
		var subs []*billing.Subscription
		for range 10 {
			subs = append(subs, seed(t, svc, 1980, billing.Month, start))
		}
		bad := subs[4]
		next := *bad.NextBillingAt
		first, _, err := inv.List(ctx, invoice.Filter{Subscription: bad.ID}, store.Page{Limit: 1})
		if err != nil || len(first) != 1 {
			t.Fatal(err)
		}
		blocker := *first[0]
		blocker.ID, blocker.Number, blocker.PeriodStart, blocker.PayToken = billing.NewID(billing.PrefixInvoice), nil, &next, billing.NewToken()
		blocker.Status = billing.InvoiceDraft
		if _, err := db.NewInsert().Model(&blocker).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		clk.Set(next.Add(time.Hour))
		run, err := svc.BillDue(ctx, clk.Now())
		if err == nil || !strings.Contains(err.Error(), bad.ID) {
			t.Fatalf("run error %v, want one naming %s", err, bad.ID)
		}
		if run.Invoices != 9 {
			t.Fatalf("%d invoices, want the 9 others", run.Invoices)
		}
		if _, err := svc.BillDue(ctx, clk.Now()); err == nil || !strings.Contains(err.Error(), bad.ID) {
			t.Fatalf("second run: %v, want %s met again", err, bad.ID)
		}
	})
}
