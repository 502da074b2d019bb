package export_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/japanese"

	"billingd/billing"
	"billingd/billing/export"
	"billingd/billing/store"
	"billingd/billing/store/storetest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.DropTemplates()
	os.Exit(code)
}

var jstZone = time.FixedZone("JST", 9*3600)

// jst parses a JST wall time and returns it in UTC, as the store keeps it.
func jst(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, jstZone)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func ptr[T any](v T) *T { return &v }

func day(s string) time.Time {
	t, err := export.ParseDate("day", s, jstZone)
	if err != nil {
		panic(err)
	}
	return t
}

// taxes builds a breakdown: rate, taxable, tax triples.
func taxes(xs ...any) []billing.TaxAmount {
	var out []billing.TaxAmount
	for i := 0; i+2 < len(xs); i += 3 {
		r := xs[i].(billing.TaxRate)
		out = append(out, billing.TaxAmount{Rate: r, Percent: r.Percent(), TaxableAmount: int64(xs[i+1].(int)), Tax: int64(xs[i+2].(int))})
	}
	return out
}

// fixture is a few weeks of billing written directly with fixed ids and
// times: every kind of journal event and the text that tests quoting and
// Shift_JIS (a wave dash, a comma and quotes, a line break).
type fixture struct {
	customers []*billing.Customer
	invoices  []*billing.Invoice
	vouchers  []*billing.Voucher
	balance   []*billing.BalanceTransaction
	credits   []*billing.CreditNote
	bt        func(id, cus, typ string, amount int64, in *billing.Invoice, at string)
}

