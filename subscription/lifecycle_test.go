package subscription_test

import (
	"context"
	"testing"
	"time"

	"billingd/billing"
	"billingd/billing/store"
	"billingd/billing/store/storetest"
	"billingd/invoice"
	"billingd/subscription"
)

var tokyo = billing.DefaultSettings().Location

// fixture is a customer with a Basic (¥3,000) and a Pro (¥6,000) monthly
// plan, 10 % tax on top, and the services on a settable clock.
type fixture struct {
	t          *testing.T
	ctx        context.Context
	db         *store.DB
	svc        *subscription.Service
	inv        *invoice.Service
	clk        *clock
	cus        *billing.Customer
	basic, pro *billing.Plan
}

func newFixture(t *testing.T, db *store.DB, now time.Time, timing billing.BillingTiming) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), db: db}
	f.svc, f.inv, f.clk = newService(db, now)
	var err error
	if f.cus, err = f.svc.CreateCustomer(f.ctx, subscription.CustomerParams{Name: ptr("株式会社山田"), Email: ptr("keiri@example.com"), Phone: ptr("03-1234-5678")}); err != nil {
		t.Fatal(err)
	}
	if f.basic, err = f.svc.CreatePlan(f.ctx, subscription.PlanParams{Name: "Basic", Amount: ptr(int64(3000)), Interval: billing.Month, BillingTiming: timing}); err != nil {
		t.Fatal(err)
	}
	if f.pro, err = f.svc.CreatePlan(f.ctx, subscription.PlanParams{Name: "Pro", Amount: ptr(int64(6000)), Interval: billing.Month, BillingTiming: timing}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) subscribe(p subscription.Params) *billing.Subscription {
	f.t.Helper()
	p.Customer = f.cus.ID
	if p.Items == nil {
		p.Items = []subscription.ItemParams{{Plan: f.basic.ID}}
	}
	sub, err := f.svc.Create(f.ctx, p)
	if err != nil {
		f.t.Fatal(err)
	}
	return sub
}

// at moves the clock and runs billing.
func (f *fixture) at(t time.Time) {
	f.t.Helper()
	f.clk.Set(t)
	if _, err := f.svc.BillDue(f.ctx, t); err != nil {
		f.t.Fatal(err)
	}
}

// invoices returns the subscription's invoices, oldest first.
func (f *fixture) invoices(sub string) []*billing.Invoice {
	f.t.Helper()
	list, _, err := f.inv.List(f.ctx, invoice.Filter{Subscription: sub}, store.Page{Limit: 100})
	if err != nil {
		f.t.Fatal(err)
	}
	for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
		list[i], list[j] = list[j], list[i]
	}
	return list
}

