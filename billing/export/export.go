package export

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"billingd/billing"
	"billingd/billing/store"
)

// Write writes the export opts describes to w, streaming it from db. Errors
// in opts are *billing.Error with code EINVALID naming the parameter (kind,
// format, from, to, bom); text that the format's encoding cannot hold fails
// with EINVALID naming the row. Rows written before an error stay written:
// callers that must not leave a partial file write to a temporary one (as
// Handler does).
func Write(ctx context.Context, db *store.DB, w io.Writer, opts Options) error {
	o, err := opts.normalize()
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	t := &table{w: bw}
	if o.Format != CSV {
		t.sjis = newSJIS()
	}
	if o.BOM {
		bw.WriteString("\uFEFF")
	}
	start, end := o.bounds()
	if o.Format == CSV && o.Kind != Journal {
		err = writeTable(ctx, db, t, o, start, end)
	} else {
		err = writeJournal(ctx, db, t, o, start, end)
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// writeJournal writes the entries of o.Kind in an accounting format (or the
// csv journal).
func writeJournal(ctx context.Context, db *store.DB, t *table, o Options, start, end time.Time) error {
	var r renderer
	switch {
	case o.Format == CSV:
		r = csvJournal{o.Location}
	case o.Format == Yayoi:
		r = yayoi{o.Location}
	case o.Format == MoneyForward:
		r = moneyForward{o.Location}
	case o.Format == Freee && (o.Kind == Invoices || o.Kind == Payments):
		r = freeeDeals{o.Location, &o.Accounts}
	default:
		r = freeeJournal{o.Location}
	}
	t.cols = r.columns()
	if r.header() {
		t.what = "header"
		if err := t.row(t.cols...); err != nil {
			return err
		}
	}
	b := &builder{acc: &o.Accounts}
	seq := 0
	q, args := eventsQuery(o.Kind, start, end)
	return stream(ctx, db, q, args, func(row *eventRow) error {
		e, err := b.build(row)
		if err != nil || len(e.Lines) == 0 {
			return err
		}
		seq++
		t.what = describe(e)
		return r.entry(t, e, seq)
	})
}

// describe names an entry's source for error messages.
func describe(e *entry) string {
	s := e.Type + " " + e.Ref
	if e.Doc != "" {
		s += " " + e.Doc
	}
	if e.Number != "" {
		s += ", invoice " + e.Number
	}
	if e.CustomerName != "" {
		s += ", customer " + strconv.Quote(e.CustomerName)
	}
	return s
}

// Column names of the csv tables.
var (
	invoiceColumns = []string{"invoice_id", "number", "finalized_at", "due_date", "customer_id", "customer_name", "status",
		"tax_behavior", "taxable_10", "tax_10", "taxable_8", "tax_8", "exempt", "subtotal", "tax", "total",
		"starting_balance", "amount_due", "amount_paid", "amount_remaining", "carried_to_balance",
		"pre_payment_credit_notes", "post_payment_credit_notes", "paid_at", "voided_at", "marked_uncollectible_at", "subscription_id", "billing_reason"}
	paymentColumns = []string{"voucher_id", "provider", "provider_charge_id", "invoice_id", "part", "invoice_number",
		"customer_id", "customer_name", "paid_at", "gross", "fee", "fee_vat", "net"}
	balanceColumns = []string{"transaction_id", "created_at", "customer_id", "customer_name", "type", "amount",
		"ending_balance", "invoice_id", "invoice_number", "description"}
	creditNoteColumns = []string{"credit_note_id", "number", "created_at", "effective_at", "invoice_id", "invoice_number",
		"invoice_date", "customer_id", "customer_name", "reason", "outcome", "tax_behavior",
		"taxable_10", "tax_10", "taxable_8", "tax_8", "exempt", "subtotal", "tax", "total",
		"amount_due_before", "amount_due_after", "memo"}
)

// byRate sums a tax breakdown (JSON) per rate: standard, reduced, exempt ×
// taxable amount, tax.
func byRate(what, breakdown string, bd *[]billing.TaxAmount) ([3][2]int64, error) {
	var by [3][2]int64
	*bd = (*bd)[:0]
	if breakdown != "" && breakdown != "null" {
		if err := json.Unmarshal([]byte(breakdown), bd); err != nil {
			return by, fmt.Errorf("%s: tax breakdown: %w", what, err)
		}
	}
	for _, a := range *bd {
		i := 2
		switch a.Rate {
		case billing.TaxStandard:
			i = 0
		case billing.TaxReduced:
			i = 1
		}
		by[i][0] += a.TaxableAmount
		by[i][1] += a.Tax
	}
	return by, nil
}

// writeTable writes the csv table of invoices, payments, balance movements
// or credit notes: one row per source row, every amount as stored.
func writeTable(ctx context.Context, db *store.DB, t *table, o Options, start, end time.Time) error {
	loc := o.Location
	ts := func(p *time.Time) string {
		if p == nil || p.IsZero() {
			return ""
		}
		return p.In(loc).Format(time.RFC3339)
	}
	opt := func(p *int64) string {
		if p == nil {
			return ""
		}
		return itoa(*p)
	}
	args := []any{start.UTC(), end.UTC()}
	switch o.Kind {
	case Invoices:
		t.cols = invoiceColumns
		if err := t.row(t.cols...); err != nil {
			return err
		}
		var bd []billing.TaxAmount
		return stream(ctx, db, invoicesQuery, args, func(r *invoiceRow) error {
			t.what = "invoice " + r.ID
			by, err := byRate("invoice "+r.ID, r.Breakdown, &bd)
			if err != nil {
				return err
			}
			due := ""
			if r.DueDate != nil {
				due = r.DueDate.In(loc).Format("2006-01-02")
			}
			return t.row(r.ID, r.Number, ts(&r.FinalizedAt), due, r.CustomerID, r.CustomerName, r.Status, r.TaxBehavior,
				itoa(by[0][0]), itoa(by[0][1]), itoa(by[1][0]), itoa(by[1][1]), itoa(by[2][0]),
				itoa(r.Subtotal), itoa(r.Tax), itoa(r.Total), itoa(r.StartingBalance), itoa(r.AmountDue), itoa(r.AmountPaid),
				itoa(r.AmountRemaining), itoa(r.CarriedToBalance), itoa(r.PrePaymentCredited), itoa(r.PostPaymentCredited), ts(r.PaidAt), ts(r.VoidedAt), ts(r.MarkedUncollectibleAt),
				r.SubscriptionID, r.BillingReason)
		})
	case Payments:
		t.cols = paymentColumns
		if err := t.row(t.cols...); err != nil {
			return err
		}
		return stream(ctx, db, paymentsQuery, args, func(r *paymentRow) error {
			t.what = "voucher " + r.ID
			return t.row(r.ID, r.Provider, r.ProviderID, r.InvoiceID, itoa(int64(r.Part)), r.Number, r.CustomerID, r.CustomerName,
				ts(&r.PaidAt), itoa(r.Amount), opt(r.Fee), opt(r.FeeVAT), opt(r.Net))
		})
	case CreditNotes:
		t.cols = creditNoteColumns
		if err := t.row(t.cols...); err != nil {
			return err
		}
		var bd []billing.TaxAmount
		return stream(ctx, db, creditNotesQuery, args, func(r *creditNoteRow) error {
			t.what = "credit note " + r.ID
			by, err := byRate("credit note "+r.ID, r.Breakdown, &bd)
			if err != nil {
				return err
			}
			return t.row(r.ID, r.Number, ts(&r.CreatedAt), ts(&r.EffectiveAt), r.InvoiceID, r.InvoiceNumber, ts(&r.InvoiceDate),
				r.CustomerID, r.CustomerName, r.Reason, r.Outcome, r.TaxBehavior,
				itoa(by[0][0]), itoa(by[0][1]), itoa(by[1][0]), itoa(by[1][1]), itoa(by[2][0]),
				itoa(r.Subtotal), itoa(r.Tax), itoa(r.Total), itoa(r.AmountDueBefore), itoa(r.AmountDueAfter), r.Memo)
		})
	default:
		t.cols = balanceColumns
		if err := t.row(t.cols...); err != nil {
			return err
		}
		return stream(ctx, db, balanceQuery, args, func(r *balanceRow) error {
			t.what = "balance transaction " + r.ID
			return t.row(r.ID, ts(&r.CreatedAt), r.CustomerID, r.CustomerName, r.Type, itoa(r.Amount), itoa(r.EndingBalance),
				r.InvoiceID, r.Number, r.Description)
		})
	}
}

// ContentType returns the MIME type of an export in format f.
func ContentType(f Format) string {
	if f == CSV {
		return "text/csv; charset=utf-8"
	}
	return "text/csv; charset=Shift_JIS"
}

// Filename returns a file name for the export, like
// journal-yayoi-20270101-20271231.csv.
func Filename(o Options) string {
	return fmt.Sprintf("%s-%s-%s-%s.csv", o.Kind, o.Format, o.From.Format("20060102"), o.To.Format("20060102"))
}

// FromQuery reads kind (given separately: the route's path value), format,
// from, to and bom from a request's query, on top of base (which brings the
// location and accounts). Errors are EINVALID naming the parameter.
func FromQuery(base Options, kind string, q map[string][]string) (Options, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	o := base
	var err error
	if o.Kind, err = ParseKind("kind", kind); err != nil {
		return o, err
	}
	if o.Format, err = ParseFormat("format", get("format")); err != nil {
		return o, err
	}
	if o.From, err = ParseDate("from", get("from"), o.Location); err != nil {
		return o, err
	}
	if o.To, err = ParseDate("to", get("to"), o.Location); err != nil {
		return o, err
	}
	if s := get("bom"); s != "" {
		if o.BOM, err = strconv.ParseBool(s); err != nil {
			return o, billing.Invalid("bom", "bom must be true or false, got %q", s)
		}
	}
	return o.normalize()
}

// Handler serves GET /v1/exports/{kind}?format=…&from=…&to=…[&bom=true]. It
// writes the export to a temporary file first (memory stays flat; the disk
// holds the file), so a failure (a name Shift_JIS cannot hold) is a proper
// error response instead of a cut-off download. fail writes errors (the
// API's Error, which maps EINVALID to 400 with the param).
func Handler(db *store.DB, base Options, fail func(http.ResponseWriter, *http.Request, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o, err := FromQuery(base, r.PathValue("kind"), r.URL.Query())
		if err != nil {
			fail(w, r, err)
			return
		}
		f, err := os.CreateTemp("", "billingd-export-*.csv")
		if err != nil {
			fail(w, r, err)
			return
		}
		defer os.Remove(f.Name())
		defer f.Close()
		if err := Write(r.Context(), db, f, o); err != nil {
			fail(w, r, err)
			return
		}
		size, err := f.Seek(0, io.SeekCurrent)
		if err == nil {
			_, err = f.Seek(0, io.SeekStart)
		}
		if err != nil {
			fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", ContentType(o.Format))
		w.Header().Set("Content-Disposition", `attachment; filename="`+Filename(o)+`"`)
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		io.Copy(w, f) //nolint:errcheck // a failure here is the client going away

	}
}