func newFixture() *fixture {
	f := &fixture{}
	created := jst("2026-12-01 00:00:00")
	for _, c := range []struct{ id, name string }{
		{"cus_a", "山田〜太郎"},
		{"cus_b", `Acme, "Japan" K.K.`},
		{"cus_c", "佐藤 花子"},
		{"cus_d", "改行\n株式会社 ¥"},
	} {
		f.customers = append(f.customers, &billing.Customer{ID: c.id, Name: c.name, Email: c.id + "@example.com", Language: "ja", CreatedAt: created})
	}
	name := map[string]string{}
	for _, c := range f.customers {
		name[c.ID] = c.Name
	}
	n := 0
	inv := func(id, cus string, finalized string, behavior billing.TaxBehavior, bd []billing.TaxAmount, status billing.InvoiceStatus) *billing.Invoice {
		in := &billing.Invoice{ID: id, Status: status, CustomerID: cus, BillingReason: "manual", Currency: "jpy", TaxBehavior: behavior,
			DaysUntilDue: 10, TaxBreakdown: bd, CustomerName: name[cus], CustomerEmail: cus + "@example.com", IssuerName: "株式会社テスト",
			IssuerRegistrationNumber: "T4011001098993", CollectionStatus: billing.CollectionNone, PayToken: "tok_" + id, CreatedAt: created}
		for _, t := range bd {
			in.Subtotal += t.TaxableAmount
			in.Tax += t.Tax
		}
		in.Total = in.Subtotal + in.Tax
		if behavior == billing.TaxInclusive {
			in.Subtotal = in.Total
		}
		in.AmountDue, in.AmountRemaining = in.Total, in.Total
		if finalized != "" {
			n++
			in.Number = ptr(fmt.Sprintf("INV-2027-%06d", n))
			ft := jst(finalized)
			in.FinalizedAt = &ft
			in.DueDate = ptr(jst(finalized[:10]+" 23:59:59").AddDate(0, 0, 10))
		}
		f.invoices = append(f.invoices, in)
		return in
	}
	voucher := func(id string, in *billing.Invoice, part int, provider string, amount int64, fee, vat *int64, paidAt string) *billing.Voucher {
		v := &billing.Voucher{ID: id, InvoiceID: in.ID, Part: part, Provider: provider, ProviderID: "chrg_" + id, Status: "successful",
			Amount: amount, Fee: fee, FeeVAT: vat, CreatedAt: *in.FinalizedAt, UpdatedAt: jst(paidAt)}
		if fee != nil {
			v.Net = ptr(amount - *fee - *vat)
		}
		v.PaidAt = ptr(jst(paidAt))
		f.vouchers = append(f.vouchers, v)
		return v
	}
	bal := map[string]int64{}
	f.bt = func(id, cus, typ string, amount int64, in *billing.Invoice, at string) {
		bal[cus] += amount
		f.balance = append(f.balance, &billing.BalanceTransaction{ID: id, CustomerID: cus, Type: typ, Amount: amount, EndingBalance: bal[cus],
			InvoiceID: &in.ID, Description: "¥" + strconv.FormatInt(amount, 10) + " " + typ, CreatedAt: jst(at)})
	}
	bt := f.bt
	// credit issues a credit note on in with the breakdown bd (in in's tax
	// behavior) and applies its outcome, as invoice.CreateCreditNote does.
	credit := func(id string, in *billing.Invoice, outcome billing.CreditNoteOutcome, reason billing.CreditNoteReason, at, effective string, bd []billing.TaxAmount) {
		cn := &billing.CreditNote{ID: id, Number: "CN-2027-0000" + id[3:], InvoiceID: in.ID, CustomerID: in.CustomerID,
			Status: "issued", Reason: reason, Outcome: outcome, Memo: "返品, \"一部\"", Currency: "jpy", TaxBehavior: in.TaxBehavior, TaxBreakdown: bd,
			InvoiceNumber: *in.Number, InvoiceDate: *in.FinalizedAt, CustomerName: in.CustomerName, CustomerEmail: in.CustomerEmail,
			IssuerName: in.IssuerName, IssuerRegistrationNumber: in.IssuerRegistrationNumber, EffectiveAt: jst(effective), CreatedAt: jst(at)}
		for _, t := range bd {
			cn.Subtotal += t.TaxableAmount
			cn.Tax += t.Tax
		}
		cn.Total = cn.Subtotal + cn.Tax
		if in.TaxBehavior == billing.TaxInclusive {
			cn.Subtotal = cn.Total
		}
		cn.AmountDueBefore = in.AmountRemaining
		switch outcome {
		case billing.OutcomeReduceAmountDue:
			in.PrePaymentCreditNotes += cn.Total
			in.AmountDue -= cn.Total
			in.AmountRemaining -= cn.Total
		case billing.OutcomeCustomerBalance:
			in.PostPaymentCreditNotes += cn.Total
			f.bt("cbtxn_"+id, in.CustomerID, "credit_note", -cn.Total, in, at)
		default:
			in.PostPaymentCreditNotes += cn.Total
		}
		cn.AmountDueAfter = in.AmountRemaining
		f.credits = append(f.credits, cn)
	}
	paid := func(in *billing.Invoice, amount int64, at string) {
		in.AmountPaid += amount
		in.AmountRemaining = max(in.AmountDue-in.AmountPaid, 0)
		if in.AmountRemaining == 0 {
			in.Status, in.PaidAt = billing.InvoicePaid, ptr(jst(at))
		}
	}

	// The first instant of the range, two rates, paid with a fee.
	in1 := inv("in_01", "cus_a", "2027-01-01 00:00:00", billing.TaxExclusive, taxes(billing.TaxStandard, 5940, 594, billing.TaxReduced, 1080, 86), billing.InvoiceOpen)
	voucher("ch_01", in1, 0, "sandbox", 7700, ptr[int64](189), ptr[int64](18), "2027-01-05 10:00:00")
	paid(in1, 7700, "2027-01-05 10:00:00")
	// Below the Konbini minimum: carried to the next invoice.
	in2 := inv("in_02", "cus_b", "2027-01-02 09:00:00", billing.TaxExclusive, taxes(billing.TaxExempt, 150, 0), billing.InvoicePaid)
	bt("cbtxn_01", "cus_b", "carry_over", 150, in2, "2027-01-02 09:00:01")
	in2.CarriedToBalance, in2.AmountRemaining, in2.PaidAt = 150, 0, ptr(jst("2027-01-02 09:00:01"))
	// Tax-inclusive, with the carried amount applied, paid by two vouchers
	// (one from a provider that reports no fee).
	in3 := inv("in_03", "cus_b", "2027-01-10 12:00:00", billing.TaxInclusive, taxes(billing.TaxStandard, 10000, 1000), billing.InvoiceOpen)
	in3.StartingBalance, in3.AmountDue, in3.AmountRemaining = 150, 11150, 11150
	bt("cbtxn_02", "cus_b", "applied_to_invoice", -150, in3, "2027-01-10 12:00:00")
	voucher("ch_02", in3, 1, "sandbox", 5575, ptr[int64](178), ptr[int64](17), "2027-01-20 15:30:00")
	voucher("ch_03", in3, 2, "stripe", 5575, nil, nil, "2027-01-21 08:00:00")
	paid(in3, 11150, "2027-01-21 08:00:00")
	// Voided, then paid anyway: the payment becomes a credit.
	in4 := inv("in_04", "cus_c", "2027-01-15 10:00:00", billing.TaxExclusive, taxes(billing.TaxStandard, 3000, 300), billing.InvoiceVoid)
	in4.VoidedAt = ptr(jst("2027-01-20 10:00:00"))
	voucher("ch_04", in4, 0, "sandbox", 3300, ptr[int64](167), ptr[int64](16), "2027-01-22 11:00:00")
	bt("cbtxn_03", "cus_c", "excess_payment", -3300, in4, "2027-01-22 11:00:00")
	// Paid entirely by that credit at finalization.
	in5 := inv("in_05", "cus_c", "2027-01-25 10:00:00", billing.TaxExclusive, taxes(billing.TaxStandard, 2000, 200), billing.InvoicePaid)
	in5.StartingBalance, in5.AmountDue, in5.AmountRemaining, in5.PaidAt = -2200, 0, 0, in5.FinalizedAt
	bt("cbtxn_04", "cus_c", "applied_to_invoice", 2200, in5, "2027-01-25 10:00:00")
	// Written off, then paid in full: recovered.
	in6 := inv("in_06", "cus_d", "2027-01-05 10:00:00", billing.TaxExclusive, taxes(billing.TaxStandard, 3000, 300, billing.TaxReduced, 2000, 160), billing.InvoiceOpen)
	in6.MarkedUncollectibleAt = ptr(jst("2027-01-31 18:00:00"))
	voucher("ch_05", in6, 0, "sandbox", 5460, ptr[int64](177), ptr[int64](17), "2027-02-03 09:00:00")
	paid(in6, 5460, "2027-02-03 09:00:00")
	// Written off, then voided.
	in7 := inv("in_07", "cus_a", "2027-01-06 10:00:00", billing.TaxExclusive, taxes(billing.TaxStandard, 1000, 100), billing.InvoiceVoid)
	in7.MarkedUncollectibleAt, in7.VoidedAt = ptr(jst("2027-01-31 18:00:00")), ptr(jst("2027-02-10 10:00:00"))
	// Half paid, written off, the other half paid later.
	in8 := inv("in_08", "cus_d", "2027-01-08 10:00:00", billing.TaxExclusive, taxes(billing.TaxStandard, 30000, 3000), billing.InvoiceOpen)
	voucher("ch_06", in8, 1, "sandbox", 16500, ptr[int64](233), ptr[int64](23), "2027-01-12 10:00:00")
	paid(in8, 16500, "2027-01-12 10:00:00")
	in8.MarkedUncollectibleAt = ptr(jst("2027-01-31 18:00:00"))
	voucher("ch_07", in8, 2, "sandbox", 16500, ptr[int64](233), ptr[int64](23), "2027-02-05 10:00:00")
	paid(in8, 16500, "2027-02-05 10:00:00")
	// Open, and one open on the last instant of the range.
	in9 := inv("in_09", "cus_c", "2027-02-01 09:00:00", billing.TaxExclusive, taxes(billing.TaxStandard, 9000, 900), billing.InvoiceOpen)
	inv("in_10", "cus_a", "2027-02-28 23:59:59", billing.TaxExclusive, taxes(billing.TaxExempt, 500, 0), billing.InvoiceOpen)
	// Credit notes: one of each outcome on the invoices above (reduce the
	// amount due of an open one; credit the balance with both rates of a
	// paid one, after the refund date; a refund made elsewhere on a
	// tax-inclusive one), and two on an invoice credited before its
	// write-off, credited after it, recovered in part and voided.
	in14 := inv("in_14", "cus_a", "2027-01-12 10:00:00", billing.TaxExclusive, taxes(billing.TaxStandard, 4000, 400, billing.TaxReduced, 1000, 80), billing.InvoiceVoid)
	credit("cn_05", in14, billing.OutcomeReduceAmountDue, billing.ReasonOrderChange, "2027-01-20 09:00:00", "2027-01-20 09:00:00", taxes(billing.TaxStandard, 1000, 100))
	in14.MarkedUncollectibleAt = ptr(jst("2027-01-31 18:00:00"))
	credit("cn_04", in14, billing.OutcomeReduceAmountDue, billing.ReasonProductUnsatisfactory, "2027-02-12 09:00:00", "2027-02-12 09:00:00", taxes(billing.TaxReduced, 1000, 80))
	voucher("ch_08", in14, 0, "sandbox", 2200, ptr[int64](167), ptr[int64](16), "2027-02-14 10:00:00")
	paid(in14, 2200, "2027-02-14 10:00:00")
	in14.VoidedAt = ptr(jst("2027-02-20 10:00:00"))
	credit("cn_01", in9, billing.OutcomeReduceAmountDue, billing.ReasonOrderChange, "2027-02-10 11:00:00", "2027-02-10 11:00:00", taxes(billing.TaxStandard, 3000, 300))
	credit("cn_02", in1, billing.OutcomeCustomerBalance, billing.ReasonProductUnsatisfactory, "2027-01-20 12:00:00", "2027-01-18 00:00:00",
		taxes(billing.TaxStandard, 1000, 100, billing.TaxReduced, 1080, 86))
	credit("cn_03", in3, billing.OutcomeOutOfBand, billing.ReasonDuplicate, "2027-02-01 10:00:00", "2027-01-31 15:00:00", taxes(billing.TaxStandard, 2000, 200))
	// A change from a reduced-rate plan to a standard one: the 8 % rate is a
	// credit (negative) on an invoice that is a charge overall; written off
	// and voided.
	in15 := inv("in_15", "cus_b", "2027-02-15 10:00:00", billing.TaxExclusive, taxes(billing.TaxStandard, 5000, 500, billing.TaxReduced, -1000, -80), billing.InvoiceVoid)
	in15.MarkedUncollectibleAt, in15.VoidedAt = ptr(jst("2027-02-20 18:00:00")), ptr(jst("2027-02-25 10:00:00"))
	// A downgrade's proration credit: consideration given back, with its
	// tax, held on the balance.
	bal["cus_a"] -= 1100
	f.balance = append(f.balance, &billing.BalanceTransaction{ID: "cbtxn_05", CustomerID: "cus_a", Type: "proration_credit", Amount: -1100,
		EndingBalance: bal["cus_a"], Description: "Credit of ¥1100 (tax included) for changes to subscription sub_1.",
		TaxBreakdown: taxes(billing.TaxStandard, -1000, -100), CreatedAt: jst("2027-02-05 12:00:00")})
	// Outside the range: a draft, one just before and one just after.
	inv("in_11", "cus_a", "", billing.TaxExclusive, taxes(billing.TaxStandard, 100, 10), billing.InvoiceDraft)
	inv("in_12", "cus_a", "2026-12-31 23:59:59", billing.TaxExclusive, taxes(billing.TaxStandard, 100, 10), billing.InvoiceOpen)
	inv("in_13", "cus_a", "2027-03-01 00:00:00", billing.TaxExclusive, taxes(billing.TaxStandard, 100, 10), billing.InvoiceOpen)
	for _, c := range f.customers {
		c.Balance = bal[c.ID]
	}
	return f
}

