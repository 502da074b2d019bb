package collection

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/parallel/paralleltest"
	"billingd/billing/store"
	"billingd/billing/store/storetest"
	"billingd/invoice"
)

// fakeProvider stands in for a payment provider where only lookups and
// cancellations matter: it knows the charges in found, by attempt id, and
// records what it is asked to cancel.
type fakeProvider struct {
	mu       sync.Mutex // Collector calls it from several goroutines
	found    map[string]*Charge
	canceled []string
	cancel   error
	create   func(CreateRequest) (*Charge, error) // if set, creates charges
	charges  map[string]*Charge                   // what Get answers, by charge id
	refuse   string                               // a charge id whose Cancel fails
}

func (p *fakeProvider) Name() string                     { return "sandbox" }
func (p *fakeProvider) Limits() Limits                   { return Limits{Min: 100, Max: 300_000} }
func (p *fakeProvider) Validate(req CreateRequest) error { return nil }
func (p *fakeProvider) Create(ctx context.Context, req CreateRequest) (*Charge, error) {
	if p.create != nil {
		return p.create(req)
	}
	return nil, &Error{Provider: "fake", Message: "not in this test"}
}
func (p *fakeProvider) FindByAttempt(ctx context.Context, invoiceID, attemptID string, since time.Time) (*Charge, error) {
	return p.found[attemptID], nil
}
func (p *fakeProvider) Get(ctx context.Context, id string) (*Charge, error) {
	if ch := p.charges[id]; ch != nil {
		return ch, nil
	}
	return nil, fmt.Errorf("no charge %s", id)
}
func (p *fakeProvider) Cancel(ctx context.Context, id string) error {
	if id == p.refuse {
		return &Error{Provider: "fake", Status: 400, Code: "failed_capture", Message: "cannot cancel"}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.canceled = append(p.canceled, id)
	return p.cancel
}
func (p *fakeProvider) ParseWebhook(http.Header, []byte, time.Time) (*WebhookEvent, error) {
	return nil, fmt.Errorf("no webhooks here")
}

var t0 = time.Date(2027, 1, 20, 0, 0, 0, 0, time.UTC)

// seed writes a customer, a monthly subscription (with dunning overrides,
// if any) and its open invoice of ¥3,300, and returns the invoice.
func seed(t *testing.T, db *store.DB, dunning *billing.DunningPolicy) *billing.Invoice {
	t.Helper()
	ctx := context.Background()
	cus := &billing.Customer{ID: billing.NewID(billing.PrefixCustomer), Name: "佐藤花子", Email: "hanako@example.com", Language: "ja", CreatedAt: t0}
	sub := &billing.Subscription{ID: billing.NewID(billing.PrefixSubscription), CustomerID: cus.ID, Status: billing.SubscriptionActive,
		Interval: billing.Month, IntervalCount: 1, StartDate: t0, BillingCycleAnchor: t0, DaysUntilDue: 14, NextBillingAt: ptrTime(t0.AddDate(0, 1, 0)),
		Dunning: dunning, CreatedAt: t0}
	in := &billing.Invoice{ID: billing.NewID(billing.PrefixInvoice), Number: ptrString("INV-2027-" + sub.ID[len(sub.ID)-6:]), Status: billing.InvoiceOpen,
		CustomerID: cus.ID, SubscriptionID: &sub.ID, BillingReason: "subscription_cycle", Currency: "jpy", TaxBehavior: billing.TaxExclusive,
		DaysUntilDue: 14, Subtotal: 3000, Tax: 300, Total: 3300, AmountDue: 3300, AmountRemaining: 3300, CustomerName: cus.Name,
		CustomerEmail: cus.Email, IssuerName: "株式会社テスト", CollectionStatus: billing.CollectionActive, PayToken: billing.NewToken(), CreatedAt: t0, FinalizedAt: &t0}
	for _, m := range []any{cus, sub, in} {
		if _, err := db.NewInsert().Model(m).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return in
}

func ptrTime(t time.Time) *time.Time { return &t }
func ptrString(s string) *string     { return &s }
func ptrInt(n int) *int              { return &n }

func newCollector(db *store.DB, p Provider, policy billing.DunningPolicy) *Collector {
	return &Collector{DB: db, Clock: billing.ClockFunc(func() time.Time { return t0 }), Provider: p, Settings: billing.DefaultSettings(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Dunning: policy}
}

// voucher writes a voucher of the invoice with the given status.
func voucher(t *testing.T, db *store.DB, in *billing.Invoice, status, failureCode string) *billing.Voucher {
	t.Helper()
	exp := t0.Add(-time.Hour)
	v := &billing.Voucher{ID: billing.NewID(billing.PrefixCharge), InvoiceID: in.ID, Provider: "sandbox", ProviderID: "chrg_" + billing.NewToken()[:8],
		Status: status, FailureCode: failureCode, Amount: in.AmountRemaining, ExpiresAt: &exp, Attempts: 1, CreatedAt: t0.Add(-10 * 24 * time.Hour), UpdatedAt: t0}
	if _, err := db.NewInsert().Model(v).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	return v
}

func eventTypes(t *testing.T, db *store.DB, ids ...string) []string {
	t.Helper()
	var types []string
	if err := db.NewSelect().Model((*billing.Event)(nil)).Column("type").Where("object_id IN (?)", bun.In(ids)).Order("id").Scan(context.Background(), &types); err != nil {
		t.Fatal(err)
	}
	return types
}

// TestExpiredFollowsThePolicy expires an invoice's voucher under several
// policies: a reissue while the policy allows one (vouchers replaced after
// a credit note not counted), else the policy's outcome for the invoice
// and the subscription, each with its events and the customer's e-mail.
func TestExpiredFollowsThePolicy(t *testing.T) {
	ops := billing.DunningPolicy{VoucherReissues: ptrInt(1), InvoiceOutcome: billing.DunningInvoiceOpen, SubscriptionOutcome: billing.DunningSubscriptionPastDue}
	tests := []struct {
		name       string
		override   *billing.DunningPolicy
		before     []string // statuses (and failure codes) of earlier vouchers
		invoice    billing.InvoiceStatus
		collection string
		sub        billing.SubscriptionStatus
		events     string
	}{
		{"Reissue", nil, nil, billing.InvoiceOpen, billing.CollectionActive, billing.SubscriptionActive,
			"[invoice.voucher_expired invoice.voucher_reissued]"},
		{"ReplacedVoucherDoesNotCount", nil, []string{"canceled:" + invoice.VoucherReplaced}, billing.InvoiceOpen, billing.CollectionActive, billing.SubscriptionActive,
			"[invoice.voucher_expired invoice.voucher_reissued]"},
		{"PastDueAfterTheLast", nil, []string{"expired:"}, billing.InvoiceOpen, billing.CollectionNone, billing.SubscriptionPastDue,
			"[invoice.voucher_expired invoice.overdue subscription.updated]"},
		{"UnpaidWithoutReissues", &billing.DunningPolicy{VoucherReissues: ptrInt(0), SubscriptionOutcome: billing.DunningSubscriptionUnpaid}, nil,
			billing.InvoiceOpen, billing.CollectionNone, billing.SubscriptionUnpaid, "[invoice.voucher_expired invoice.overdue subscription.updated]"},
		{"UncollectibleAndCanceled", &billing.DunningPolicy{VoucherReissues: ptrInt(0), InvoiceOutcome: billing.DunningInvoiceUncollectible,
			SubscriptionOutcome: billing.DunningSubscriptionCanceled}, nil, billing.InvoiceUncollectible, billing.CollectionNone, billing.SubscriptionCanceled,
			"[invoice.voucher_expired invoice.overdue invoice.marked_uncollectible subscription.canceled]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				in := seed(t, db, tc.override)
				for _, b := range tc.before {
					status, code, _ := strings.Cut(b, ":")
					voucher(t, db, in, status, code)
				}
				v := voucher(t, db, in, StatusExpired, "")
				c := newCollector(db, &fakeProvider{}, ops)
				err := db.InTx(ctx, func(ctx context.Context, tx bun.Tx) error { return c.expired(ctx, tx, in, v, t0) })
				if err != nil {
					t.Fatal(err)
				}
				got := new(billing.Invoice)
				if err := db.NewSelect().Model(got).Where("id = ?", in.ID).Scan(ctx); err != nil {
					t.Fatal(err)
				}
				sub := new(billing.Subscription)
				if err := db.NewSelect().Model(sub).Where("id = ?", *in.SubscriptionID).Scan(ctx); err != nil {
					t.Fatal(err)
				}
				if got.Status != tc.invoice || got.CollectionStatus != tc.collection || sub.Status != tc.sub {
					t.Errorf("invoice %s/%s, subscription %s; want %s/%s, %s", got.Status, got.CollectionStatus, sub.Status, tc.invoice, tc.collection, tc.sub)
				}
				if tc.sub == billing.SubscriptionCanceled && (sub.EndedAt == nil || sub.NextBillingAt != nil) {
					t.Errorf("canceled subscription still billed: ended %v next %v", sub.EndedAt, sub.NextBillingAt)
				}
				if evs := fmt.Sprint(eventTypes(t, db, in.ID, sub.ID)); evs != tc.events {
					t.Errorf("events %s, want %s", evs, tc.events)
				}
				overdue, err := db.NewSelect().Model((*billing.Task)(nil)).Where("key = ?", "overdue:"+in.ID).Exists(ctx)
				if err != nil || overdue != (tc.collection == billing.CollectionNone) {
					t.Errorf("overdue e-mail queued: %v (%v)", overdue, err)
				}
			})
		})
	}
}

