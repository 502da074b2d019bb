package subscription_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/store"
	"billingd/billing/store/storetest"
	"billingd/invoice"
	"billingd/subscription"
)

// family is a set of plans that can share a subscription.
type family struct {
	name  string
	plans []*billing.Plan
}

// TestPropertySimulatedYear runs a year of random subscription life on the
// settable clock, in steps of one to three days: 1,000 subscriptions of 200
// customers created over the year (some with trials, some billed in
// arrears, weekly, yearly or tax-inclusive, with their own due days and
// dunning overrides: reissues, unpaid, uncollectible, canceled), random
// item changes with every proration behavior, pauses and resumes,
// cancellations now or at period end and reactivations, drafts finalized,
// invoices voided or written off, and credit notes with each outcome on
// open, paid and uncollectible invoices.
//
// Invoices are collected by the real collection path: the Collector with
// the Opn client, against the Opn emulator served over HTTP, and billingd's
// Opn webhook endpoint (see opnWorld). Customers pay live vouchers at the
// emulator's "store" (each customer at their own pace: some never pay),
// now and then an old slip (one replaced after a credit note, or of a
// voided invoice: Opn cannot cancel it) or, late, one that had just
// expired; unpaid vouchers expire at their deadline and the collector
// reissues them and, after the last, follows the dunning policy. One
// webhook in ten about a live voucher (its payment or its expiry) is lost
// for good, and the collector's reconciliation must find the charge.
// Invoices above the Konbini maximum are collected in parts.
//
// After every step it checks, for every customer, that
//
//	invoiced = paid + credited + written off + open amount due − balance applied
//
// where, over the customer's finalized invoices,
//
//   - invoiced is the sum of totals (tax included);
//   - paid is what Konbini payments settled: per invoice its amount paid,
//     at most its amount due (the excess of an overpayment goes to the
//     balance);
//   - credited is what credit notes took off amounts due
//     (pre_payment_credit_notes_amount: outcome reduce_amount_due); credit
//     notes to the balance or refunded out of band leave the invoice as it
//     was and reach the identity through the balance;
//   - written off is what void and uncollectible invoices leave unpaid
//     (amount due − amount paid);
//   - open amount due is the amount remaining of open invoices;
//   - balance applied is the net the balance took on: the starting balances
//     applied at finalization (+ owed, − credit used) less the amounts
//     carried to the balance (below the Konbini minimum).
//
// Each term is also checked against its other record: per invoice, its
// credit notes add up to its pre- and post-payment credit amounts, never
// more than its total, an open invoice owes amount due − amount paid, a paid
// one is settled by payment and carry-over; per customer, the balance is the
// sum of its ledger, whose rows match by type: applied_to_invoice the
// starting balances, carry_over the amounts carried, credit_note the credit
// notes to the balance, excess_payment what the successful vouchers brought
// beyond "paid". Every charge the emulator took a payment for is recorded as
// a successful voucher of the same amount, with Opn's fee (once its webhook
// arrived, or, if it was lost, two hours after the voucher's deadline), and
// no other. After each collector run (see checkCollection), the live
// vouchers of an invoice being collected never ask more than it owes, one
// with nothing left to collect has none, nor has an ended invoice, and no
// collection needs action.
//
// At the end, every invoice's tax is computed once per rate from its lines,
// no invoice is negative, each subscription's periods were billed once each
// with no gap or overlap, and the year saw credit notes of every outcome on
// open and paid invoices and every kind of payment.
//
// BILLING_PROPERTY_SEED picks the seed.
func TestPropertySimulatedYear(t *testing.T) {
	if testing.Short() {
		t.Skip("simulated year skipped in -short mode")
	}
	seed := uint64(20271)
	if s := os.Getenv("BILLING_PROPERTY_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		simulateYear(t, db, seed)
	})
}

// paidCharge is a payment the emulator took.
type paidCharge struct {
	amount    int64
	expiresAt time.Time // the voucher's deadline
	lost      bool      // its webhook never arrives
}

