package invoice

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"billingd/billing"
	"billingd/billing/store"
	"billingd/billing/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.DropTemplates()
	os.Exit(code)
}

func ptr[T any](v T) *T { return &v }

// finalized returns an invoice as finalization leaves it, with lines of
// (quantity, unit amount, rate) and totals computed by mode.
func finalized(behavior billing.TaxBehavior, mode billing.Rounding, lines ...billing.InvoiceLine) *billing.Invoice {
	in := &billing.Invoice{ID: "in_test", Number: ptr("INV-2027-000001"), Status: billing.InvoiceOpen, TaxBehavior: behavior, FinalizedAt: ptr(time.Now())}
	for i, l := range lines {
		l := l
		l.ID, l.Amount = fmt.Sprintf("il_%d", i), l.Quantity*l.UnitAmount
		in.Lines = append(in.Lines, &l)
	}
	ComputeTotals(in, mode)
	return in
}

func TestBuildCreditNote(t *testing.T) {
	std := billing.InvoiceLine{Description: "Pro", Quantity: 3, UnitAmount: 1000, TaxRate: billing.TaxStandard}
	food := billing.InvoiceLine{Description: "お弁当", Quantity: 1, UnitAmount: 1080, TaxRate: billing.TaxReduced}
	one := finalized(billing.TaxExclusive, billing.RoundDown, std)
	two := finalized(billing.TaxExclusive, billing.RoundDown, std, food)
	incl := finalized(billing.TaxInclusive, billing.RoundDown, billing.InvoiceLine{Description: "込", Quantity: 1, UnitAmount: 1100, TaxRate: billing.TaxStandard})
	// A plan change from the reduced rate: a credit at 8 % on an invoice
	// that is a charge overall (5,500 − 540 = 4,960).
	mixed := finalized(billing.TaxExclusive, billing.RoundDown, std, billing.InvoiceLine{Description: "お弁当 返金", Quantity: 1, UnitAmount: -500, TaxRate: billing.TaxReduced},
		billing.InvoiceLine{Description: "Pro+", Quantity: 1, UnitAmount: 2000, TaxRate: billing.TaxStandard})
	line := func(id string, q, a *int64) []CreditNoteLineParams {
		return []CreditNoteLineParams{{InvoiceLine: id, Quantity: q, Amount: a}}
	}
	tests := []struct {
		name       string
		in         *billing.Invoice
		prev       []CreditNoteParams // issued first, in order
		p          CreditNoteParams
		subtotal   int64
		tax, total int64
		behavior   billing.TaxBehavior
		param      string // of the expected error
	}{
		{"ByQuantity", one, nil, CreditNoteParams{Lines: line("il_0", ptr[int64](1), nil)}, 1000, 100, 1100, billing.TaxExclusive, ""},
		{"ByLineAmount", one, nil, CreditNoteParams{Lines: line("il_0", nil, ptr[int64](250))}, 250, 25, 275, billing.TaxExclusive, ""},
		{"WholeLine", one, nil, CreditNoteParams{Lines: line("il_0", nil, nil)}, 3000, 300, 3300, billing.TaxExclusive, ""},
		{"RestOfLine", one, []CreditNoteParams{{Lines: line("il_0", ptr[int64](1), nil)}}, CreditNoteParams{Lines: line("il_0", nil, nil)}, 2000, 200, 2200, billing.TaxExclusive, ""},
		// A bare amount includes tax, whatever the invoice's behavior.
		{"ByAmountTaxIncluded", one, nil, CreditNoteParams{Amount: ptr[int64](1100)}, 1100, 100, 1100, billing.TaxInclusive, ""},
		{"InclusiveInvoiceWholeLine", incl, nil, CreditNoteParams{Lines: line("il_0", nil, nil)}, 1100, 100, 1100, billing.TaxInclusive, ""},
		{"TwoRatesByLines", two, nil, CreditNoteParams{Lines: []CreditNoteLineParams{{InvoiceLine: "il_0", Quantity: ptr[int64](1)}, {InvoiceLine: "il_1"}}},
			2080, 100 + 86, 2266, billing.TaxExclusive, ""},
		{"ErrAmountOnTwoRates", two, nil, CreditNoteParams{Amount: ptr[int64](100)}, 0, 0, 0, "", "amount"},
		{"ErrBeyondTheLine", one, []CreditNoteParams{{Lines: line("il_0", nil, ptr[int64](2500))}}, CreditNoteParams{Lines: line("il_0", ptr[int64](1), nil)}, 0, 0, 0, "", "lines[0].amount"},
		{"ErrBeyondTheInvoice", one, []CreditNoteParams{{Amount: ptr[int64](3000)}}, CreditNoteParams{Amount: ptr[int64](301)}, 0, 0, 0, "", "amount"},
		{"ExactlyTheRest", one, []CreditNoteParams{{Amount: ptr[int64](3000)}}, CreditNoteParams{Amount: ptr[int64](300)}, 300, 28, 300, billing.TaxInclusive, ""},
		// An amount credited by amount leaves less to credit by line.
		{"ErrLineAfterAmount", one, []CreditNoteParams{{Amount: ptr[int64](3000)}}, CreditNoteParams{Lines: line("il_0", ptr[int64](1), nil)}, 0, 0, 0, "", "amount"},
		{"ErrBeyondTheTotalWithANegativeRate", mixed, nil, CreditNoteParams{Lines: []CreditNoteLineParams{{InvoiceLine: "il_0"}, {InvoiceLine: "il_2"}}}, 0, 0, 0, "", "amount"},
		{"ErrQuantity", one, nil, CreditNoteParams{Lines: line("il_0", ptr[int64](4), nil)}, 0, 0, 0, "", "lines[0].quantity"},
		{"ErrQuantityAndAmount", one, nil, CreditNoteParams{Lines: line("il_0", ptr[int64](1), ptr[int64](1))}, 0, 0, 0, "", "lines[0].amount"},
		{"ErrUnknownLine", one, nil, CreditNoteParams{Lines: line("il_9", nil, nil)}, 0, 0, 0, "", "lines[0].invoice_line"},
		{"ErrLineTwice", one, nil, CreditNoteParams{Lines: []CreditNoteLineParams{{InvoiceLine: "il_0", Quantity: ptr[int64](1)}, {InvoiceLine: "il_0", Quantity: ptr[int64](1)}}}, 0, 0, 0, "", "lines[1].invoice_line"},
		{"ErrLinesAndAmount", one, nil, CreditNoteParams{Lines: line("il_0", nil, nil), Amount: ptr[int64](1)}, 0, 0, 0, "", "amount"},
		{"ErrNothing", one, nil, CreditNoteParams{}, 0, 0, 0, "", "lines"},
		{"ErrZeroAmount", one, nil, CreditNoteParams{Amount: ptr[int64](0)}, 0, 0, 0, "", "amount"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var prev []*billing.CreditNote
			for _, pp := range tc.prev {
				cn, err := buildCreditNote(tc.in, prev, pp, billing.RoundDown)
				if err != nil {
					t.Fatalf("earlier credit note: %v", err)
				}
				prev = append(prev, cn)
			}
			cn, err := buildCreditNote(tc.in, prev, tc.p, billing.RoundDown)
			if tc.param != "" {
				if billing.ErrorCode(err) != billing.EINVALID || billing.ErrorParam(err) != tc.param {
					t.Fatalf("error %v, want EINVALID on %s", err, tc.param)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cn.Subtotal != tc.subtotal || cn.Tax != tc.tax || cn.Total != tc.total || cn.TaxBehavior != tc.behavior {
				t.Errorf("subtotal %d tax %d total %d %s; want %d %d %d %s", cn.Subtotal, cn.Tax, cn.Total, cn.TaxBehavior, tc.subtotal, tc.tax, tc.total, tc.behavior)
			}
			var sum int64
			for _, b := range cn.TaxBreakdown {
				sum += b.Tax
			}
			if sum != cn.Tax {
				t.Errorf("breakdown tax %d, total tax %d", sum, cn.Tax)
			}
		})
	}
}

// TestCreditNotesReturnExactlyTheTax credits an invoice in small parts with
// each rounding mode: per credit note the tax is rounded once, and the last
// part gets what is left, so the parts return exactly the invoice's tax.
func TestCreditNotesReturnExactlyTheTax(t *testing.T) {
	for _, mode := range []billing.Rounding{billing.RoundDown, billing.RoundUp, billing.RoundHalfUp} {
		t.Run(string(mode), func(t *testing.T) {
			in := finalized(billing.TaxExclusive, mode, billing.InvoiceLine{Description: "x", Quantity: 7, UnitAmount: 15, TaxRate: billing.TaxStandard},
				billing.InvoiceLine{Description: "y", Quantity: 3, UnitAmount: 9, TaxRate: billing.TaxReduced})
			var prev []*billing.CreditNote
			var tax, total int64
			for i := 0; i < 7; i++ {
				p := CreditNoteParams{Lines: []CreditNoteLineParams{{InvoiceLine: "il_0", Quantity: ptr[int64](1)}}}
				if i < 3 {
					p.Lines = append(p.Lines, CreditNoteLineParams{InvoiceLine: "il_1", Quantity: ptr[int64](1)})
				}
				cn, err := buildCreditNote(in, prev, p, mode)
				if err != nil {
					t.Fatalf("part %d: %v", i, err)
				}
				prev = append(prev, cn)
				tax, total = tax+cn.Tax, total+cn.Total
			}
			if tax != in.Tax || total != in.Total {
				t.Errorf("credited tax %d total %d, invoice tax %d total %d", tax, total, in.Tax, in.Total)
			}
			if _, err := buildCreditNote(in, prev, CreditNoteParams{Lines: []CreditNoteLineParams{{InvoiceLine: "il_0"}}}, mode); err == nil {
				t.Error("credited beyond a fully credited invoice")
			}
		})
	}
}

// fixture is a database with a customer and a finalized one-off invoice of
// one line, 3 × ¥1,000 at 10 % (¥3,300), with a live voucher.
type fixture struct {
	db  *store.DB
	svc *Service
	in  *billing.Invoice
	v   *billing.Voucher
	now time.Time
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{db: db, now: time.Date(2027, 1, 1, 1, 0, 0, 0, time.UTC)}
	now := f.now
	svc := &Service{DB: db, Clock: billing.ClockFunc(func() time.Time { return f.now }), Settings: billing.DefaultSettings()}
	cus := &billing.Customer{ID: billing.NewID(billing.PrefixCustomer), Name: "山田太郎", Email: "taro@example.com", Language: "ja", CreatedAt: now}
	if _, err := db.NewInsert().Model(cus).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	in, err := svc.CreateDraft(ctx, DraftParams{Customer: cus.ID, Lines: []LineParams{{Description: "Pro", Quantity: ptr[int64](3), UnitAmount: ptr[int64](1000)}}})
	if err != nil {
		t.Fatal(err)
	}
	if in, err = svc.Finalize(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	exp := now.Add(10 * 24 * time.Hour)
	v := &billing.Voucher{ID: billing.NewID(billing.PrefixCharge), InvoiceID: in.ID, Provider: "sandbox", ProviderID: "chrg_test", Status: "pending",
		Amount: in.AmountDue, ExpiresAt: &exp, Attempts: 1, CreatedAt: now, UpdatedAt: now}
	if _, err := db.NewInsert().Model(v).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.NewUpdate().Model(in).Set("collection_status = ?", billing.CollectionActive).WherePK().Exec(ctx); err != nil {
		t.Fatal(err)
	}
	f.svc, f.in, f.v = svc, in, v
	f.now = now.Add(4 * 24 * time.Hour) // the credit notes come a few days later
	return f
}

func (f *fixture) invoice(t *testing.T) *billing.Invoice {
	t.Helper()
	in, err := f.svc.Get(context.Background(), f.in.ID)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func (f *fixture) tasks(t *testing.T, kind string) []string {
	t.Helper()
	var keys []string
	if err := f.db.NewSelect().Model((*billing.Task)(nil)).Column("key").Where("kind = ?", kind).Order("key").Scan(context.Background(), &keys); err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestCreateCreditNoteReducesAmountDue(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		line := f.in.Lines[0].ID
		cn, err := f.svc.CreateCreditNote(ctx, CreditNoteParams{Invoice: f.in.ID, Reason: billing.ReasonOrderChange,
			Lines: []CreditNoteLineParams{{InvoiceLine: line, Quantity: ptr[int64](1)}}})
		if err != nil {
			t.Fatal(err)
		}
		if cn.Number != "CN-2027-000001" || cn.Outcome != billing.OutcomeReduceAmountDue || cn.Total != 1100 || cn.AmountDueBefore != 3300 ||
			cn.AmountDueAfter != 2200 || cn.InvoiceNumber != *f.in.Number || !cn.InvoiceDate.Equal(*f.in.FinalizedAt) || !cn.EffectiveAt.Equal(f.now) {
			t.Fatalf("credit note %+v", cn)
		}
		in := f.invoice(t)
		if in.AmountDue != 2200 || in.AmountRemaining != 2200 || in.PrePaymentCreditNotes != 1100 || in.Total != 3300 ||
			in.Status != billing.InvoiceOpen || in.CollectionStatus != billing.CollectionPending {
			t.Fatalf("invoice %+v", in)
		}
		// The live voucher is replaced: canceled here, and at the provider by a task.
		v := new(billing.Voucher)
		if err := db.NewSelect().Model(v).Where("id = ?", f.v.ID).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if v.Status != "canceled" || v.FailureCode != VoucherReplaced {
			t.Fatalf("old voucher %s %s", v.Status, v.FailureCode)
		}
		if got := f.tasks(t, TaskCancelVoucher); len(got) != 1 || got[0] != f.v.ID {
			t.Fatalf("cancel tasks %v", got)
		}
		if got := f.tasks(t, "email"); len(got) != 1 || got[0] != "credit_note:"+cn.ID {
			t.Fatalf("e-mail tasks %v", got)
		}
		// Too much for what is due is refused, and takes no number.
		_, err = f.svc.CreateCreditNote(ctx, CreditNoteParams{Invoice: f.in.ID, Amount: ptr[int64](2201), Outcome: billing.OutcomeReduceAmountDue})
		if billing.ErrorCode(err) != billing.EINVALID {
			t.Fatalf("credit above the amount due: %v", err)
		}
		// The rest closes the invoice.
		cn2, err := f.svc.CreateCreditNote(ctx, CreditNoteParams{Invoice: f.in.ID, Lines: []CreditNoteLineParams{{InvoiceLine: line}}})
		if err != nil {
			t.Fatal(err)
		}
		in = f.invoice(t)
		if cn2.Number != "CN-2027-000002" || in.Status != billing.InvoicePaid || in.AmountRemaining != 0 || in.PrePaymentCreditNotes != 3300 ||
			in.CollectionStatus != billing.CollectionNone || in.PaidAt == nil {
			t.Fatalf("credit note %s, invoice %+v", cn2.Number, in)
		}
		// Paid: only a credit to the balance or a refund recorded elsewhere;
		// here nothing is left to credit at all.
		if _, err := f.svc.CreateCreditNote(ctx, CreditNoteParams{Invoice: f.in.ID, Amount: ptr[int64](1), Outcome: billing.OutcomeCustomerBalance}); billing.ErrorCode(err) != billing.EINVALID {
			t.Fatalf("credit beyond the invoice: %v", err)
		}
		list, more, err := f.svc.ListCreditNotes(ctx, CreditNoteFilter{Invoice: f.in.ID}, store.Page{})
		if err != nil || more || len(list) != 2 || list[0].ID != cn2.ID || len(list[1].Lines) != 1 || *list[1].Lines[0].InvoiceLineID != line {
			t.Fatalf("list: %v %v %+v", err, more, list)
		}
		var events []string
		if err := db.NewSelect().Model((*billing.Event)(nil)).Column("type").Where("object_id IN (?, ?, ?)", f.in.ID, cn.ID, cn2.ID).Order("id").Scan(ctx, &events); err != nil {
			t.Fatal(err)
		}
		want := "[invoice.created invoice.finalized invoice.voucher_canceled invoice.updated credit_note.created invoice.updated invoice.paid credit_note.created]"
		if fmt.Sprint(events) != want {
			t.Errorf("events %v, want %s", events, want)
		}
	})
}

func TestCreateCreditNoteToBalance(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		cn, err := f.svc.CreateCreditNote(ctx, CreditNoteParams{Invoice: f.in.ID, Amount: ptr[int64](550), Outcome: billing.OutcomeCustomerBalance})
		if err != nil {
			t.Fatal(err)
		}
		if cn.Tax != 50 || cn.TaxBehavior != billing.TaxInclusive || cn.AmountDueAfter != 3300 {
			t.Fatalf("credit note %+v", cn)
		}
		in := f.invoice(t)
		if in.AmountDue != 3300 || in.PostPaymentCreditNotes != 550 || in.CollectionStatus != billing.CollectionActive {
			t.Fatalf("invoice %+v", in)
		}
		cus := new(billing.Customer)
		if err := db.NewSelect().Model(cus).Where("id = ?", in.CustomerID).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if cus.Balance != -550 {
			t.Fatalf("balance %d", cus.Balance)
		}
		var bt billing.BalanceTransaction
		if err := db.NewSelect().Model(&bt).Where("customer_id = ?", cus.ID).Scan(ctx); err != nil || bt.Type != "credit_note" || bt.Amount != -550 {
			t.Fatalf("balance transaction %+v %v", bt, err)
		}
		// Out of band: nothing else changes.
		if _, err := f.svc.CreateCreditNote(ctx, CreditNoteParams{Invoice: f.in.ID, Amount: ptr[int64](110), Outcome: billing.OutcomeOutOfBand,
			EffectiveAt: ptr(f.now.Add(-48 * time.Hour))}); err != nil {
			t.Fatal(err)
		}
		if in := f.invoice(t); in.PostPaymentCreditNotes != 660 || in.AmountRemaining != 3300 {
			t.Fatalf("invoice %+v", in)
		}
		// A refund date in the future, or before the sale, is refused.
		for _, at := range []time.Time{f.now.Add(time.Hour), f.in.FinalizedAt.Add(-time.Hour)} {
			_, err := f.svc.CreateCreditNote(ctx, CreditNoteParams{Invoice: f.in.ID, Amount: ptr[int64](1), Outcome: billing.OutcomeOutOfBand, EffectiveAt: &at})
			if billing.ErrorParam(err) != "effective_at" {
				t.Errorf("effective_at %v: %v", at, err)
			}
		}
		// Drafts and void invoices are not credited.
		if _, err := f.svc.Void(ctx, f.in.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.CreateCreditNote(ctx, CreditNoteParams{Invoice: f.in.ID, Amount: ptr[int64](1)}); billing.ErrorCode(err) != billing.ECONFLICT {
			t.Fatalf("credit note on a void invoice: %v", err)
		}
	})
}

// TestCreditNoteNumbersGapless issues credit notes concurrently on several
// invoices, some refused: the numbers issued are 1…n without a gap.
func TestCreditNoteNumbersGapless(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var fs []*fixture
		for range 4 {
			fs = append(fs, newFixture(t, db))
		}
		var mu sync.Mutex
		var numbers []string
		var wg sync.WaitGroup
		for i := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f := fs[i%len(fs)]
				amount := int64(1100)
				if i%3 == 2 {
					amount = 99999 // refused
				}
				for {
					cn, err := f.svc.CreateCreditNote(ctx, CreditNoteParams{Invoice: f.in.ID, Amount: &amount, Outcome: billing.OutcomeOutOfBand})
					if billing.ErrorCode(err) == billing.EUNAVAILABLE {
						continue // a busy database: retry, as a client would
					}
					if err == nil {
						mu.Lock()
						numbers = append(numbers, cn.Number)
						mu.Unlock()
					}
					return
				}
			}()
		}
		wg.Wait()
		sort.Strings(numbers)
		if len(numbers) != 8 {
			t.Fatalf("%d credit notes issued, want 8: %v", len(numbers), numbers)
		}
		for i, n := range numbers {
			if want := fmt.Sprintf("CN-2027-%06d", i+1); n != want {
				t.Fatalf("numbers %v: gap at %s", numbers, want)
			}
		}
	})
}