// TestCancelReplacedVoucher runs the outbox task that cancels a voucher a
// credit note replaced: at the provider by its id; a creation in flight is
// waited for, then found by its attempt id; a voucher paid meanwhile is
// left alone.
func TestCancelReplacedVoucher(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		in := seed(t, db, nil)
		p := &fakeProvider{found: map[string]*Charge{}}
		c := newCollector(db, p, billing.DunningPolicy{})
		task := func(v *billing.Voucher) *billing.Task {
			return &billing.Task{Kind: invoice.TaskCancelVoucher, Key: v.ID, ObjectID: in.ID}
		}

		known := voucher(t, db, in, StatusCanceled, invoice.VoucherReplaced)
		if err := c.HandleCancelVoucher(ctx, task(known), t0); err != nil || len(p.canceled) != 1 || p.canceled[0] != known.ProviderID {
			t.Fatalf("cancel a known voucher: %v %v", err, p.canceled)
		}

		inFlight := voucher(t, db, in, StatusCanceled, invoice.VoucherReplaced)
		lease := t0.Add(time.Minute)
		if _, err := db.NewUpdate().Model(inFlight).Set("provider_id = ''").Set("next_attempt_at = ?", lease).WherePK().Exec(ctx); err != nil {
			t.Fatal(err)
		}
		inFlight.ProviderID = ""
		if err := c.HandleCancelVoucher(ctx, task(inFlight), t0); err == nil {
			t.Fatal("canceled while the creation may still be in flight")
		}
		p.found[inFlight.ID] = &Charge{ID: "chrg_late", Status: StatusPending}
		if err := c.HandleCancelVoucher(ctx, task(inFlight), lease.Add(time.Second)); err != nil || p.canceled[len(p.canceled)-1] != "chrg_late" {
			t.Fatalf("cancel after the lease: %v %v", err, p.canceled)
		}
		var pid string
		if err := db.NewSelect().Model((*billing.Voucher)(nil)).Column("provider_id").Where("id = ?", inFlight.ID).Scan(ctx, &pid); err != nil || pid != "chrg_late" {
			t.Fatalf("provider id %q %v", pid, err)
		}

		paid := voucher(t, db, in, StatusSuccessful, "")
		n := len(p.canceled)
		if err := c.HandleCancelVoucher(ctx, task(paid), t0); err != nil || len(p.canceled) != n {
			t.Fatalf("a paid voucher was canceled: %v", err)
		}
	})
}