func (f *fixture) insert(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	for _, m := range []any{&f.customers, &f.invoices, &f.vouchers, &f.balance, &f.credits} {
		if reflect.ValueOf(m).Elem().Len() == 0 {
			continue
		}
		if _, err := db.NewInsert().Model(m).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func run(t *testing.T, db *store.DB, o export.Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := export.Write(context.Background(), db, &buf, o); err != nil {
		t.Fatalf("%s %s: %v", o.Kind, o.Format, err)
	}
	return buf.Bytes()
}

func options(kind export.Kind, format export.Format) export.Options {
	return export.Options{Kind: kind, Format: format, From: day("2027-01-01"), To: day("2027-02-28"), Location: jstZone}
}

// TestGolden compares every kind in every format with testdata/, on both
// databases. Run with -update to rewrite the files.
func TestGolden(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		newFixture().insert(t, db)
		for _, k := range export.Kinds {
			for _, f := range export.Formats {
				t.Run(string(k)+"_"+string(f), func(t *testing.T) {
					got := run(t, db, options(k, f))
					path := filepath.Join("testdata", string(k)+"-"+string(f)+".csv")
					if *update && db.Engine == store.SQLite {
						if err := os.WriteFile(path, got, 0o644); err != nil {
							t.Fatal(err)
						}
						return
					}
					want, err := os.ReadFile(path)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Errorf("%s differs from the golden file (run with -update after checking):\n%s", path, utf8Text(got, f))
					}
				})
			}
		}
	})
}