func simulateYear(t *testing.T, db *store.DB, seed uint64) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 7))
	start := time.Date(2027, 1, 1, 9, 0, 0, 0, tokyo)
	svc, inv, clk := newService(db, start)
	svc.BatchSize = 100
	w := newOpnWorld(t, db, clk, svc.Settings)
	started := time.Now()

	mk := func(name string, amount int64, iv billing.Interval, rate billing.TaxRate, beh billing.TaxBehavior, timing billing.BillingTiming) *billing.Plan {
		p, err := svc.CreatePlan(ctx, subscription.PlanParams{Name: name, Amount: ptr(amount), Interval: iv, TaxRate: rate, TaxBehavior: beh, BillingTiming: timing})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ex, in := billing.TaxExclusive, billing.TaxInclusive
	families := []family{
		{"monthly", []*billing.Plan{mk("Basic", 3000, billing.Month, billing.TaxStandard, ex, ""), mk("Pro", 6000, billing.Month, billing.TaxStandard, ex, ""),
			mk("Seat", 1980, billing.Month, billing.TaxStandard, ex, ""), mk("お弁当", 1080, billing.Month, billing.TaxReduced, ex, "")}},
		{"arrears", []*billing.Plan{mk("保守", 10000, billing.Month, billing.TaxStandard, ex, billing.BillInArrears),
			mk("保守プラス", 20000, billing.Month, billing.TaxStandard, ex, billing.BillInArrears), mk("作業", 777, billing.Month, billing.TaxStandard, ex, billing.BillInArrears)}},
		{"weekly", []*billing.Plan{mk("Weekly", 500, billing.Week, billing.TaxStandard, ex, ""), mk("Weekly+", 900, billing.Week, billing.TaxStandard, ex, "")}},
		{"yearly", []*billing.Plan{mk("Annual", 30000, billing.Year, billing.TaxStandard, ex, ""), mk("Annual+", 60000, billing.Year, billing.TaxStandard, ex, "")}},
		{"inclusive", []*billing.Plan{mk("税込", 1100, billing.Month, billing.TaxStandard, in, ""), mk("税込プラス", 3300, billing.Month, billing.TaxStandard, in, "")}},
	}
	// Customers as Opn takes them: a kana name (written with an
	// ideographic space or in half-width katakana, which the client
	// normalizes) or none (the kanji name is sent), a phone number with
	// hyphens, spaces or full-width digits. Each pays at their own pace:
	// the chance per step that they pay a live voucher (per mille).
	kanaFamily := []string{"ヤマダ", "スズキ", "サトウ", "タナカ", "ワタナベ", "イトウ", "ナカムラ", "コバヤシ"}
	kanaGiven := []string{"タロウ", "ハナコ", "ケンジ", "ユイ", "ショウ"}
	var customers []string
	payRate := map[string]int{}
	for i := range 200 {
		kana := kanaFamily[i%len(kanaFamily)] + "　" + kanaGiven[i%len(kanaGiven)]
		switch i % 10 {
		case 3:
			kana = "ﾔﾏﾀﾞ ﾀﾛｳ"
		case 7:
			kana = ""
		}
		phone := fmt.Sprintf("090-%04d-%04d", i, 5000+i)
		switch i % 3 {
		case 1:
			phone = "０３－１２３４－５６７８"
		case 2:
			phone = fmt.Sprintf("06 %04d %04d", 1000+i, 2000+i)
		}
		c, err := svc.CreateCustomer(ctx, subscription.CustomerParams{Name: ptr(fmt.Sprintf("顧客%d", i)), Email: ptr(fmt.Sprintf("c%d@example.com", i)),
			KanaName: ptr(kana), Phone: ptr(phone)})
		if err != nil {
			t.Fatal(err)
		}
		customers = append(customers, c.ID)
		switch x := r.IntN(10); {
		case x < 6:
			payRate[c.ID] = 400
		case x < 9:
			payRate[c.ID] = 150
		default:
			payRate[c.ID] = 0
		}
	}
	type simSub struct {
		id  string
		fam family
	}
	var subs []*simSub

	// ok accepts the refusals a random operation may meet (a canceled
	// subscription, a period that has none to end, a credit note for more
	// than is left) and fails on the rest.
	ok := func(what string, err error) {
		t.Helper()
		if code := billing.ErrorCode(err); err != nil && code != billing.EINVALID && code != billing.ECONFLICT {
			t.Fatalf("%s: %v", what, err)
		}
	}
	randomItems := func(f family) []subscription.ItemParams {
		perm := r.Perm(len(f.plans))[:1+r.IntN(min(2, len(f.plans)))]
		var items []subscription.ItemParams
		for _, i := range perm {
			items = append(items, subscription.ItemParams{Plan: f.plans[i].ID, Quantity: ptr(int64(1 + r.IntN(3)))})
		}
		return items
	}
	dunnings := []*billing.DunningPolicy{
		{VoucherReissues: ptr(0), SubscriptionOutcome: billing.DunningSubscriptionUnpaid},
		{VoucherReissues: ptr(1), VoucherReissueDays: ptr(3), InvoiceOutcome: billing.DunningInvoiceUncollectible},
		{VoucherReissues: ptr(1), InvoiceOutcome: billing.DunningInvoiceUncollectible, SubscriptionOutcome: billing.DunningSubscriptionCanceled},
		{ReminderDays: []int{7, 3, 1}, VoucherReissueDays: ptr(14)},
	}
	// Families by weight out of 50: weekly plans (52 invoices a year) are
	// rare, yearly ones (one invoice, in parts above the Konbini maximum)
	// common, which keeps the year's invoices (and the time they take to
	// collect) in bounds with 1,000 subscriptions.
	weights := []int{15, 8, 1, 18, 8}
	create := func(now time.Time) {
		x := r.IntN(50)
		i := 0
		for x >= weights[i] {
			x -= weights[i]
			i++
		}
		f := families[i]
		p := subscription.Params{Customer: customers[r.IntN(len(customers))], Items: randomItems(f)}
		switch r.IntN(5) {
		case 0:
			p.TrialPeriodDays = ptr(7 + r.IntN(30))
		case 1:
			if f.name == "monthly" || f.name == "arrears" {
				// 月末締め style: periods on the first of the month.
				y, m, _ := now.In(tokyo).Date()
				a := time.Date(y, m+1, 1, 0, 0, 0, 0, tokyo)
				p.BillingCycleAnchor = &a
			}
		}
		if x := r.IntN(2 * len(dunnings)); x < len(dunnings) {
			p.Dunning = dunnings[x]
		}
		p.DaysUntilDue = ptr([]int{7, 14, 14, 30, 30}[r.IntN(5)])
		sub, err := svc.Create(ctx, p)
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		subs = append(subs, &simSub{sub.ID, f})
	}
	behaviors := []subscription.ProrationBehavior{"", subscription.AlwaysInvoice, subscription.NoProration}
	change := func(s *simSub) {
		cur, err := svc.Get(ctx, s.id)
		if err != nil {
			t.Fatal(err)
		}
		if cur.Status == billing.SubscriptionCanceled {
			return
		}
		var ch []subscription.UpdateItemParams
		it := cur.Items[r.IntN(len(cur.Items))]
		switch r.IntN(4) {
		case 0: // quantity
			ch = append(ch, subscription.UpdateItemParams{ID: it.ID, Quantity: ptr(int64(1 + r.IntN(5)))})
		case 1: // plan
			ch = append(ch, subscription.UpdateItemParams{ID: it.ID, Plan: s.fam.plans[r.IntN(len(s.fam.plans))].ID})
		case 2: // add
			ch = append(ch, subscription.UpdateItemParams{Plan: s.fam.plans[r.IntN(len(s.fam.plans))].ID})
		default: // delete
			ch = append(ch, subscription.UpdateItemParams{ID: it.ID, Deleted: true})
		}
		_, err = svc.Update(ctx, s.id, subscription.UpdateParams{Items: ch, ProrationBehavior: behaviors[r.IntN(len(behaviors))]})
		ok("change", err)
	}
	pauses := []string{billing.PauseKeepAsDraft, billing.PauseMarkUncollectible, billing.PauseVoid}
	operate := func(now time.Time) {
		s := subs[r.IntN(len(subs))]
		var err error
		switch op := r.IntN(20); {
		case op < 8:
			change(s)
		case op < 10:
			var until *time.Time
			if r.IntN(2) == 0 {
				u := now.Add(time.Duration(1+r.IntN(60*24)) * time.Hour)
				until = &u
			}
			_, err = svc.Update(ctx, s.id, subscription.UpdateParams{PauseCollection: subscription.Pause(pauses[r.IntN(3)], until)})
		case op < 12:
			_, err = svc.Update(ctx, s.id, subscription.UpdateParams{PauseCollection: subscription.Pause("", nil)})
		case op < 14:
			_, err = svc.Cancel(ctx, s.id, true)
		case op < 15:
			_, err = svc.Update(ctx, s.id, subscription.UpdateParams{CancelAtPeriodEnd: ptr(false)})
		case op < 17:
			_, err = svc.CancelWith(ctx, s.id, subscription.CancelParams{Prorate: ptr(r.IntN(2) == 0), InvoiceNow: ptr(r.IntN(2) == 0)})
		case op < 18:
			_, err = svc.Update(ctx, s.id, subscription.UpdateParams{TrialEnd: subscription.TrialEndNow()})
		default:
			_, err = svc.Update(ctx, s.id, subscription.UpdateParams{TrialEnd: subscription.TrialEndAt(now.Add(time.Duration(1+r.IntN(240)) * time.Hour))})
		}
		ok("operation", err)
	}

	// creditNote issues a random credit note against a finalized invoice:
	// by amount (tax included) or by lines (a quantity, an amount or all
	// that is left of each), with any outcome, sometimes dated back.
	reasons := []billing.CreditNoteReason{billing.ReasonDuplicate, billing.ReasonFraudulent, billing.ReasonOrderChange, billing.ReasonProductUnsatisfactory}
	credits := map[string]int{} // outcome/invoice status → credit notes issued
	creditNote := func(now time.Time, id string) {
		in, err := inv.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		left := in.Total - in.PrePaymentCreditNotes - in.PostPaymentCreditNotes
		if left <= 0 {
			return
		}
		p := invoice.CreditNoteParams{Invoice: id, Reason: reasons[r.IntN(len(reasons))]}
		owing := in.Status != billing.InvoicePaid && in.AmountRemaining > 0
		switch x := r.IntN(100); {
		case x < 50 && (owing || x < 10): // a paid invoice's amount due cannot be reduced
			p.Outcome = billing.OutcomeReduceAmountDue
		case x < 50:
			p.Outcome = billing.OutcomeCustomerBalance
		case x < 75:
			p.Outcome = billing.OutcomeCustomerBalance
		case x < 95:
			p.Outcome = billing.OutcomeOutOfBand
		} // else the default: reduce_amount_due if something is owed, else customer_balance
		limit := left
		if owing && (p.Outcome == billing.OutcomeReduceAmountDue || p.Outcome == "") {
			limit = min(limit, in.AmountRemaining)
		}
		if len(in.TaxBreakdown) == 1 && r.IntN(2) == 0 {
			p.Amount = ptr(1 + r.Int64N(limit))
		} else {
			for _, i := range r.Perm(len(in.Lines)) {
				l := in.Lines[i]
				if l.Amount <= 0 || len(p.Lines) == 2 {
					continue
				}
				lp := invoice.CreditNoteLineParams{InvoiceLine: l.ID}
				switch x := r.IntN(3); {
				case x == 0 && l.Quantity > 1:
					lp.Quantity = ptr(1 + r.Int64N(l.Quantity))
				case x < 2:
					lp.Amount = ptr(1 + r.Int64N(min(l.Amount, limit)))
				} // else all that is left of the line
				p.Lines = append(p.Lines, lp)
			}
			if len(p.Lines) == 0 {
				return
			}
		}
		if r.IntN(4) == 0 {
			at := in.FinalizedAt.Add(time.Duration(r.Int64N(int64(now.Sub(*in.FinalizedAt)) + 1)))
			p.EffectiveAt = &at
		}
		cn, err := inv.CreateCreditNote(ctx, p)
		if in.Status == billing.InvoicePaid && p.Outcome == billing.OutcomeReduceAmountDue {
			if billing.ErrorCode(err) != billing.EINVALID {
				t.Fatalf("credit note reducing the amount due of paid invoice %s: %v, want EINVALID", id, err)
			}
			credits["refused/paid"]++
			return
		}
		ok("credit note", err)
		if err == nil {
			credits[string(cn.Outcome)+"/"+string(in.Status)]++
		} else {
			credits["refused"]++ // for more than is left (of a line, a rate or the amount due)
		}
	}

	// settle finalizes drafts, voids or writes off invoices, and issues
	// credit notes against invoices of the last two months.
	settle := func(now time.Time) {
		var open []*billing.Invoice
		if err := db.NewSelect().Model(&open).Column("id", "status").Where("status IN (?)", bun.In([]billing.InvoiceStatus{billing.InvoiceOpen, billing.InvoiceDraft})).Order("id").Scan(ctx); err != nil {
			t.Fatal(err)
		}
		for _, o := range open {
			switch x := r.IntN(1000); {
			case o.Status == billing.InvoiceDraft && x < 350:
				_, err := inv.Finalize(ctx, o.ID)
				ok("finalize", err)
			case o.Status == billing.InvoiceOpen && x < 6:
				_, err := inv.Void(ctx, o.ID)
				ok("void", err)
			case o.Status == billing.InvoiceOpen && x < 12:
				_, err := inv.MarkUncollectible(ctx, o.ID)
				ok("uncollectible", err)
			}
		}
		var recent []string
		if err := db.NewSelect().Model((*billing.Invoice)(nil)).Column("id").Where("status IN (?)", bun.In([]billing.InvoiceStatus{billing.InvoiceOpen, billing.InvoicePaid, billing.InvoiceUncollectible})).
			Where("finalized_at > ?", now.AddDate(0, -2, 0).UTC()).Order("id").Scan(ctx, &recent); err != nil {
			t.Fatal(err)
		}
		for _, id := range recent {
			if r.IntN(1000) < 6 {
				creditNote(now, id)
			}
		}
	}

	// pay has customers pay at the store: their live vouchers at their
	// pace, now and then an old slip still payable at Opn (replaced after
	// a credit note, or of an invoice that ended), or, late, one that just
	// expired. One payment webhook in ten is lost.
	paid := &payments{paid: map[string]*paidCharge{}}
	kinds := map[string]int{} // payments by kind/invoice status
	pay := func(now time.Time) {
		var vs []voucherState
		err := db.NewRaw(`SELECT v.id, v.provider_id, v.status, v.failure_code, v.amount, v.expires_at, i.customer_id, i.status AS invoice_status
			FROM vouchers v JOIN invoices i ON i.id = v.invoice_id
			WHERE v.provider_id <> '' AND (v.status IN ('pending', 'canceled') AND v.expires_at > ? OR v.status = 'expired' AND v.expires_at > ?)
			ORDER BY v.id`, now.UTC(), now.Add(-72*time.Hour).UTC()).Scan(ctx, &vs)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			x := r.IntN(1000)
			var kind string
			switch {
			case v.Status == "pending" && x < payRate[v.CustomerID]:
				kind = "live"
			case v.Status == "canceled" && x < 80:
				kind = "canceled/" + v.FailureCode
			case v.Status == "expired" && x < 40:
				kind = "late"
			default:
				continue
			}
			if paid.paid[v.ProviderID] != nil {
				continue // paid, and its webhook lost: billingd does not know yet
			}
			lost := kind == "live" && r.IntN(10) == 0
			if lost {
				w.loseWebhook(v.ProviderID, "successful")
			}
			if !w.pay(v.ProviderID, kind == "late") {
				t.Fatalf("%v: the emulator refused the payment (%s)", v, kind)
			}
			paid.paid[v.ProviderID] = &paidCharge{amount: v.Amount, expiresAt: v.ExpiresAt, lost: lost}
			paid.unresolved = append(paid.unresolved, v.ProviderID)
			kinds[kind+"/"+v.Invoice]++
		}
	}
	// loseExpiries loses the webhooks of one in ten vouchers the emulator
	// is about to expire.
	loseExpiries := func(now time.Time) {
		var ids []string
		if err := db.NewSelect().Model((*billing.Voucher)(nil)).Column("provider_id").Where("status = 'pending'").Where("provider_id <> ''").
			Where("expires_at <= ?", now.UTC()).Order("id").Scan(ctx, &ids); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if r.IntN(10) == 0 {
				w.loseWebhook(id, "expired")
			}
		}
	}

	now := start
	end := start.AddDate(1, 0, 0)
	step := 0
	for now.Before(end) {
		step++
		now = now.Add(time.Duration(24+r.IntN(48)) * time.Hour).Add(time.Duration(r.IntN(3600)) * time.Second)
		clk.Set(now)
		if _, err := svc.BillDue(ctx, now); err != nil {
			t.Fatalf("step %d: billing run: %v", step, err)
		}
		// The 1,000 subscriptions are created over the year, more and more
		// of them as the business grows.
		for f := now.Sub(start).Hours() / (350 * 24); len(subs) < 1000 && len(subs) < 5+int(1000*f*f*math.Sqrt(f)); {
			create(now)
		}
		for range 8 {
			operate(now)
		}
		settle(now)
		loseExpiries(now)
		if err := w.sb.Tick(ctx, now); err != nil {
			t.Fatal(err)
		}
		pay(now)
		w.collect(ctx, now)
		paid.check(t, db, step, now)
		checkCollection(t, db, step)
		checkCustomers(t, db, step)
	}
	if _, err := svc.BillDue(ctx, now); err != nil {
		t.Fatal(err)
	}
	w.collect(ctx, now)
	paid.check(t, db, step, now)
	checkCollection(t, db, step)
	checkCustomers(t, db, step)
	checkInvoices(t, db)
	checkPeriods(t, db, svc.Settings.Location)
	for _, k := range []string{"reduce_amount_due/open", "reduce_amount_due/uncollectible", "customer_balance/open", "customer_balance/paid",
		"out_of_band/open", "out_of_band/paid", "refused/paid"} {
		if credits[k] == 0 {
			t.Errorf("no credit note %s in the year: %v", k, credits)
		}
	}
	for _, k := range []string{"live/open", "live/uncollectible", "late/open", "canceled/replaced_by_credit_note/open", "canceled//void"} {
		if kinds[k] == 0 {
			t.Errorf("no payment %s in the year: %v", k, kinds)
		}
	}
	var n int
	db.NewSelect().Model((*billing.Invoice)(nil)).ColumnExpr("count(*)").Scan(ctx, &n)
	var counts []struct {
		Kind string `bun:"kind"`
		N    int    `bun:"n"`
	}
	db.NewRaw(`SELECT billing_reason || '/' || status AS kind, count(*) AS n FROM invoices GROUP BY billing_reason, status
		UNION ALL SELECT 'item/' || status, count(*) FROM invoice_items GROUP BY status
		UNION ALL SELECT 'ledger/' || type, count(*) FROM balance_transactions GROUP BY type
		UNION ALL SELECT 'voucher/' || status || '/' || failure_code, count(*) FROM vouchers GROUP BY status, failure_code
		UNION ALL SELECT 'subscription/' || status, count(*) FROM subscriptions GROUP BY status ORDER BY 1`).Scan(ctx, &counts)
	t.Logf("%s: %d steps, %d subscriptions, %d invoices in %v; credit notes %v; payments %v; %v", db.Engine, step, len(subs), n,
		time.Since(started).Round(time.Millisecond), credits, kinds, counts)
}