func (f *fixture) balance() int64 {
	f.t.Helper()
	c, err := f.svc.GetCustomer(f.ctx, f.cus.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return c.Balance
}

func (f *fixture) update(id string, p subscription.UpdateParams) *billing.Subscription {
	f.t.Helper()
	sub, err := f.svc.Update(f.ctx, id, p)
	if err != nil {
		f.t.Fatal(err)
	}
	return sub
}

// toPlan replaces the subscription's only item's plan.
func toPlan(sub *billing.Subscription, plan string, behavior subscription.ProrationBehavior) subscription.UpdateParams {
	return subscription.UpdateParams{Items: []subscription.UpdateItemParams{{ID: sub.Items[0].ID, Plan: plan}}, ProrationBehavior: behavior}
}

func amounts(in *billing.Invoice) []int64 {
	var out []int64
	for _, l := range in.Lines {
		out = append(out, l.Amount)
	}
	return out
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// April 2027 has 30 days: a change on April 11 leaves 20 of them.
var (
	apr1  = time.Date(2027, 4, 1, 0, 0, 0, 0, tokyo)
	apr11 = time.Date(2027, 4, 11, 0, 0, 0, 0, tokyo)
	may1  = time.Date(2027, 5, 1, 0, 0, 0, 0, tokyo)
)

func TestChangeItems(t *testing.T) {
	t.Run("UpgradeCreateProrations", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, "")
			sub := f.subscribe(subscription.Params{})
			f.clk.Set(apr11)
			sub = f.update(sub.ID, toPlan(sub, f.pro.ID, ""))
			if sub.Items[0].PlanID != f.pro.ID || len(f.invoices(sub.ID)) != 1 {
				t.Fatalf("after upgrade: items %+v, %d invoices", sub.Items[0], len(f.invoices(sub.ID)))
			}
			f.at(may1)
			invs := f.invoices(sub.ID)
			if len(invs) != 2 {
				t.Fatalf("%d invoices, want 2", len(invs))
			}
			// May's Pro 6,000, then April's credit −2,000 and charge +4,000; tax once: 800.
			may := invs[1]
			if !equal(amounts(may), []int64{6000, -2000, 4000}) || may.Tax != 800 || may.Total != 8800 || !may.Lines[1].Proration || may.Lines[0].Proration {
				t.Fatalf("May invoice: lines %v tax %d total %d", amounts(may), may.Tax, may.Total)
			}
			var pending int
			db.NewSelect().Model((*billing.InvoiceItem)(nil)).ColumnExpr("count(*)").Where("status = ?", billing.ItemPending).Scan(f.ctx, &pending)
			if pending != 0 {
				t.Errorf("%d items still pending", pending)
			}
		})
	})
	t.Run("DowngradeCreditsBalance", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, "")
			sub := f.subscribe(subscription.Params{Items: []subscription.ItemParams{{Plan: f.pro.ID}}})
			f.clk.Set(apr11)
			f.update(sub.ID, toPlan(sub, f.basic.ID, ""))
			// −4,000 + 2,000 = −2,000, −200 tax: a credit of 2,200, no invoice.
			if b := f.balance(); b != -2200 || len(f.invoices(sub.ID)) != 1 {
				t.Fatalf("balance %d, %d invoices", b, len(f.invoices(sub.ID)))
			}
			f.at(may1)
			may := f.invoices(sub.ID)[1]
			if may.Total != 3300 || may.StartingBalance != -2200 || may.AmountDue != 1100 || f.balance() != 0 {
				t.Fatalf("May: total %d starting balance %d due %d; balance %d", may.Total, may.StartingBalance, may.AmountDue, f.balance())
			}
			txns, _, err := f.svc.BalanceTransactions(f.ctx, f.cus.ID, store.Page{})
			if err != nil || len(txns) != 2 || txns[1].Type != "proration_credit" || txns[1].Amount != -2200 || txns[0].Type != "applied_to_invoice" || txns[0].EndingBalance != 0 {
				t.Fatalf("ledger: %+v, %v", txns, err)
			}
		})
	})
	t.Run("UpgradeThenDowngradeNetsPendingItems", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, "")
			sub := f.subscribe(subscription.Params{})
			f.clk.Set(apr11)
			sub = f.update(sub.ID, toPlan(sub, f.pro.ID, "")) // −2,000 + 4,000 pending
			f.clk.Set(time.Date(2027, 4, 21, 0, 0, 0, 0, tokyo))
			sub = f.update(sub.ID, toPlan(sub, f.basic.ID, "")) // −2,000 + 1,000: the four net +1,000
			if b := f.balance(); b != 0 || !sub.HasPendingItems {
				t.Fatalf("after the downgrade: balance %d, pending items %v; want nothing credited while the upgrade is owed", b, sub.HasPendingItems)
			}
			// Canceled now without flags: all pending prorations are dropped
			// together, and no credit is left behind.
			if _, err := f.svc.CancelWith(f.ctx, sub.ID, subscription.CancelParams{}); err != nil {
				t.Fatal(err)
			}
			if b := f.balance(); b != 0 {
				t.Fatalf("balance %d after canceling, want 0", b)
			}
		})
	})
	t.Run("AlwaysInvoiceQuantity", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			jan1, jan11 := time.Date(2027, 1, 1, 0, 0, 0, 0, tokyo), time.Date(2027, 1, 11, 0, 0, 0, 0, tokyo)
			f := newFixture(t, db, jan1, "")
			seat, _ := f.svc.CreatePlan(f.ctx, subscription.PlanParams{Name: "Seat", Amount: ptr(int64(1980)), Interval: billing.Month})
			sub := f.subscribe(subscription.Params{Items: []subscription.ItemParams{{Plan: seat.ID, Quantity: ptr(int64(2))}}})
			f.clk.Set(jan11)
			sub = f.update(sub.ID, subscription.UpdateParams{Items: []subscription.UpdateItemParams{{ID: sub.Items[0].ID, Quantity: ptr(int64(5))}},
				ProrationBehavior: subscription.AlwaysInvoice})
			invs := f.invoices(sub.ID)
			// 21 of January's 31 days: −2,683 and +6,706, tax 402.
			if len(invs) != 2 || !equal(amounts(invs[1]), []int64{-2683, 6706}) || invs[1].Total != 4425 || invs[1].BillingReason != "subscription_update" ||
				invs[1].Status != billing.InvoiceOpen || invs[1].PeriodStart != nil {
				t.Fatalf("invoices: %d; update invoice %v total %d", len(invs), amounts(invs[len(invs)-1]), invs[len(invs)-1].Total)
			}
			f.at(time.Date(2027, 2, 1, 0, 0, 0, 0, tokyo))
			if feb := f.invoices(sub.ID)[2]; feb.Subtotal != 9900 {
				t.Fatalf("February subtotal %d, want 5 × 1,980", feb.Subtotal)
			}
		})
	})
	t.Run("None", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, "")
			sub := f.subscribe(subscription.Params{})
			f.clk.Set(apr11)
			f.update(sub.ID, toPlan(sub, f.pro.ID, subscription.NoProration))
			f.at(may1)
			if invs := f.invoices(sub.ID); len(invs) != 2 || !equal(amounts(invs[1]), []int64{6000}) || f.balance() != 0 {
				t.Fatalf("invoices %d, May %v", len(invs), amounts(invs[len(invs)-1]))
			}
		})
	})
	t.Run("AddAndDeleteItems", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, "")
			sub := f.subscribe(subscription.Params{})
			f.clk.Set(apr11)
			sub = f.update(sub.ID, subscription.UpdateParams{Items: []subscription.UpdateItemParams{{ID: sub.Items[0].ID, Deleted: true}, {Plan: f.pro.ID, Quantity: ptr(int64(2))}},
				ProrationBehavior: subscription.AlwaysInvoice})
			if len(sub.Items) != 1 || sub.Items[0].PlanID != f.pro.ID || sub.Items[0].Quantity != 2 {
				t.Fatalf("items %+v", sub.Items)
			}
			got, _ := f.svc.Get(f.ctx, sub.ID)
			if len(got.Items) != 1 || got.Items[0].PlanID != f.pro.ID {
				t.Fatalf("stored items %+v", got.Items)
			}
			// −2,000 + 12,000 × 20/30 = 8,000: 6,000 + 600 tax.
			if in := f.invoices(sub.ID)[1]; !equal(amounts(in), []int64{-2000, 8000}) || in.Total != 6600 {
				t.Fatalf("update invoice %v total %d", amounts(in), in.Total)
			}
		})
	})
	t.Run("ErrInvalidChangesNothing", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, "")
			sub := f.subscribe(subscription.Params{})
			weekly, _ := f.svc.CreatePlan(f.ctx, subscription.PlanParams{Name: "Weekly", Amount: ptr(int64(500)), Interval: billing.Week})
			f.clk.Set(apr11)
			for _, tt := range []struct {
				name  string
				p     subscription.UpdateParams
				param string
			}{
				{"Behavior", subscription.UpdateParams{ProrationBehavior: "sometimes"}, "proration_behavior"},
				{"NoSuchPlan", toPlan(sub, "plan_missing", ""), "items[0].plan"},
				{"OtherInterval", toPlan(sub, weekly.ID, ""), "items[0].plan"},
				{"NoSuchItem", subscription.UpdateParams{Items: []subscription.UpdateItemParams{{ID: "si_missing", Quantity: ptr(int64(2))}}}, "items[0].id"},
				{"Quantity", subscription.UpdateParams{Items: []subscription.UpdateItemParams{{ID: sub.Items[0].ID, Quantity: ptr(int64(0))}}}, "items[0].quantity"},
				{"DeleteAll", subscription.UpdateParams{Items: []subscription.UpdateItemParams{{ID: sub.Items[0].ID, Deleted: true}}}, "items"},
				{"Duplicate", subscription.UpdateParams{Items: []subscription.UpdateItemParams{{Plan: f.basic.ID}}}, "items"},
				{"TrialWhileActive", subscription.UpdateParams{TrialEnd: subscription.TrialEndAt(may1)}, "trial_end"},
				{"PauseBehavior", subscription.UpdateParams{PauseCollection: subscription.Pause("sleep", nil)}, "pause_collection.behavior"},
				{"PausePast", subscription.UpdateParams{PauseCollection: subscription.Pause(billing.PauseVoid, &apr1)}, "pause_collection.resumes_at"},
			} {
				t.Run(tt.name, func(t *testing.T) {
					_, err := f.svc.Update(f.ctx, sub.ID, tt.p)
					if billing.ErrorCode(err) != billing.EINVALID || billing.ErrorParam(err) != tt.param {
						t.Fatalf("err %v, want invalid %s", err, tt.param)
					}
				})
			}
			got, _ := f.svc.Get(f.ctx, sub.ID)
			var items int
			db.NewSelect().Model((*billing.InvoiceItem)(nil)).ColumnExpr("count(*)").Scan(f.ctx, &items)
			if len(got.Items) != 1 || got.Items[0].PlanID != f.basic.ID || got.Items[0].Quantity != 1 || items != 0 || got.PauseBehavior != "" {
				t.Fatalf("after refused updates: %+v, %d invoice items", got.Items[0], items)
			}
		})
	})
}