func utf8Text(b []byte, f export.Format) string {
	if f == export.CSV {
		return string(b)
	}
	s, err := japanese.ShiftJIS.NewDecoder().Bytes(b)
	if err != nil {
		return fmt.Sprintf("(not Shift_JIS: %v) %q", err, b)
	}
	return string(s)
}

// readCSV parses an export, decoding Shift_JIS.
func readCSV(t *testing.T, b []byte, f export.Format) [][]string {
	t.Helper()
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(utf8Text(b, f), "\uFEFF")))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// journalTotals reads a csv journal: it checks that every entry balances
// and returns each account's debits minus credits.
func journalTotals(t *testing.T, b []byte) map[string]int64 {
	t.Helper()
	recs := readCSV(t, b, export.CSV)
	col := map[string]int{}
	for i, c := range recs[0] {
		col[c] = i
	}
	net := map[string]int64{}
	entries := map[string][2]int64{}
	for _, r := range recs[1:] {
		e := entries[r[col["entry"]]]
		if a := r[col["debit_account"]]; a != "" {
			n := atoi(t, r[col["debit_amount"]])
			net[a] += n
			e[0] += n
		}
		if a := r[col["credit_account"]]; a != "" {
			n := atoi(t, r[col["credit_amount"]])
			net[a] -= n
			e[1] += n
		}
		entries[r[col["entry"]]] = e
	}
	for id, e := range entries {
		if e[0] != e[1] || e[0] == 0 {
			t.Errorf("entry %s: debits %d, credits %d", id, e[0], e[1])
		}
	}
	return net
}