// TestReminderScheduledWhenIssued checks the first reminder of a voucher
// being issued follows the subscription's schedule.
func TestReminderScheduledWhenIssued(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		in := seed(t, db, &billing.DunningPolicy{ReminderDays: []int{5, 2}})
		c := newCollector(db, &fakeProvider{}, billing.DunningPolicy{ReminderDays: []int{7}})
		exp := t0.Add(6 * 24 * time.Hour)
		v := &billing.Voucher{ExpiresAt: &exp}
		if err := c.scheduleReminder(ctx, db, in, v, t0); err != nil {
			t.Fatal(err)
		}
		if v.NextReminderAt == nil || !v.NextReminderAt.Equal(exp.Add(-5*24*time.Hour)) {
			t.Fatalf("next reminder %v, want 5 days before %v", v.NextReminderAt, exp)
		}
		if err := c.scheduleReminder(ctx, db, in, v, exp.Add(-time.Hour)); err != nil || v.NextReminderAt != nil {
			t.Fatalf("a reminder after the last: %v %v", v.NextReminderAt, err)
		}
	})
}

// TestOldSlipPaidReplacesLiveVouchers pays an old slip (replaced after a
// credit note) of an invoice whose live voucher asks for all it owes: the
// live voucher would now ask more than is left, so it is replaced by one
// for what is left.
func TestOldSlipPaidReplacesLiveVouchers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		in := seed(t, db, nil)
		old := voucher(t, db, in, StatusCanceled, invoice.VoucherReplaced)
		if _, err := db.NewUpdate().Model(old).Set("amount = 2000").WherePK().Exec(ctx); err != nil {
			t.Fatal(err)
		}
		live := voucher(t, db, in, StatusPending, "")
		c := newCollector(db, &fakeProvider{}, billing.DunningPolicy{})
		if err := c.apply(ctx, &Charge{ID: old.ProviderID, Status: StatusSuccessful, Amount: 2000, PaidAt: &t0}, t0); err != nil {
			t.Fatal(err)
		}
		got := new(billing.Invoice)
		if err := db.NewSelect().Model(got).Where("id = ?", in.ID).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if got.Status != billing.InvoiceOpen || got.AmountPaid != 2000 || got.AmountRemaining != 1300 || got.CollectionStatus != billing.CollectionPending {
			t.Fatalf("invoice %s paid %d remaining %d collection %s", got.Status, got.AmountPaid, got.AmountRemaining, got.CollectionStatus)
		}
		var v billing.Voucher
		if err := db.NewSelect().Model(&v).Where("id = ?", live.ID).Scan(ctx); err != nil || v.Status != StatusCanceled || v.FailureCode != invoice.VoucherReplacedAfterPayment {
			t.Fatalf("live voucher: %s %q %v", v.Status, v.FailureCode, err)
		}
		if err := c.prepare(ctx, t0); err != nil {
			t.Fatal(err)
		}
		var amounts []int64
		if err := db.NewSelect().Model((*billing.Voucher)(nil)).Column("amount").Where("invoice_id = ?", in.ID).Where("status = ?", StatusPending).Scan(ctx, &amounts); err != nil {
			t.Fatal(err)
		}
		if len(amounts) != 1 || amounts[0] != 1300 {
			t.Fatalf("live vouchers after the replacement: %v, want [1300]", amounts)
		}
	})
}