func TestTrials(t *testing.T) {
	t.Run("FirstInvoiceAtTrialEnd", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, "")
			sub := f.subscribe(subscription.Params{TrialPeriodDays: ptr(14)})
			apr15 := apr1.AddDate(0, 0, 14)
			if sub.Status != billing.SubscriptionTrialing || !sub.TrialEnd.Equal(apr15) || !sub.NextBillingAt.Equal(apr15) || len(f.invoices(sub.ID)) != 0 {
				t.Fatalf("trialing: %s trial_end %v next %v", sub.Status, sub.TrialEnd, sub.NextBillingAt)
			}
			f.at(apr15.Add(-time.Second))
			if len(f.invoices(sub.ID)) != 0 {
				t.Fatal("invoice during the trial")
			}
			f.at(apr15)
			sub, _ = f.svc.Get(f.ctx, sub.ID)
			invs := f.invoices(sub.ID)
			if sub.Status != billing.SubscriptionActive || len(invs) != 1 || invs[0].Total != 3300 || !invs[0].PeriodStart.Equal(apr15) ||
				!invs[0].PeriodEnd.Equal(apr15.AddDate(0, 1, 0)) || invs[0].BillingReason != "subscription_cycle" {
				t.Fatalf("after the trial: %s, %d invoices", sub.Status, len(invs))
			}
		})
	})
	t.Run("CancelDuringTrial", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, "")
			sub := f.subscribe(subscription.Params{TrialEnd: subscription.TrialEndAt(apr11)})
			f.clk.Set(apr1.AddDate(0, 0, 3))
			sub, err := f.svc.CancelWith(f.ctx, sub.ID, subscription.CancelParams{Prorate: ptr(true), InvoiceNow: ptr(true)})
			if err != nil || sub.Status != billing.SubscriptionCanceled {
				t.Fatal(sub, err)
			}
			f.at(may1)
			if n := len(f.invoices(sub.ID)); n != 0 || f.balance() != 0 {
				t.Fatalf("%d invoices, balance %d after a canceled trial", n, f.balance())
			}
		})
	})
	t.Run("CancelAtTrialEnd", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, "")
			sub := f.subscribe(subscription.Params{TrialEnd: subscription.TrialEndAt(apr11)})
			f.update(sub.ID, subscription.UpdateParams{CancelAtPeriodEnd: ptr(true)})
			f.at(may1)
			sub, _ = f.svc.Get(f.ctx, sub.ID)
			if sub.Status != billing.SubscriptionCanceled || !sub.EndedAt.Equal(apr11) || len(f.invoices(sub.ID)) != 0 {
				t.Fatalf("%s ended %v, %d invoices", sub.Status, sub.EndedAt, len(f.invoices(sub.ID)))
			}
		})
	})
	t.Run("EndNowWithUpgrade", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, "")
			sub := f.subscribe(subscription.Params{TrialPeriodDays: ptr(30)})
			f.clk.Set(apr11)
			// Items changed during a trial are not prorated; ending the trial
			// now bills the first period with the new items and anchors on now.
			upd := toPlan(sub, f.pro.ID, "")
			upd.TrialEnd = subscription.TrialEndNow()
			sub = f.update(sub.ID, upd)
			invs := f.invoices(sub.ID)
			if sub.Status != billing.SubscriptionActive || !sub.BillingCycleAnchor.Equal(apr11) || len(invs) != 1 || invs[0].Total != 6600 ||
				!invs[0].PeriodEnd.Equal(apr11.AddDate(0, 1, 0)) {
				t.Fatalf("%s anchor %v; %d invoices", sub.Status, sub.BillingCycleAnchor, len(invs))
			}
		})
	})
	t.Run("ZeroInvoiceSetting", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, "")
			f.svc.Settings.TrialInvoice = true
			sub := f.subscribe(subscription.Params{TrialPeriodDays: ptr(10)})
			invs := f.invoices(sub.ID)
			if len(invs) != 1 || invs[0].Total != 0 || invs[0].Status != billing.InvoicePaid || invs[0].Number == nil || !invs[0].PeriodEnd.Equal(apr11) {
				t.Fatalf("trial invoice: %+v", invs)
			}
			f.at(apr11)
			if invs := f.invoices(sub.ID); len(invs) != 2 || invs[1].Total != 3300 {
				t.Fatalf("%d invoices after the trial", len(invs))
			}
		})
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, "")
			for _, tt := range []struct {
				name  string
				p     subscription.Params
				param string
			}{
				{"Both", subscription.Params{TrialPeriodDays: ptr(3), TrialEnd: subscription.TrialEndAt(may1)}, "trial_end"},
				{"Days", subscription.Params{TrialPeriodDays: ptr(1000)}, "trial_period_days"},
				{"Past", subscription.Params{TrialEnd: subscription.TrialEndAt(apr1.Add(-time.Hour))}, "trial_end"},
				{"AnchorBeforeTrialEnd", subscription.Params{TrialEnd: subscription.TrialEndAt(apr11), BillingCycleAnchor: &apr1}, "billing_cycle_anchor"},
			} {
				t.Run(tt.name, func(t *testing.T) {
					tt.p.Customer, tt.p.Items = f.cus.ID, []subscription.ItemParams{{Plan: f.basic.ID}}
					if _, err := f.svc.Create(f.ctx, tt.p); billing.ErrorParam(err) != tt.param {
						t.Fatalf("err %v, want invalid %s", err, tt.param)
					}
				})
			}
		})
	})
}