// TestJournalBalancesAndMatchesTheData checks the fixture's journal: each
// entry balances and the accounts hold what the invoices say.
func TestJournalBalancesAndMatchesTheData(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture()
		f.insert(t, db)
		net := journalTotals(t, run(t, db, options(export.Journal, export.CSV)))
		want := map[string]int64{
			// Open invoices (in_09 less its credit note, in_10); the voided
			// ones owe nothing, but in_14 was paid in part before its void.
			"売掛金": 9900 - 3300 + 500 - 2200,
			// Finalized 7700+150+11000+3300+2200+5460+1100+33000+9900+500+5480, voided 3300 and 1100
			// and what in_14's credit notes left of it, the credit notes, and the proration credit.
			"売上高": -(7700 + 150 + 11000 + 3300 + 2200 + 5460 + 1100 + 33000 + 9900 + 500 + 5480 - 3300 - 1100 - (5480 - 1100 - 1080) -
				(3300 + 2266 + 2200 + 1100 + 1080) - 1100),
			// Gross payments less fees and their VAT.
			"預け金":   7700 - 207 + 5575 - 195 + 5575 + 3300 - 183 + 5460 - 194 + 16500 - 256 + 16500 - 256 + 2200 - 183,
			"支払手数料": 207 + 195 + 183 + 194 + 256 + 256 + 183,
			// The customers' balances (cus_c's credit, cus_a's credit note and proration credit).
			"前受金": -1100 - 2266 - 1100,
			// The refund made elsewhere.
			"未払金": -2200,
			// Written off: in_06 and in_08 (both recovered later, as income); in_07's write-off is reversed by its void;
			// in_14's less its credit note after the write-off, recovered in part, the rest reversed by its void.
			"貸倒損失":    5460 + 16500 + 2200,
			"償却債権取立益": -(5460 + 16500 + 2200),
		}
		for acc, n := range want {
			if net[acc] != n {
				t.Errorf("%s: %d, want %d", acc, net[acc], n)
			}
		}
		var sum int64
		for _, n := range net {
			sum += n
		}
		if sum != 0 {
			t.Errorf("the journal's debits and credits differ by %d", sum)
		}
		if len(net) != len(want) {
			t.Errorf("accounts %v", net)
		}
	})
}