// mkVoucher writes a voucher of the invoice: part, amount and status as
// given, failure code code, a provider id unless issued is false.
func mkVoucher(t *testing.T, db *store.DB, in *billing.Invoice, part int, amount int64, status, code string, issued bool) *billing.Voucher {
	t.Helper()
	v := voucher(t, db, in, status, code)
	v.Part, v.Amount = part, amount
	if !issued {
		v.ProviderID, v.Attempts, v.NextAttemptAt = "", 0, &t0
	}
	if _, err := db.NewUpdate().Model(v).Column("part", "amount", "provider_id", "attempts", "next_attempt_at").WherePK().Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	return v
}

// vouchersByID reads the invoice's vouchers.
func vouchersByID(t *testing.T, db *store.DB, in *billing.Invoice) map[string]*billing.Voucher {
	t.Helper()
	var vs []*billing.Voucher
	if err := db.NewSelect().Model(&vs).Where("invoice_id = ?", in.ID).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := map[string]*billing.Voucher{}
	for _, v := range vs {
		out[v.ID] = v
	}
	return out
}

func readInvoice(t *testing.T, db *store.DB, id string) *billing.Invoice {
	t.Helper()
	in := new(billing.Invoice)
	if err := db.NewSelect().Model(in).Where("id = ?", id).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	return in
}