// payments are the payments the emulator took, as the test follows them.
type payments struct {
	paid       map[string]*paidCharge // by charge id
	unresolved []string               // not known to billingd yet
}

// check checks that every payment the emulator took since the last check is
// recorded as a successful voucher of its amount (with Opn's fee), unless
// its webhook was lost and the collector's reconciliation is not due yet
// (two hours past the voucher's deadline; billingd may have canceled the
// voucher meanwhile, after a credit note or with its invoice, without
// knowing it was paid); and that no other voucher is successful.
func (p *payments) check(t *testing.T, db *store.DB, step int, now time.Time) {
	t.Helper()
	ctx := context.Background()
	if len(p.unresolved) > 0 {
		var vs []*billing.Voucher
		if err := db.NewSelect().Model(&vs).Where("provider_id IN (?)", bun.In(p.unresolved)).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		byCharge := map[string]*billing.Voucher{}
		for _, v := range vs {
			byCharge[v.ProviderID] = v
		}
		var still []string
		for _, id := range p.unresolved {
			pc, v := p.paid[id], byCharge[id]
			switch {
			case v == nil:
				t.Fatalf("step %d: charge %s paid at the emulator has no voucher", step, id)
			case v.Status == "successful" && v.Amount == pc.amount && v.Fee != nil && v.PaidAt != nil:
			case pc.lost && (v.Status == "pending" || v.Status == "canceled") && !now.After(pc.expiresAt.Add(2*time.Hour)):
				still = append(still, id)
			default:
				t.Fatalf("step %d, %v: voucher %s of charge %s paid at the emulator (¥%d, webhook lost: %v, deadline %v) is %s (¥%d, fee %v)",
					step, now, v.ID, id, pc.amount, pc.lost, pc.expiresAt, v.Status, v.Amount, v.Fee)
			}
		}
		p.unresolved = still
	}
	var n int
	if err := db.NewSelect().Model((*billing.Voucher)(nil)).ColumnExpr("count(*)").Where("status = 'successful'").Scan(ctx, &n); err != nil {
		t.Fatal(err)
	}
	if n != len(p.paid)-len(p.unresolved) {
		t.Fatalf("step %d: %d successful vouchers, %d payments at the emulator of which %d are not known yet",
			step, n, len(p.paid), len(p.unresolved))
	}
}