// TestTablesMatchTheData checks the csv tables' totals against the rows
// inserted, and the range's edges.
func TestTablesMatchTheData(t *testing.T) {
	f := newFixture()
	db := storetest.Open(t, store.SQLite)
	f.insert(t, db)
	start, end := jst("2027-01-01 00:00:00"), jst("2027-03-01 00:00:00")
	in := func(p *time.Time) bool { return p != nil && !p.Before(start) && p.Before(end) }

	var wantN, wantTotal, wantTax10 int64
	for _, i := range f.invoices {
		if in(i.FinalizedAt) {
			wantN++
			wantTotal += i.Total
			for _, b := range i.TaxBreakdown {
				if b.Rate == billing.TaxStandard {
					wantTax10 += b.Tax
				}
			}
		}
	}
	recs := readCSV(t, run(t, db, options(export.Invoices, export.CSV)), export.CSV)
	var total, tax10 int64
	for _, r := range recs[1:] {
		total += atoi(t, r[15])
		tax10 += atoi(t, r[9])
	}
	if int64(len(recs)-1) != wantN || total != wantTotal || tax10 != wantTax10 {
		t.Errorf("invoices: %d rows total %d tax10 %d, want %d, %d, %d", len(recs)-1, total, tax10, wantN, wantTotal, wantTax10)
	}
	if recs[1][0] != "in_01" || recs[len(recs)-1][0] != "in_10" {
		t.Errorf("first %s, last %s: the range's first and last instants are included", recs[1][0], recs[len(recs)-1][0])
	}

	var gross, fees, nets int64
	for _, v := range f.vouchers {
		gross += v.Amount
		if v.Fee != nil {
			fees += *v.Fee + *v.FeeVAT
			nets += *v.Net
		} else {
			nets += v.Amount
		}
	}
	recs = readCSV(t, run(t, db, options(export.Payments, export.CSV)), export.CSV)
	var g, fe, ne int64
	for _, r := range recs[1:] {
		g += atoi(t, r[9])
		fe += atoi(t, r[10]) + atoi(t, r[11])
		if r[12] == "" {
			ne += atoi(t, r[9])
		}
		ne += atoi(t, r[12])
	}
	if g != gross || fe != fees || ne != nets || len(recs)-1 != len(f.vouchers) {
		t.Errorf("payments: gross %d fees %d net %d rows %d; want %d %d %d %d", g, fe, ne, len(recs)-1, gross, fees, nets, len(f.vouchers))
	}

	recs = readCSV(t, run(t, db, options(export.Balance, export.CSV)), export.CSV)
	var moved int64
	for _, r := range recs[1:] {
		moved += atoi(t, r[5])
	}
	if moved != -1100-2266-1100 || len(recs)-1 != len(f.balance) {
		t.Errorf("balance: moved %d in %d rows", moved, len(recs)-1)
	}

	recs = readCSV(t, run(t, db, options(export.CreditNotes, export.CSV)), export.CSV)
	var credited, wantCredited, creditTax, wantCreditTax int64
	for _, c := range f.credits {
		wantCredited += c.Total
		wantCreditTax += c.Tax
	}
	for _, r := range recs[1:] {
		credited += atoi(t, r[19])
		creditTax += atoi(t, r[13]) + atoi(t, r[15])
		if atoi(t, r[12])+atoi(t, r[13])+atoi(t, r[14])+atoi(t, r[15])+atoi(t, r[16]) != atoi(t, r[19]) {
			t.Errorf("credit note %s: its rates do not add up to its total", r[0])
		}
	}
	if credited != wantCredited || creditTax != wantCreditTax || len(recs)-1 != len(f.credits) {
		t.Errorf("credit notes: %d rows, total %d, tax %d; want %d, %d, %d", len(recs)-1, credited, creditTax, len(f.credits), wantCredited, wantCreditTax)
	}

	// One day: only what happened on it.
	o := options(export.Invoices, export.CSV)
	o.From, o.To = day("2027-01-05"), day("2027-01-05")
	if recs := readCSV(t, run(t, db, o), export.CSV); len(recs) != 2 || recs[1][0] != "in_06" {
		t.Errorf("2027-01-05: %v", recs)
	}
}