// TestOldSlipsPaidWhileWaitingForNewVouchers pays two replaced slips one
// after the other, with no prepare pass between them: the first replaces
// the live voucher and leaves the invoice waiting for new ones; the second
// must not take that for the end of the collection (no dunning outcome).
func TestOldSlipsPaidWhileWaitingForNewVouchers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		in := seed(t, db, nil)
		r1 := mkVoucher(t, db, in, 0, 2000, StatusCanceled, invoice.VoucherReplaced, true)
		r2 := mkVoucher(t, db, in, 0, 1000, StatusCanceled, invoice.VoucherReplaced, true)
		mkVoucher(t, db, in, 0, 3300, StatusPending, "", true)
		c := newCollector(db, &fakeProvider{}, billing.DunningPolicy{})
		for _, r := range []*billing.Voucher{r1, r2} {
			if err := c.apply(ctx, &Charge{ID: r.ProviderID, Status: StatusSuccessful, Amount: r.Amount, PaidAt: &t0}, t0); err != nil {
				t.Fatal(err)
			}
		}
		got := readInvoice(t, db, in.ID)
		if got.Status != billing.InvoiceOpen || got.AmountRemaining != 300 || got.CollectionStatus != billing.CollectionPending {
			t.Fatalf("invoice %s remaining %d collection %s, want open, 300, pending", got.Status, got.AmountRemaining, got.CollectionStatus)
		}
		if types := eventTypes(t, db, in.ID); slices.Contains(types, "invoice.overdue") {
			t.Fatalf("dunning outcome while waiting for new vouchers: %v", types)
		}
	})
}

// TestLateSlipCancelsOnlyItsReissue pays a split part's expired slip late:
// its reissue (same part, same amount) is canceled; vouchers of a later
// re-split (same part number, other amounts) are not taken for it, and are
// replaced because together they ask more than is left.
func TestLateSlipCancelsOnlyItsReissue(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := newCollector(db, &fakeProvider{}, billing.DunningPolicy{})

		in := seed(t, db, nil)
		expired := mkVoucher(t, db, in, 1, 1000, StatusExpired, "", true)
		reissue := mkVoucher(t, db, in, 1, 1000, StatusPending, "", true)
		other := mkVoucher(t, db, in, 2, 2300, StatusPending, "", true)
		if err := c.apply(ctx, &Charge{ID: expired.ProviderID, Status: StatusSuccessful, Amount: 1000, PaidAt: &t0}, t0); err != nil {
			t.Fatal(err)
		}
		vs := vouchersByID(t, db, in)
		if vs[reissue.ID].Status != StatusCanceled || vs[other.ID].Status != StatusPending {
			t.Fatalf("reissue %s, other part %s; want canceled, pending", vs[reissue.ID].Status, vs[other.ID].Status)
		}

		in = seed(t, db, nil)
		expired = mkVoucher(t, db, in, 1, 1000, StatusExpired, "", true)
		x1 := mkVoucher(t, db, in, 1, 1650, StatusPending, "", true)
		x2 := mkVoucher(t, db, in, 2, 1650, StatusPending, "", true)
		if err := c.apply(ctx, &Charge{ID: expired.ProviderID, Status: StatusSuccessful, Amount: 1000, PaidAt: &t0}, t0); err != nil {
			t.Fatal(err)
		}
		vs = vouchersByID(t, db, in)
		for _, x := range []*billing.Voucher{x1, x2} {
			if v := vs[x.ID]; v.Status != StatusCanceled || v.FailureCode != invoice.VoucherReplacedAfterPayment {
				t.Fatalf("re-split voucher part %d: %s %q, want replaced after the payment", v.Part, v.Status, v.FailureCode)
			}
		}
		if got := readInvoice(t, db, in.ID); got.AmountRemaining != 2300 || got.CollectionStatus != billing.CollectionPending {
			t.Fatalf("invoice remaining %d collection %s, want 2300, pending", got.AmountRemaining, got.CollectionStatus)
		}
	})
}

// TestLostCreationResponseAdoptedByRetry: the webhook of a charge whose
// creation response was lost arrives first; the voucher is left to the
// creation's retry, which adopts the charge and tells the customer.
func TestLostCreationResponseAdoptedByRetry(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		in := seed(t, db, nil)
		v := mkVoucher(t, db, in, 0, 3300, StatusPending, "", false)
		v.Attempts = 1
		if _, err := db.NewUpdate().Model(v).Column("attempts").WherePK().Exec(ctx); err != nil {
			t.Fatal(err)
		}
		exp := t0.Add(7 * 24 * time.Hour)
		ch := &Charge{ID: "chrg_lost", AttemptID: v.ID, InvoiceID: in.ID, Status: StatusPending, Amount: 3300, ExpiresAt: exp}
		p := &fakeProvider{found: map[string]*Charge{v.ID: ch}}
		c := newCollector(db, p, billing.DunningPolicy{})
		if err := c.apply(ctx, ch, t0); err != nil {
			t.Fatal(err)
		}
		if got := vouchersByID(t, db, in)[v.ID]; got.ProviderID != "" {
			t.Fatalf("the webhook adopted the charge: %s", got.ProviderID)
		}
		if err := c.createAll(ctx, t0); err != nil {
			t.Fatal(err)
		}
		if got := vouchersByID(t, db, in)[v.ID]; got.ProviderID != "chrg_lost" || got.NextReminderAt == nil {
			t.Fatalf("after the retry: provider id %q, reminder %v", got.ProviderID, got.NextReminderAt)
		}
		if types := eventTypes(t, db, in.ID); !slices.Contains(types, "invoice.voucher_created") {
			t.Fatalf("events %v, want invoice.voucher_created", types)
		}
		n, err := db.NewSelect().Model((*billing.Task)(nil)).Where("object_id = ?", in.ID).Count(ctx)
		if err != nil || n != 1 {
			t.Fatalf("%d e-mail tasks (%v), want the invoice e-mail", n, err)
		}
	})
}