// checkCollection checks, after a collector run, that nothing is left to
// prepare or cancel and nothing needs action; that the live vouchers of an
// open or uncollectible invoice being collected ask what it still owes, or
// less while some of its parts have used up their vouchers, never more
// (not even after an old slip was paid late); that one with nothing left to
// collect has no live voucher; and that no paid or void invoice has any.
func checkCollection(t *testing.T, db *store.DB, step int) {
	t.Helper()
	var bad []struct {
		ID         string `bun:"id"`
		Status     string `bun:"status"`
		Collection string `bun:"collection_status"`
		Remaining  int64  `bun:"amount_remaining"`
		Live       int64  `bun:"live"`
		N          int64  `bun:"n"`
		Paid       int64  `bun:"paid"`
	}
	ctx := context.Background()
	err := db.NewRaw(`SELECT i.id, i.status, i.collection_status, i.amount_remaining, COALESCE(v.live, 0) AS live, COALESCE(v.n, 0) AS n,
			COALESCE(v.paid, 0) AS paid
		FROM invoices i LEFT JOIN (
			SELECT invoice_id, SUM(CASE WHEN status = 'pending' THEN amount ELSE 0 END) AS live, SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS n,
				SUM(CASE WHEN status = 'successful' THEN 1 ELSE 0 END) AS paid
			FROM vouchers GROUP BY invoice_id) v ON v.invoice_id = i.id
		WHERE i.status <> 'draft' AND NOT (
			i.status IN ('open', 'uncollectible') AND i.collection_status = 'active' AND COALESCE(v.n, 0) > 0 AND COALESCE(v.live, 0) <= i.amount_remaining
			OR i.status IN ('open', 'uncollectible') AND i.collection_status = 'none' AND COALESCE(v.n, 0) = 0
			OR i.status IN ('paid', 'void') AND i.collection_status = 'none' AND COALESCE(v.n, 0) = 0)
		ORDER BY i.id`).Scan(ctx, &bad)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Fatalf("step %d: invoice whose collection is off: %+v\n%s", step, b, history(db, b.ID))
	}
}