// TestShiftJISRoundTrip encodes every look-alike and the common scripts and
// decodes them back: the text survives with only the documented mapping.
func TestShiftJISRoundTrip(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	var src, want strings.Builder
	src.WriteString("ｶﾅ カナ 漢字 髙 ① Ⅰ ～ ― ∥ ￥ ")
	want.WriteString("ｶﾅ カナ 漢字 髙 ① Ⅰ ～ ― ∥ ￥ ")
	for from, to := range export.LookAlikes {
		src.WriteRune(from)
		want.WriteRune(to)
	}
	f := &fixture{customers: []*billing.Customer{{ID: "cus_x", Name: src.String(), Email: "x@example.com", CreatedAt: jst("2027-01-01 00:00:00")}}}
	f.invoices = []*billing.Invoice{{ID: "in_x", Number: ptr("INV-X"), Status: billing.InvoiceOpen, CustomerID: "cus_x", BillingReason: "manual",
		Currency: "jpy", TaxBehavior: billing.TaxExclusive, Subtotal: 1000, Tax: 100, Total: 1100, AmountDue: 1100, AmountRemaining: 1100,
		TaxBreakdown: taxes(billing.TaxStandard, 1000, 100), CustomerName: src.String(), PayToken: "t", CreatedAt: jst("2027-01-01 00:00:00"),
		FinalizedAt: ptr(jst("2027-01-03 00:00:00")), DueDate: ptr(jst("2027-01-13 00:00:00"))}}
	f.insert(t, db)
	for _, format := range []export.Format{export.Yayoi, export.Freee, export.MoneyForward} {
		out := run(t, db, options(export.Invoices, format))
		if !strings.Contains(utf8Text(out, format), want.String()) {
			t.Errorf("%s: %q does not contain %q", format, utf8Text(out, format), want.String())
		}
	}
}

// TestShiftJISFailureNamesTheRow: a character with no Shift_JIS form and no
// look-alike fails the export, naming the row, its invoice and customer; the
// csv (UTF-8) export of the same data works.
func TestShiftJISFailureNamesTheRow(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	f := newFixture()
	f.customers[2].Name = "佐藤 花子 😀"
	for _, in := range f.invoices {
		if in.CustomerID == "cus_c" {
			in.CustomerName = f.customers[2].Name
		}
	}
	f.insert(t, db)
	err := export.Write(context.Background(), db, new(bytes.Buffer), options(export.Journal, export.Yayoi))
	msg := billing.ErrorMessage(err)
	if billing.ErrorCode(err) != billing.EINVALID || billing.ErrorParam(err) != "format" ||
		!strings.Contains(msg, "row ") || !strings.Contains(msg, "in_04") || !strings.Contains(msg, "INV-2027-000004") ||
		!strings.Contains(msg, "U+1F600") || !strings.Contains(msg, "摘要") {
		t.Fatalf("error %v", err)
	}
	// The row named is the one that failed: the rows before it were written.
	var buf bytes.Buffer
	export.Write(context.Background(), db, &buf, options(export.Journal, export.Yayoi)) //nolint:errcheck
	rows := bytes.Count(buf.Bytes(), []byte("\r\n"))
	if !strings.Contains(msg, fmt.Sprintf("row %d ", rows+1)) {
		t.Errorf("%d rows written before the failure; error %q", rows, msg)
	}
	run(t, db, options(export.Journal, export.CSV))
}