func TestCancel(t *testing.T) {
	t.Run("NowWithProratedCredit", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, "")
			sub := f.subscribe(subscription.Params{})
			f.clk.Set(apr11)
			sub, err := f.svc.CancelWith(f.ctx, sub.ID, subscription.CancelParams{Prorate: ptr(true)})
			if err != nil || sub.Status != billing.SubscriptionCanceled || !sub.EndedAt.Equal(apr11) {
				t.Fatal(sub, err)
			}
			// 20 unused days of 3,000: 2,000 + 200 tax back on the balance.
			if b := f.balance(); b != -2200 || len(f.invoices(sub.ID)) != 1 {
				t.Fatalf("balance %d, %d invoices", b, len(f.invoices(sub.ID)))
			}
		})
	})
	t.Run("NowWithoutProrateDropsPending", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, "")
			sub := f.subscribe(subscription.Params{})
			f.clk.Set(apr11)
			f.update(sub.ID, toPlan(sub, f.pro.ID, ""))
			if _, err := f.svc.Cancel(f.ctx, sub.ID, false); err != nil {
				t.Fatal(err)
			}
			var deleted int
			db.NewSelect().Model((*billing.InvoiceItem)(nil)).ColumnExpr("count(*)").Where("status = ?", billing.ItemDeleted).Scan(f.ctx, &deleted)
			if deleted != 2 || f.balance() != 0 || len(f.invoices(sub.ID)) != 1 {
				t.Fatalf("%d items deleted, balance %d", deleted, f.balance())
			}
		})
	})
	t.Run("NowInvoiceNowSettlesPending", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, "")
			sub := f.subscribe(subscription.Params{})
			f.clk.Set(apr11)
			f.update(sub.ID, toPlan(sub, f.pro.ID, ""))
			f.clk.Set(apr11.AddDate(0, 0, 10)) // 10 days left
			if _, err := f.svc.CancelWith(f.ctx, sub.ID, subscription.CancelParams{Prorate: ptr(true), InvoiceNow: ptr(true)}); err != nil {
				t.Fatal(err)
			}
			// Pending −2,000 + 4,000, then Pro's 10 unused days −2,000: 0 left.
			// Without the credit: a final invoice of 2,200.
			invs := f.invoices(sub.ID)
			if len(invs) != 1 || f.balance() != 0 {
				t.Fatalf("%d invoices, balance %d", len(invs), f.balance())
			}
		})
	})
	t.Run("AtPeriodEndThenReactivate", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, "")
			sub := f.subscribe(subscription.Params{})
			f.clk.Set(apr11)
			sub, err := f.svc.Cancel(f.ctx, sub.ID, true)
			if err != nil || !sub.CancelAtPeriodEnd || sub.CanceledAt == nil {
				t.Fatal(sub, err)
			}
			sub = f.update(sub.ID, subscription.UpdateParams{CancelAtPeriodEnd: ptr(false)})
			if sub.CancelAtPeriodEnd || sub.CanceledAt != nil || sub.Status != billing.SubscriptionActive {
				t.Fatalf("reactivated: %+v", sub)
			}
			f.at(may1)
			if sub, _ = f.svc.Get(f.ctx, sub.ID); sub.Status != billing.SubscriptionActive || len(f.invoices(sub.ID)) != 2 {
				t.Fatalf("%s with %d invoices", sub.Status, len(f.invoices(sub.ID)))
			}
		})
	})
	t.Run("AtPeriodEndCollectsPending", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, "")
			sub := f.subscribe(subscription.Params{})
			f.clk.Set(apr11)
			f.update(sub.ID, toPlan(sub, f.pro.ID, ""))
			f.update(sub.ID, subscription.UpdateParams{CancelAtPeriodEnd: ptr(true)})
			f.at(may1)
			sub, _ = f.svc.Get(f.ctx, sub.ID)
			invs := f.invoices(sub.ID)
			if sub.Status != billing.SubscriptionCanceled || len(invs) != 2 || !equal(amounts(invs[1]), []int64{-2000, 4000}) || invs[1].Total != 2200 {
				t.Fatalf("%s, %d invoices", sub.Status, len(invs))
			}
		})
	})
}

