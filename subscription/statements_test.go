package subscription_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/store"
	"billingd/billing/store/storetest"
	"billingd/subscription"
)

// counter counts the statements a database runs.
type counter struct{ n, writes atomic.Int64 }

func (c *counter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }
func (c *counter) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	c.n.Add(1)
	if q := strings.TrimSpace(strings.ToUpper(e.Query)); !strings.HasPrefix(q, "SELECT") && !strings.HasPrefix(q, "WITH") {
		c.writes.Add(1)
	}
}

// TestBillingRunStatementsPerBatch guards the common path of a billing run
// (active subscriptions in advance, not paused, no pending items): the
// number of statements depends on the number of batches, not of
// subscriptions. Trials, pauses, arrears and pending items must not add
// statements for subscriptions that have none.
func TestBillingRunStatementsPerBatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		start := time.Date(2027, 1, 1, 0, 0, 0, 0, tokyo).UTC()
		c := &billing.Customer{ID: billing.NewID(billing.PrefixCustomer), Name: "顧客", Email: "c@example.com", Language: "ja", CreatedAt: start}
		p := &billing.Plan{ID: billing.NewID(billing.PrefixPlan), Name: "Pro", Amount: 1980, Currency: "jpy", Interval: billing.Month, IntervalCount: 1,
			TaxRate: billing.TaxStandard, TaxBehavior: billing.TaxExclusive, BillingTiming: billing.BillInAdvance, CreatedAt: start}
		db.NewInsert().Model(c).Exec(ctx)
		db.NewInsert().Model(p).Exec(ctx)
		seed := func(n int) {
			var subs []*billing.Subscription
			var items []*billing.SubscriptionItem
			for range n {
				s := &billing.Subscription{ID: billing.NewID(billing.PrefixSubscription), CustomerID: c.ID, Status: billing.SubscriptionActive,
					Interval: billing.Month, IntervalCount: 1, StartDate: start, BillingCycleAnchor: start, DaysUntilDue: 30, NextBillingAt: &start, CreatedAt: start}
				subs = append(subs, s)
				items = append(items, &billing.SubscriptionItem{ID: billing.NewID(billing.PrefixSubItem), SubscriptionID: s.ID, PlanID: p.ID, Quantity: 1})
			}
			if _, err := db.NewInsert().Model(&subs).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := db.NewInsert().Model(&items).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		cnt := new(counter)
		db.AddQueryHook(cnt)
		run := func(at time.Time, want int) (stmts, writes int64) {
			// A new Service each time: each run looks the plan up once
			// (a Service caches plans), whatever its number of batches.
			svc := &subscription.Service{DB: db, Clock: billing.WallClock{}, Settings: billing.DefaultSettings(), BatchSize: 100}
			cnt.n.Store(0)
			cnt.writes.Store(0)
			r, err := svc.BillDue(ctx, at)
			if err != nil || r.Invoices != want {
				t.Fatalf("run: %+v, %v; want %d invoices", r, err, want)
			}
			return cnt.n.Load(), cnt.writes.Load()
		}
		seed(100)
		one, oneW := run(start, 100) // one batch
		seed(200)                    // due at start: the next run bills their January and February
		three, threeW := run(start.AddDate(0, 1, 0), 500)
		// Two batches of the 200 new ones (two invoices each), then one of
		// the first 100 (February).
		perBatch := (three - one) / 2
		if (three-one)%2 != 0 || perBatch > 12 || (threeW-oneW)%2 != 0 {
			t.Fatalf("1 batch: %d statements (%d writes); 3 batches: %d (%d writes): not a constant number per batch", one, oneW, three, threeW)
		}
		t.Logf("%s: %d statements per batch of 100, %d of them writes; %d for a one-batch run", db.Engine, perBatch, (threeW-oneW)/2, one)
	})
}