// TestNoNewVoucherForUncollectibleInvoice: an invoice marked uncollectible
// while its reissue waits out the grace period gets no new voucher, and its
// collection ends.
func TestNoNewVoucherForUncollectibleInvoice(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		in := seed(t, db, nil)
		if _, err := db.NewUpdate().Model(in).Set("status = ?", billing.InvoiceUncollectible).WherePK().Exec(ctx); err != nil {
			t.Fatal(err)
		}
		mkVoucher(t, db, in, 0, 3300, StatusExpired, "", true)
		v := mkVoucher(t, db, in, 0, 3300, StatusPending, "", false)
		c := newCollector(db, &fakeProvider{}, billing.DunningPolicy{})
		if err := c.createAll(ctx, t0); err != nil {
			t.Fatal(err)
		}
		if got := vouchersByID(t, db, in)[v.ID]; got.Status != StatusCanceled || got.NextAttemptAt != nil {
			t.Fatalf("waiting voucher: %s, next attempt %v", got.Status, got.NextAttemptAt)
		}
		if got := readInvoice(t, db, in.ID); got.CollectionStatus != billing.CollectionNone {
			t.Fatalf("collection %s, want none", got.CollectionStatus)
		}
	})
}

// TestVoucherCanceledDuringCreation: a voucher is canceled here (its
// invoice voided, say) while the provider is creating its charge; the
// charge is recorded on the canceled voucher, so a payment of it is still
// found, and canceled at the provider.
func TestVoucherCanceledDuringCreation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		in := seed(t, db, nil)
		v := mkVoucher(t, db, in, 0, 3300, StatusPending, "", false)
		p := &fakeProvider{create: func(req CreateRequest) (*Charge, error) {
			if _, err := db.NewUpdate().Model((*billing.Voucher)(nil)).Set("status = ?", StatusCanceled).Where("id = ?", v.ID).Exec(ctx); err != nil {
				return nil, err
			}
			return &Charge{ID: "chrg_inflight", AttemptID: v.ID, Status: StatusPending, Amount: 3300}, nil
		}}
		c := newCollector(db, p, billing.DunningPolicy{})
		if err := c.createAll(ctx, t0); err != nil {
			t.Fatal(err)
		}
		if got := vouchersByID(t, db, in)[v.ID]; got.Status != StatusCanceled || got.ProviderID != "chrg_inflight" {
			t.Fatalf("voucher %s, provider id %q; want canceled, chrg_inflight", got.Status, got.ProviderID)
		}
		if !slices.Equal(p.canceled, []string{"chrg_inflight"}) {
			t.Fatalf("canceled at the provider: %v", p.canceled)
		}
	})
}