func TestPause(t *testing.T) {
	for _, tt := range []struct {
		behavior string
		status   billing.InvoiceStatus
		numbered bool
	}{
		{billing.PauseKeepAsDraft, billing.InvoiceDraft, false},
		{billing.PauseMarkUncollectible, billing.InvoiceUncollectible, true},
		{billing.PauseVoid, billing.InvoiceVoid, true},
	} {
		t.Run(tt.behavior, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				f := newFixture(t, db, apr1, "")
				sub := f.subscribe(subscription.Params{})
				f.clk.Set(apr11)
				jun15 := time.Date(2027, 6, 15, 0, 0, 0, 0, tokyo)
				sub = f.update(sub.ID, subscription.UpdateParams{PauseCollection: subscription.Pause(tt.behavior, &jun15)})
				if sub.PauseBehavior != tt.behavior {
					t.Fatalf("pause %q", sub.PauseBehavior)
				}
				f.at(time.Date(2027, 7, 1, 0, 0, 0, 0, tokyo))
				invs := f.invoices(sub.ID)
				if len(invs) != 4 {
					t.Fatalf("%d invoices, want April, May, June, July", len(invs))
				}
				for _, in := range invs[1:3] {
					if in.Status != tt.status || (in.Number != nil) != tt.numbered || in.CollectionStatus != billing.CollectionNone || in.Total != 3300 {
						t.Errorf("paused invoice %s: %s number %v collection %s", in.PeriodStart, in.Status, in.Number, in.CollectionStatus)
					}
				}
				if invs[3].Status != billing.InvoiceOpen || invs[3].CollectionStatus != billing.CollectionPending {
					t.Errorf("July after resumes_at: %s %s", invs[3].Status, invs[3].CollectionStatus)
				}
				if sub, _ = f.svc.Get(f.ctx, sub.ID); sub.PauseBehavior != "" || sub.PauseResumesAt != nil {
					t.Errorf("pause not lifted: %q %v", sub.PauseBehavior, sub.PauseResumesAt)
				}
			})
		})
	}
	t.Run("ResumeByUpdate", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, "")
			f.subscribe(subscription.Params{})
			sub := f.subscribe(subscription.Params{})
			f.clk.Set(apr11)
			f.update(sub.ID, subscription.UpdateParams{PauseCollection: subscription.Pause(billing.PauseVoid, nil)})
			f.at(may1)
			f.update(sub.ID, subscription.UpdateParams{PauseCollection: subscription.Pause("", nil)})
			f.at(time.Date(2027, 6, 1, 0, 0, 0, 0, tokyo))
			invs := f.invoices(sub.ID)
			if len(invs) != 3 || invs[1].Status != billing.InvoiceVoid || invs[2].Status != billing.InvoiceOpen {
				t.Fatalf("%d invoices", len(invs))
			}
		})
	})
}