// checkCustomers checks every invoice and every customer's accounts (see
// TestPropertySimulatedYear for the terms).
func checkCustomers(t *testing.T, db *store.DB, step int) {
	t.Helper()
	ctx := context.Background()
	var badInvoices []struct {
		ID          string `bun:"id"`
		Status      string `bun:"status"`
		Total       int64  `bun:"total"`
		Starting    int64  `bun:"starting_balance"`
		Due         int64  `bun:"amount_due"`
		Paid        int64  `bun:"amount_paid"`
		Remaining   int64  `bun:"amount_remaining"`
		Carried     int64  `bun:"carried_to_balance"`
		Pre         int64  `bun:"pre_payment_credit_notes_amount"`
		Post        int64  `bun:"post_payment_credit_notes_amount"`
		NotesReduce int64  `bun:"notes_reduce"`
		NotesOther  int64  `bun:"notes_other"`
	}
	err := db.NewRaw(`SELECT i.id, i.status, i.total, i.starting_balance, i.amount_due, i.amount_paid, i.amount_remaining, i.carried_to_balance,
			i.pre_payment_credit_notes_amount, i.post_payment_credit_notes_amount, COALESCE(n.reduce, 0) AS notes_reduce, COALESCE(n.other, 0) AS notes_other
		FROM invoices i LEFT JOIN (
			SELECT invoice_id, SUM(CASE WHEN outcome = 'reduce_amount_due' THEN total ELSE 0 END) AS reduce,
				SUM(CASE WHEN outcome <> 'reduce_amount_due' THEN total ELSE 0 END) AS other
			FROM credit_notes GROUP BY invoice_id) n ON n.invoice_id = i.id
		WHERE i.status <> 'draft' AND (i.total < 0
			OR i.amount_due <> i.total + i.starting_balance - i.pre_payment_credit_notes_amount
			OR i.pre_payment_credit_notes_amount <> COALESCE(n.reduce, 0) OR i.post_payment_credit_notes_amount <> COALESCE(n.other, 0)
			OR i.pre_payment_credit_notes_amount + i.post_payment_credit_notes_amount > i.total
			OR i.amount_paid > i.amount_due AND i.status <> 'paid'
			OR i.carried_to_balance < 0 OR i.carried_to_balance >= 200 OR i.carried_to_balance > 0 AND i.status <> 'paid'
			OR i.status IN ('open', 'uncollectible') AND (i.amount_remaining <= 0 OR i.amount_remaining <> i.amount_due - i.amount_paid)
			OR i.status = 'paid' AND (i.amount_remaining <> 0
				OR i.carried_to_balance + CASE WHEN i.amount_paid < i.amount_due THEN i.amount_paid ELSE i.amount_due END <> i.amount_due))
		ORDER BY i.id LIMIT 5`).Scan(ctx, &badInvoices)
	if err != nil {
		t.Fatal(err)
	}
	if len(badInvoices) > 0 {
		t.Fatalf("step %d: inconsistent invoices: %+v", step, badInvoices)
	}

	type sums struct {
		CustomerID string `bun:"id"`
		Balance    int64  `bun:"balance"`
		// From the invoices.
		Invoiced   int64 `bun:"invoiced"`
		Paid       int64 `bun:"paid"`
		Credited   int64 `bun:"credited"`
		WrittenOff int64 `bun:"written_off"`
		OpenDue    int64 `bun:"open_due"`
		Starting   int64 `bun:"starting"`
		Carried    int64 `bun:"carried"`
		// From the ledger.
		Ledger         int64 `bun:"ledger"`
		LedgerApplied  int64 `bun:"ledger_applied"`
		LedgerCarried  int64 `bun:"ledger_carried"`
		LedgerCredited int64 `bun:"ledger_credited"`
		LedgerExcess   int64 `bun:"ledger_excess"`
		// From the vouchers and the credit notes.
		Cash           int64 `bun:"cash"`
		NotesReduce    int64 `bun:"notes_reduce"`
		NotesBalance   int64 `bun:"notes_balance"`
		NotesOutOfBand int64 `bun:"notes_out_of_band"`
	}
	var rows []sums
	err = db.NewRaw(`SELECT c.id, c.balance,
			COALESCE(i.invoiced, 0) AS invoiced, COALESCE(i.paid, 0) AS paid, COALESCE(i.credited, 0) AS credited,
			COALESCE(i.written_off, 0) AS written_off, COALESCE(i.open_due, 0) AS open_due,
			COALESCE(i.starting, 0) AS starting, COALESCE(i.carried, 0) AS carried,
			COALESCE(l.total, 0) AS ledger, COALESCE(l.applied, 0) AS ledger_applied, COALESCE(l.carried, 0) AS ledger_carried,
			COALESCE(l.credited, 0) AS ledger_credited, COALESCE(l.excess, 0) AS ledger_excess,
			COALESCE(v.cash, 0) AS cash,
			COALESCE(n.reduce, 0) AS notes_reduce, COALESCE(n.balance, 0) AS notes_balance, COALESCE(n.out_of_band, 0) AS notes_out_of_band
		FROM customers c
		LEFT JOIN (SELECT customer_id,
				SUM(total) AS invoiced,
				SUM(CASE WHEN amount_paid < amount_due THEN amount_paid ELSE amount_due END) AS paid,
				SUM(pre_payment_credit_notes_amount) AS credited,
				SUM(CASE WHEN status IN ('void', 'uncollectible') THEN amount_due - amount_paid ELSE 0 END) AS written_off,
				SUM(CASE WHEN status = 'open' THEN amount_remaining ELSE 0 END) AS open_due,
				SUM(starting_balance) AS starting,
				SUM(carried_to_balance) AS carried
			FROM invoices WHERE status <> 'draft' GROUP BY customer_id) i ON i.customer_id = c.id
		LEFT JOIN (SELECT customer_id,
				SUM(amount) AS total,
				SUM(CASE WHEN type = 'applied_to_invoice' THEN amount ELSE 0 END) AS applied,
				SUM(CASE WHEN type = 'carry_over' THEN amount ELSE 0 END) AS carried,
				SUM(CASE WHEN type = 'credit_note' THEN amount ELSE 0 END) AS credited,
				SUM(CASE WHEN type = 'excess_payment' THEN amount ELSE 0 END) AS excess
			FROM balance_transactions GROUP BY customer_id) l ON l.customer_id = c.id
		LEFT JOIN (SELECT i.customer_id, SUM(v.amount) AS cash FROM vouchers v JOIN invoices i ON i.id = v.invoice_id
			WHERE v.status = 'successful' GROUP BY i.customer_id) v ON v.customer_id = c.id
		LEFT JOIN (SELECT customer_id,
				SUM(CASE WHEN outcome = 'reduce_amount_due' THEN total ELSE 0 END) AS reduce,
				SUM(CASE WHEN outcome = 'customer_balance' THEN total ELSE 0 END) AS balance,
				SUM(CASE WHEN outcome = 'out_of_band' THEN total ELSE 0 END) AS out_of_band
			FROM credit_notes GROUP BY customer_id) n ON n.customer_id = c.id
		ORDER BY c.id`).Scan(ctx, &rows)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rows {
		applied := s.Starting - s.Carried
		var errs []string
		if s.Invoiced != s.Paid+s.Credited+s.WrittenOff+s.OpenDue-applied {
			errs = append(errs, fmt.Sprintf("invoiced %d ≠ paid %d + credited %d + written off %d + open %d − balance applied %d (starting balances %d − carried %d)",
				s.Invoiced, s.Paid, s.Credited, s.WrittenOff, s.OpenDue, applied, s.Starting, s.Carried))
		}
		if s.Balance != s.Ledger {
			errs = append(errs, fmt.Sprintf("balance %d ≠ ledger sum %d", s.Balance, s.Ledger))
		}
		if s.LedgerApplied != -s.Starting {
			errs = append(errs, fmt.Sprintf("ledger applied_to_invoice %d ≠ −starting balances %d", s.LedgerApplied, s.Starting))
		}
		if s.LedgerCarried != s.Carried {
			errs = append(errs, fmt.Sprintf("ledger carry_over %d ≠ carried %d", s.LedgerCarried, s.Carried))
		}
		if s.Credited != s.NotesReduce {
			errs = append(errs, fmt.Sprintf("credited %d ≠ credit notes reducing amounts due %d", s.Credited, s.NotesReduce))
		}
		if s.LedgerCredited != -s.NotesBalance {
			errs = append(errs, fmt.Sprintf("ledger credit_note %d ≠ −credit notes to the balance %d", s.LedgerCredited, s.NotesBalance))
		}
		if s.LedgerExcess != -(s.Cash - s.Paid) {
			errs = append(errs, fmt.Sprintf("ledger excess_payment %d ≠ −(successful vouchers %d − paid %d)", s.LedgerExcess, s.Cash, s.Paid))
		}
		if len(errs) > 0 {
			t.Fatalf("step %d, customer %s: %s", step, s.CustomerID, strings.Join(errs, "; "))
		}
	}
}