// TestCreationConcurrent: vouchers of different invoices are created at
// the provider at once (each creation waits until four have started); the
// parts of one split invoice one after the other.
func TestCreationConcurrent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		split := seed(t, db, nil)
		parts := []*billing.Voucher{mkVoucher(t, db, split, 1, 1650, StatusPending, "", false), mkVoucher(t, db, split, 2, 1650, StatusPending, "", false)}
		var others []*billing.Voucher
		for range 3 {
			others = append(others, mkVoucher(t, db, seed(t, db, nil), 0, 3300, StatusPending, "", false))
		}
		var (
			mu    sync.Mutex
			order []string
			watch = paralleltest.New(t, 4)
		)
		p := &fakeProvider{create: func(req CreateRequest) (*Charge, error) {
			if req.InvoiceID == split.ID {
				mu.Lock()
				order = append(order, req.AttemptID)
				mu.Unlock()
			}
			watch.Enter(req.InvoiceID)
			defer watch.Leave(req.InvoiceID)
			return &Charge{ID: "chrg_" + req.AttemptID, InvoiceID: req.InvoiceID, AttemptID: req.AttemptID, Status: StatusPending,
				Amount: req.Amount, ExpiresAt: req.ExpiresAt}, nil
		}}
		c := newCollector(db, p, billing.DunningPolicy{})
		if err := c.createAll(ctx, t0); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(order, []string{parts[0].ID, parts[1].ID}) {
			t.Errorf("the split invoice's parts were created in the order %v, want %v", order, []string{parts[0].ID, parts[1].ID})
		}
		for _, v := range append(parts, others...) {
			if got := vouchersByID(t, db, &billing.Invoice{ID: v.InvoiceID})[v.ID]; got.ProviderID != "chrg_"+v.ID {
				t.Errorf("voucher %s: provider id %q", v.ID, got.ProviderID)
			}
		}
	})
}

// TestCreationLeaseOfLateRound: a pass reaches voucher creation long after
// the instant it was started for, and its first creation is slow. The lease
// is taken from the clock, so another daemon's pass meanwhile leaves the
// batch alone; and a voucher another pass has taken over since the claim
// is not created by this one too.
func TestCreationLeaseOfLateRound(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var vs []*billing.Voucher
		for range 3 {
			vs = append(vs, mkVoucher(t, db, seed(t, db, nil), 0, 3300, StatusPending, "", false))
		}
		clock := t0.Add(10 * time.Minute) // the round began ten minutes ago
		var mu sync.Mutex
		created := map[string]int{}
		var victim string // taken over by another pass
		var other *Collector
		p := &fakeProvider{create: func(req CreateRequest) (*Charge, error) {
			mu.Lock()
			created[req.AttemptID]++
			first := len(created) == 1
			mu.Unlock()
			if first {
				// Slow: a minute passes, and another daemon's pass runs.
				clock = clock.Add(time.Minute)
				if err := other.createAll(ctx, clock); err != nil {
					t.Error(err)
				}
				// And yet another takes over one of the batch still to
				// come (its lease ran out there).
				if vs[0].ID != req.AttemptID {
					victim = vs[0].ID
				} else {
					victim = vs[1].ID
				}
				if _, err := db.NewUpdate().Model((*billing.Voucher)(nil)).Set("attempts = attempts + 1").Where("id = ?", victim).Exec(ctx); err != nil {
					t.Error(err)
				}
			}
			return &Charge{ID: "chrg_" + req.AttemptID, InvoiceID: req.InvoiceID, AttemptID: req.AttemptID, Status: StatusPending, Amount: req.Amount, ExpiresAt: req.ExpiresAt}, nil
		}}
		c := newCollector(db, p, billing.DunningPolicy{})
		other = newCollector(db, p, billing.DunningPolicy{})
		c.Concurrency, other.Concurrency = 1, 1
		c.Clock = billing.ClockFunc(func() time.Time { return clock })
		other.Clock = c.Clock
		if err := c.createAll(ctx, t0); err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			if want := map[bool]int{true: 0, false: 1}[v.ID == victim]; created[v.ID] != want {
				t.Errorf("voucher %s created %d times, want %d (taken over by another pass: %v)", v.ID, created[v.ID], want, v.ID == victim)
			}
		}
	})
}

// TestPaymentOfSecondChargeForOneAttempt: a retry whose look-up missed the
// first charge created a second one for the same voucher; the customer
// pays the second. The payment is recorded (once, however often its
// webhook comes), and the voucher keeps its own charge.
func TestPaymentOfSecondChargeForOneAttempt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		in := seed(t, db, nil)
		v := mkVoucher(t, db, in, 0, 3300, StatusPending, "", true)
		c := newCollector(db, &fakeProvider{}, billing.DunningPolicy{})
		second := &Charge{ID: "chrg_second", AttemptID: v.ID, Status: StatusSuccessful, Amount: 3300, PaidAt: &t0}
		for range 2 {
			if err := c.apply(ctx, second, t0); err != nil {
				t.Fatal(err)
			}
		}
		if got := readInvoice(t, db, in.ID); got.Status != billing.InvoicePaid || got.AmountPaid != 3300 {
			t.Fatalf("invoice %s, paid %d; want paid 3300", got.Status, got.AmountPaid)
		}
		vs := vouchersByID(t, db, in)
		if len(vs) != 2 || vs[v.ID].ProviderID != v.ProviderID {
			t.Fatalf("%d vouchers, the voucher's charge %s (was %s)", len(vs), vs[v.ID].ProviderID, v.ProviderID)
		}
	})
}