func TestOptionsErrorsNameTheParam(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	for _, c := range []struct {
		name  string
		edit  func(*export.Options)
		param string
	}{
		{"ErrKind", func(o *export.Options) { o.Kind = "ledger" }, "kind"},
		{"ErrFormat", func(o *export.Options) { o.Format = "xls" }, "format"},
		{"ErrNoFrom", func(o *export.Options) { o.From = time.Time{} }, "from"},
		{"ErrToBeforeFrom", func(o *export.Options) { o.To = day("2026-12-31") }, "to"},
		{"ErrBOMShiftJIS", func(o *export.Options) { o.BOM = true; o.Format = export.Yayoi }, "bom"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := options(export.Journal, export.CSV)
			c.edit(&o)
			err := export.Write(context.Background(), db, new(bytes.Buffer), o)
			if billing.ErrorCode(err) != billing.EINVALID || billing.ErrorParam(err) != c.param {
				t.Fatalf("error %v, want EINVALID naming %s", err, c.param)
			}
		})
	}
	if _, err := export.ParseDate("from", "2027-13-01", jstZone); billing.ErrorParam(err) != "from" {
		t.Errorf("bad date: %v", err)
	}
}

func TestAccountSettings(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	newFixture().insert(t, db)
	env := map[string]string{"BILLING_ACCOUNT_RECEIVABLE": "売掛金", "BILLING_ACCOUNT_RECEIVABLE_SUB": "コンビニ",
		"BILLING_ACCOUNT_REFUND": "普通預金", "BILLING_TAX_SALES_RETURN_8": "売上返還8%（テスト）",
		"BILLING_ACCOUNT_PROVIDER": "未収入金", "BILLING_ACCOUNT_PROVIDER_SUB": "{provider}", "BILLING_TAX_SALES_10": "課税売上10%（テスト）"}
	o := options(export.Journal, export.CSV)
	o.Accounts = export.AccountsFromEnv(func(k string) string { return env[k] })
	o.BOM = true
	out := run(t, db, o)
	if !bytes.HasPrefix(out, []byte("\uFEFF")) {
		t.Error("no BOM")
	}
	net := journalTotals(t, out)
	if net["未収入金"] == 0 || net["預け金"] != 0 || net["普通預金"] != -2200 || net["未払金"] != 0 {
		t.Errorf("provider account not renamed: %v", net)
	}
	s := string(out)
	for _, want := range []string{",未収入金,sandbox,", ",未収入金,stripe,", ",売掛金,コンビニ,", "課税売上10%（テスト）", ",売上返還8%（テスト）,1166,86,"} {
		if !strings.Contains(s, want) {
			t.Errorf("export lacks %q", want)
		}
	}
	if !strings.Contains(o.Accounts.Env(), "BILLING_ACCOUNT_RECEIVABLE_SUB=コンビニ\n") {
		t.Errorf("Env: %s", o.Accounts.Env())
	}
}

func TestHandler(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	newFixture().insert(t, db)
	var failed error
	h := export.Handler(db, export.Options{Location: jstZone}, func(w http.ResponseWriter, r *http.Request, err error) {
		failed = err
		http.Error(w, billing.ErrorMessage(err), http.StatusBadRequest)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /v1/exports/{kind}", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/exports/journal?format=yayoi&from=2027-01-01&to=2027-02-28")
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body) //nolint:errcheck
	resp.Body.Close()
	want, _ := os.ReadFile("testdata/journal-yayoi.csv")
	if resp.StatusCode != 200 || !bytes.Equal(body.Bytes(), want) || resp.Header.Get("Content-Type") != "text/csv; charset=Shift_JIS" ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "journal-yayoi-20270101-20270228.csv") {
		t.Fatalf("%d %v %q", resp.StatusCode, resp.Header, body.String())
	}
	for q, param := range map[string]string{
		"/v1/exports/ledger?format=csv&from=2027-01-01&to=2027-01-31":  "kind",
		"/v1/exports/journal?format=xls&from=2027-01-01&to=2027-01-31": "format",
		"/v1/exports/journal?from=2027-01-01":                          "to",
		"/v1/exports/journal?from=2027-01-01&to=2027-01-31&bom=maybe":  "bom",
	} {
		failed = nil
		resp, err := http.Get(srv.URL + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 || billing.ErrorParam(failed) != param {
			t.Errorf("%s: %d %v, want EINVALID naming %s", q, resp.StatusCode, failed, param)
		}
	}
}