// checkInvoices checks each invoice's totals against its lines.
func checkInvoices(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	var invs []*billing.Invoice
	if err := db.NewSelect().Model(&invs).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	byID := map[string]*billing.Invoice{}
	for _, in := range invs {
		byID[in.ID] = in
	}
	var lines []*billing.InvoiceLine
	if err := db.NewSelect().Model(&lines).Order("invoice_id", "position").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		byID[l.InvoiceID].Lines = append(byID[l.InvoiceID].Lines, l)
	}
	for _, in := range invs {
		got := *in
		got.Lines = in.Lines
		invoice.ComputeTotals(&got, billing.RoundDown)
		if got.Subtotal != in.Subtotal || got.Tax != in.Tax || got.Total != in.Total || in.Total < 0 {
			t.Errorf("invoice %s (%s): stored subtotal %d tax %d total %d, lines give %d, %d, %d", in.ID, in.BillingReason, in.Subtotal, in.Tax, in.Total, got.Subtotal, got.Tax, got.Total)
		}
	}
}

// checkPeriods checks that each subscription's billed periods follow each
// other with no gap or overlap, each on the schedule, up to where the
// subscription stands; and that pending items match its flag.
func checkPeriods(t *testing.T, db *store.DB, loc *time.Location) {
	t.Helper()
	ctx := context.Background()
	var subs []*billing.Subscription
	if err := db.NewSelect().Model(&subs).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	var invs []*billing.Invoice
	if err := db.NewSelect().Model(&invs).Where("period_start IS NOT NULL").Where("billing_reason IN ('subscription_create', 'subscription_cycle')").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	periods := map[string][]*billing.Invoice{}
	for _, in := range invs {
		periods[*in.SubscriptionID] = append(periods[*in.SubscriptionID], in)
	}
	var pending []*billing.InvoiceItem
	if err := db.NewSelect().Model(&pending).Where("status = ?", billing.ItemPending).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	hasPending := map[string]bool{}
	for _, it := range pending {
		hasPending[*it.SubscriptionID] = true
	}
	arrearsPlans := map[string]bool{}
	var plans []*billing.Plan
	db.NewSelect().Model(&plans).Scan(ctx)
	for _, p := range plans {
		arrearsPlans[p.ID] = p.BillingTiming == billing.BillInArrears
	}
	var items []*billing.SubscriptionItem
	db.NewSelect().Model(&items).Scan(ctx)
	arrears := map[string]bool{}
	for _, it := range items {
		arrears[it.SubscriptionID] = arrearsPlans[it.PlanID]
	}
	for _, sub := range subs {
		ps := periods[sub.ID]
		sort.Slice(ps, func(i, j int) bool { return ps[i].PeriodStart.Before(*ps[j].PeriodStart) })
		if hasPending[sub.ID] != sub.HasPendingItems || (sub.Status == billing.SubscriptionCanceled && hasPending[sub.ID]) {
			t.Errorf("subscription %s (%s): has_pending_items %v, pending items %v\n%s", sub.ID, sub.Status, sub.HasPendingItems, hasPending[sub.ID], history(db, sub.ID))
		}
		anchor := sub.BillingCycleAnchor.In(loc)
		for i, in := range ps {
			s, e := in.PeriodStart.UTC(), in.PeriodEnd.UTC()
			if i > 0 && !ps[i-1].PeriodEnd.Equal(s) {
				t.Errorf("subscription %s: period %d starts %v, the previous ended %v", sub.ID, i, s, ps[i-1].PeriodEnd)
			}
			if _, pe := subscription.PeriodAt(anchor, sub.Interval, sub.IntervalCount, s); !pe.Equal(e) {
				t.Errorf("subscription %s: period [%v, %v) is off the schedule (ends %v)", sub.ID, s, e, pe)
			}
		}
		if len(ps) == 0 {
			continue
		}
		first, last := ps[0], ps[len(ps)-1]
		want := sub.StartDate
		if sub.TrialEnd != nil {
			want = *sub.TrialEnd
		}
		if !first.PeriodStart.Equal(want) {
			t.Errorf("subscription %s: first period starts %v, want %v", sub.ID, first.PeriodStart, want)
		}
		switch {
		case sub.Status != billing.SubscriptionCanceled && !arrears[sub.ID]:
			if !last.PeriodEnd.Equal(*sub.NextBillingAt) {
				t.Errorf("subscription %s: billed up to %v, next billing at %v", sub.ID, last.PeriodEnd, sub.NextBillingAt)
			}
		case sub.Status != billing.SubscriptionCanceled:
			if !last.PeriodEnd.Equal(*sub.CurrentPeriodStart) {
				t.Errorf("subscription %s (arrears): billed up to %v, current period from %v", sub.ID, last.PeriodEnd, sub.CurrentPeriodStart)
			}
		case !arrears[sub.ID]:
			// A subscription canceled while unpaid was not billed since it
			// became unpaid: it may end after its last billed period.
			if sub.EndedAt.Before(*last.PeriodStart) || sub.EndedAt.After(*last.PeriodEnd) && statusBeforeCancel(t, db, sub.ID) != billing.SubscriptionUnpaid {
				t.Errorf("subscription %s: ended %v outside its last period [%v, %v)\n%s", sub.ID, sub.EndedAt, last.PeriodStart, last.PeriodEnd, history(db, sub.ID))
			}
		default:
			if last.PeriodEnd.After(*sub.EndedAt) {
				t.Errorf("subscription %s (arrears): billed up to %v, after it ended %v", sub.ID, last.PeriodEnd, sub.EndedAt)
			}
		}
	}
}