// TestRetryAdoptsPaidCharge: a creation whose response was lost is
// retried after the customer already paid the charge; the retry records
// the payment, not just the charge.
func TestRetryAdoptsPaidCharge(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		in := seed(t, db, nil)
		v := mkVoucher(t, db, in, 0, 3300, StatusPending, "", false)
		if _, err := db.NewUpdate().Model(v).Set("attempts = 1").WherePK().Exec(ctx); err != nil {
			t.Fatal(err)
		}
		ch := &Charge{ID: "chrg_paid_early", AttemptID: v.ID, Status: StatusSuccessful, Amount: 3300, PaidAt: &t0}
		c := newCollector(db, &fakeProvider{found: map[string]*Charge{v.ID: ch}}, billing.DunningPolicy{})
		if err := c.createAll(ctx, t0); err != nil {
			t.Fatal(err)
		}
		if got := readInvoice(t, db, in.ID); got.Status != billing.InvoicePaid || got.AmountPaid != 3300 {
			t.Fatalf("invoice %s, paid %d; want paid 3300", got.Status, got.AmountPaid)
		}
		if got := vouchersByID(t, db, in)[v.ID]; got.Status != StatusSuccessful || got.ProviderID != "chrg_paid_early" {
			t.Fatalf("voucher %s %s", got.Status, got.ProviderID)
		}
	})
}

// TestOneBadChargeDoesNotHoldUpReconcileOrCancel: a charge the provider
// cannot answer for (or cancel) is set aside; the others are reconciled
// (and canceled) in the same pass.
func TestOneBadChargeDoesNotHoldUpReconcileOrCancel(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := t0.Add(3 * time.Hour) // the vouchers' deadline (t0 − 1h) is past the grace
		bad, good := seed(t, db, nil), seed(t, db, nil)
		vb := mkVoucher(t, db, bad, 0, 3300, StatusPending, "", true)
		vg := mkVoucher(t, db, good, 0, 3300, StatusPending, "", true)
		// The unanswerable voucher comes first (by deadline).
		if _, err := db.NewUpdate().Model(vb).Set("expires_at = ?", vg.ExpiresAt.Add(-time.Hour)).WherePK().Exec(ctx); err != nil {
			t.Fatal(err)
		}
		p := &fakeProvider{charges: map[string]*Charge{vg.ProviderID: {ID: vg.ProviderID, Status: StatusSuccessful, Amount: 3300, PaidAt: &t0}}}
		c := newCollector(db, p, billing.DunningPolicy{})
		if err := c.reconcile(ctx, now); err == nil || !strings.Contains(err.Error(), vb.ID) {
			t.Fatalf("reconcile: %v, want an error naming %s", err, vb.ID)
		}
		if got := readInvoice(t, db, good.ID); got.Status != billing.InvoicePaid {
			t.Fatalf("the other invoice is %s, want paid", got.Status)
		}
		if got := vouchersByID(t, db, bad)[vb.ID]; got.NextAttemptAt == nil || !got.NextAttemptAt.After(now) {
			t.Fatalf("the unanswerable voucher is asked again at %v", got.NextAttemptAt)
		}

		// Two ended invoices; the provider refuses to cancel the first one's charge.
		a, b := seed(t, db, nil), seed(t, db, nil)
		va := mkVoucher(t, db, a, 0, 3300, StatusPending, "", true)
		vb2 := mkVoucher(t, db, b, 0, 3300, StatusPending, "", true)
		for _, in := range []*billing.Invoice{a, b} {
			if _, err := db.NewUpdate().Model(in).Set("status = 'void'").Set("collection_status = ?", billing.CollectionCanceling).WherePK().Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		first := va
		if b.ID < a.ID {
			first = vb2
		}
		p.refuse = first.ProviderID
		if err := c.cancelAll(ctx, now); err == nil {
			t.Fatal("cancelAll hid the refusal")
		}
		for _, v := range []*billing.Voucher{va, vb2} {
			if v == first {
				continue
			}
			if !slices.Contains(p.canceled, v.ProviderID) {
				t.Fatalf("the other invoice's charge was not canceled: %v", p.canceled)
			}
		}
	})
}