func TestBillingInArrears(t *testing.T) {
	t.Run("PeriodInvoicedAtItsEnd", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, billing.BillInArrears)
			sub := f.subscribe(subscription.Params{})
			if len(f.invoices(sub.ID)) != 0 || !sub.NextBillingAt.Equal(may1) || !sub.CurrentPeriodStart.Equal(apr1) {
				t.Fatalf("created: next %v, %d invoices", sub.NextBillingAt, len(f.invoices(sub.ID)))
			}
			f.at(may1)
			invs := f.invoices(sub.ID)
			if len(invs) != 1 || !invs[0].PeriodStart.Equal(apr1) || !invs[0].PeriodEnd.Equal(may1) || invs[0].Total != 3300 || invs[0].Status != billing.InvoiceOpen {
				t.Fatalf("%d invoices", len(invs))
			}
			f.at(time.Date(2027, 7, 1, 0, 0, 0, 0, tokyo))
			if invs = f.invoices(sub.ID); len(invs) != 3 || !invs[2].PeriodStart.Equal(time.Date(2027, 6, 1, 0, 0, 0, 0, tokyo)) {
				t.Fatalf("%d invoices by July", len(invs))
			}
		})
	})
	t.Run("UpgradeMidPeriod", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, billing.BillInArrears)
			sub := f.subscribe(subscription.Params{})
			f.clk.Set(apr11)
			f.update(sub.ID, toPlan(sub, f.pro.ID, ""))
			f.at(may1)
			// Pro for April, then Basic's 10 used days +1,000 and Pro's −2,000:
			// 1,000 + 4,000 for 10 + 20 days; tax 500.
			in := f.invoices(sub.ID)[0]
			if !equal(amounts(in), []int64{6000, 1000, -2000}) || in.Total != 5500 || f.balance() != 0 {
				t.Fatalf("April invoice %v total %d", amounts(in), in.Total)
			}
		})
	})
	t.Run("CancelNowInvoicesUsage", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, billing.BillInArrears)
			sub := f.subscribe(subscription.Params{})
			f.clk.Set(apr11)
			if _, err := f.svc.Cancel(f.ctx, sub.ID, false); err != nil {
				t.Fatal(err)
			}
			invs := f.invoices(sub.ID)
			if len(invs) != 1 || !equal(amounts(invs[0]), []int64{1000}) || invs[0].Total != 1100 {
				t.Fatalf("%d invoices", len(invs))
			}
		})
	})
	t.Run("CancelAtPeriodEndBillsLastPeriod", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, billing.BillInArrears)
			sub := f.subscribe(subscription.Params{})
			f.clk.Set(apr11)
			f.svc.Cancel(f.ctx, sub.ID, true)
			f.at(time.Date(2027, 7, 1, 0, 0, 0, 0, tokyo))
			sub, _ = f.svc.Get(f.ctx, sub.ID)
			if invs := f.invoices(sub.ID); len(invs) != 1 || invs[0].Total != 3300 || sub.Status != billing.SubscriptionCanceled || !sub.EndedAt.Equal(may1) {
				t.Fatalf("%d invoices, %s", len(invs), sub.Status)
			}
		})
	})
	t.Run("MixedTimingRefused", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			f := newFixture(t, db, apr1, billing.BillInArrears)
			adv, _ := f.svc.CreatePlan(f.ctx, subscription.PlanParams{Name: "Adv", Amount: ptr(int64(100)), Interval: billing.Month})
			_, err := f.svc.Create(f.ctx, subscription.Params{Customer: f.cus.ID, Items: []subscription.ItemParams{{Plan: f.basic.ID}, {Plan: adv.ID}}})
			if billing.ErrorParam(err) != "items[1].plan" {
				t.Fatalf("err %v", err)
			}
			if _, err := f.svc.CreatePlan(f.ctx, subscription.PlanParams{Name: "X", Amount: ptr(int64(1)), Interval: billing.Month, BillingTiming: "later"}); billing.ErrorParam(err) != "billing_timing" {
				t.Fatalf("err %v", err)
			}
		})
	})
}