// statusBeforeCancel returns a canceled subscription's status before it was
// canceled, from its events.
func statusBeforeCancel(t *testing.T, db *store.DB, id string) billing.SubscriptionStatus {
	var evs []*billing.Event
	if err := db.NewSelect().Model(&evs).Where("object_id = ?", id).Order("id").Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	var status billing.SubscriptionStatus
	for _, e := range evs {
		var sub struct {
			Status billing.SubscriptionStatus `json:"status"`
		}
		if err := json.Unmarshal(e.Data, &sub); err != nil {
			t.Fatal(err)
		}
		if sub.Status == billing.SubscriptionCanceled {
			break
		}
		status = sub.Status
	}
	return status
}

// history describes an invoice's vouchers and events, for failure messages.
func history(db *store.DB, invoiceID string) string {
	ctx := context.Background()
	var b strings.Builder
	var vs []*billing.Voucher
	db.NewSelect().Model(&vs).Where("invoice_id = ?", invoiceID).Order("id").Scan(ctx)
	for _, v := range vs {
		fmt.Fprintf(&b, "voucher %s part %d %s ¥%d %s %q expires %v created %v next %v\n", v.ID, v.Part, v.ProviderID, v.Amount, v.Status, v.FailureCode, v.ExpiresAt, v.CreatedAt, v.NextAttemptAt)
	}
	var evs []*billing.Event
	db.NewSelect().Model(&evs).Where("object_id = ?", invoiceID).Order("id").Scan(ctx)
	for _, e := range evs {
		var obj struct {
			Status string `json:"status"`
		}
		json.Unmarshal(e.Data, &obj)
		fmt.Fprintf(&b, "event %s %s %s\n", e.CreatedAt.Format(time.RFC3339), e.Type, obj.Status)
	}
	return b.String()
}
