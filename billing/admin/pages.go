package admin

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"golang.org/x/text/unicode/norm"

	"billingd/billing"
	"billingd/billing/export"
	"billingd/billing/outbox"
	"billingd/billing/store"
	"billingd/billing/webhook"
	"billingd/invoice/delivery"
)

// pageSize is how many rows a list page shows.
const pageSize = 50

// expiringWindow is how far ahead the overview looks for expiring vouchers.
const expiringWindow = 7 * 24 * time.Hour

// sum is a count and an amount of yen.
type sum struct {
	Count  int64
	Amount int64
}

// expiring is a live voucher about to expire, with its invoice.
type expiring struct {
	InvoiceID    string    `bun:"invoice_id"`
	Number       string    `bun:"number"`
	CustomerName string    `bun:"customer_name"`
	Amount       int64     `bun:"amount"`
	ExpiresAt    time.Time `bun:"expires_at"`
}

// failedDelivery is a webhook delivery given up on, with its endpoint's URL.
type failedDelivery struct {
	ID               string     `bun:"id"`
	EndpointID       string     `bun:"endpoint_id"`
	URL              string     `bun:"url"`
	EventType        string     `bun:"event_type"`
	ObjectID         string     `bun:"object_id"`
	Attempts         int        `bun:"attempts"`
	LastAttemptAt    *time.Time `bun:"last_attempt_at"`
	LastResponseCode *int       `bun:"last_response_code"`
	LastError        string     `bun:"last_error"`
}

// disabledEndpoint is a webhook endpoint that receives nothing until it is
// re-enabled, with the number of deliveries waiting for it.
type disabledEndpoint struct {
	ID           string     `bun:"id"`
	URL          string     `bun:"url"`
	DisabledAt   time.Time  `bun:"disabled_at"`
	Reason       string     `bun:"disabled_reason"`
	FailingSince *time.Time `bun:"failing_since"`
	Waiting      int64      `bun:"waiting"`
}

// overviewData is what the overview shows.
type overviewData struct {
	Month                       string
	Issued, Open, Overdue, Paid sum
	ActionRequired              []*billing.Invoice
	Expiring                    []expiring
	Failed                      []*billing.Task
	FailedWebhooks              []failedDelivery
	DisabledEndpoints           []disabledEndpoint
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request, x *session) {
	ctx := r.Context()
	now := s.Clock.Now()
	loc := s.location()
	y, m, _ := now.In(loc).Date()
	start := time.Date(y, m, 1, 0, 0, 0, 0, loc)
	end := start.AddDate(0, 1, 0)
	d := overviewData{Month: month(start, s.lang(r))}
	invoices := func() *bun.SelectQuery { return s.DB.NewSelect().Model((*billing.Invoice)(nil)) }
	total := func(q *bun.SelectQuery, col string, into *sum) error {
		return q.ColumnExpr("count(*)").ColumnExpr("coalesce(sum(?), 0)", bun.Ident(col)).Scan(ctx, &into.Count, &into.Amount)
	}
	err := firstError(
		func() error {
			return total(invoices().Where("status <> ?", billing.InvoiceDraft).
				Where("finalized_at >= ?", start.UTC()).Where("finalized_at < ?", end.UTC()), "total", &d.Issued)
		},
		func() error {
			return total(invoices().Where("status = ?", billing.InvoiceOpen), "amount_remaining", &d.Open)
		},
		func() error {
			return total(invoices().Where("status = ?", billing.InvoiceOpen).Where("due_date < ?", now.UTC()), "amount_remaining", &d.Overdue)
		},
		func() error {
			// Money received: the vouchers paid this month (a split invoice's
			// parts count separately).
			return total(s.DB.NewSelect().Model((*billing.Voucher)(nil)).Where("status = 'successful'").
				Where("paid_at >= ?", start.UTC()).Where("paid_at < ?", end.UTC()), "amount", &d.Paid)
		},
		func() error {
			return invoices().Where("collection_status = ?", billing.CollectionActionRequired).
				Order("id DESC").Limit(pageSize).Scan(ctx, &d.ActionRequired)
		},
		func() error {
			return s.DB.NewSelect().TableExpr("vouchers AS v").Join("JOIN invoices AS i ON i.id = v.invoice_id").
				ColumnExpr("v.invoice_id, coalesce(i.number, '') AS number, i.customer_name, v.amount, v.expires_at").
				Where("v.status = 'pending'").Where("v.provider_id <> ''").
				Where("v.expires_at > ?", now.UTC()).Where("v.expires_at <= ?", now.UTC().Add(expiringWindow)).
				OrderExpr("v.expires_at").Limit(pageSize).Scan(ctx, &d.Expiring)
		},
		func() error {
			return s.DB.NewSelect().Model(&d.Failed).Where("status = ?", outbox.StatusFailed).
				OrderExpr("done_at DESC, id DESC").Limit(pageSize).Scan(ctx)
		},
		func() error {
			// Deliveries given up on after the retry window while their
			// endpoint worked for other events.
			return s.DB.NewSelect().TableExpr("webhook_deliveries AS d").Join("JOIN webhook_endpoints AS e ON e.id = d.endpoint_id").
				ColumnExpr("d.id, d.endpoint_id, e.url, d.event_type, d.object_id, d.attempts, d.last_attempt_at, d.last_response_code, d.last_error").
				Where("d.status = ?", webhook.StatusFailed).OrderExpr("d.last_attempt_at DESC, d.id DESC").Limit(pageSize).Scan(ctx, &d.FailedWebhooks)
		},
		func() error {
			// Endpoints disabled by the operator or because they kept
			// failing: their deliveries wait for them to be re-enabled.
			return s.DB.NewSelect().TableExpr("webhook_endpoints AS e").
				ColumnExpr("e.id, e.url, e.disabled_at, e.disabled_reason, e.failing_since").
				ColumnExpr("(SELECT count(*) FROM webhook_deliveries AS p WHERE p.endpoint_id = e.id AND p.status = ?) AS waiting", webhook.StatusPending).
				Where("e.disabled_at IS NOT NULL").OrderExpr("e.disabled_at DESC, e.id DESC").Limit(pageSize).Scan(ctx, &d.DisabledEndpoints)
		},
	)
	if err != nil {
		s.fail(w, r, x, store.Translate(err))
		return
	}
	s.render(w, r, x, http.StatusOK, "overview", "Overview", d)
}

// firstError runs fns in order and returns the first error.
func firstError(fns ...func() error) error {
	for _, fn := range fns {
		if err := fn(); err != nil {
			return err
		}
	}
	return nil
}

// customersData is what the customer search shows.
type customersData struct {
	Query     string
	Customers []*billing.Customer
	Next      string
}

func (s *Server) customers(w http.ResponseWriter, r *http.Request, x *session) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	sq := s.DB.NewSelect().Model((*billing.Customer)(nil))
	if q != "" {
		sq = searchCustomers(sq, q)
	}
	cs, more, err := store.List[*billing.Customer](r.Context(), sq, "id", store.Page{Limit: pageSize, StartingAfter: r.URL.Query().Get("after")})
	if err != nil {
		s.fail(w, r, x, err)
		return
	}
	d := customersData{Query: q, Customers: cs}
	if more {
		d.Next = "/admin/customers?" + url.Values{"q": {q}, "after": {cs[len(cs)-1].ID}}.Encode()
	}
	s.render(w, r, x, http.StatusOK, "customers", "Customers", d)
}

// searchCustomers narrows q to customers whose name, e-mail or kana
// contains the text (ignoring spaces and case), or whose id it is. The text
// is NFKC-normalized (half-width kana and full-width letters fold) and
// hiragana also matches the katakana that kana names are written in.
func searchCustomers(q *bun.SelectQuery, text string) *bun.SelectQuery {
	t := strings.ToLower(norm.NFKC.String(text))
	compact := strings.Join(strings.Fields(t), "")
	like := func(s string) string { return "%" + escapeLike(s) + "%" }
	// Stored names may contain ASCII or ideographic spaces.
	const nospace = "replace(replace(lower(?), ' ', ''), '　', '')"
	return q.WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
		return q.Where("id = ?", strings.TrimSpace(text)).
			WhereOr(nospace+` LIKE ? ESCAPE '\'`, bun.Ident("name"), like(compact)).
			WhereOr(`lower(email) LIKE ? ESCAPE '\'`, like(t)).
			WhereOr(nospace+` LIKE ? ESCAPE '\'`, bun.Ident("kana_name"), like(compact)).
			WhereOr(nospace+` LIKE ? ESCAPE '\'`, bun.Ident("kana_name"), like(katakana(compact)))
	})
}

// escapeLike escapes the wildcards of LIKE (used with ESCAPE '\').
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(s)
}

// katakana turns hiragana into katakana.
func katakana(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'ぁ' && r <= 'ゖ' {
			return r + ('ァ' - 'ぁ')
		}
		return r
	}, s)
}

// customerData is what a customer's page shows.
type customerData struct {
	Customer      *billing.Customer
	Subscriptions []*billing.Subscription
	Invoices      []*billing.Invoice
	Next          string
	Balance       []*billing.BalanceTransaction
	Events        []*billing.Event
	plans         map[string]string
}

// PlanName names a subscription item's plan.
func (d customerData) PlanName(id string) string {
	if n, ok := d.plans[id]; ok {
		return n
	}
	return id
}

func (s *Server) customer(w http.ResponseWriter, r *http.Request, x *session) {
	ctx, id := r.Context(), r.PathValue("id")
	d := customerData{Customer: new(billing.Customer), plans: map[string]string{}}
	if err := s.DB.NewSelect().Model(d.Customer).Where("id = ?", id).Scan(ctx); err != nil {
		s.fail(w, r, x, notFound(err, "customer", id))
		return
	}
	var more bool
	var plans []*billing.Plan
	err := firstError(
		func() error {
			return s.DB.NewSelect().Model(&d.Subscriptions).Relation("Items").Where("?TableAlias.customer_id = ?", id).
				Order("subscription.id DESC").Limit(100).Scan(ctx)
		},
		func() error {
			var ids []string
			for _, sub := range d.Subscriptions {
				for _, it := range sub.Items {
					ids = append(ids, it.PlanID)
				}
			}
			if len(ids) == 0 {
				return nil
			}
			return s.DB.NewSelect().Model(&plans).Where("id IN (?)", bun.In(ids)).Scan(ctx)
		},
		func() (err error) {
			q := s.DB.NewSelect().Model((*billing.Invoice)(nil)).Where("customer_id = ?", id)
			d.Invoices, more, err = store.List[*billing.Invoice](ctx, q, "id", store.Page{Limit: pageSize, StartingAfter: r.URL.Query().Get("after")})
			return err
		},
		func() error {
			return s.DB.NewSelect().Model(&d.Balance).Where("customer_id = ?", id).Order("id DESC").Limit(pageSize).Scan(ctx)
		},
		func() error {
			return s.DB.NewSelect().Model(&d.Events).Where("object_id = ?", id).Order("id DESC").Limit(pageSize).Scan(ctx)
		},
	)
	if err != nil {
		s.fail(w, r, x, store.Translate(err))
		return
	}
	for _, p := range plans {
		d.plans[p.ID] = p.Name
	}
	if more {
		d.Next = "/admin/customers/" + url.PathEscape(id) + "?after=" + url.QueryEscape(d.Invoices[len(d.Invoices)-1].ID)
	}
	s.render(w, r, x, http.StatusOK, "customer", "Customer", d)
}

// invoicesData is what the invoice list shows.
type invoicesData struct {
	Statuses []billing.InvoiceStatus
	Status   string
	Overdue  bool
	Invoices []*billing.Invoice
	Next     string
}

// invoiceStatuses lists the statuses an invoice can have.
var invoiceStatuses = []billing.InvoiceStatus{billing.InvoiceDraft, billing.InvoiceOpen, billing.InvoicePaid, billing.InvoiceVoid, billing.InvoiceUncollectible}

func (s *Server) invoices(w http.ResponseWriter, r *http.Request, x *session) {
	qv := r.URL.Query()
	d := invoicesData{Statuses: invoiceStatuses, Status: qv.Get("status"), Overdue: qv.Get("overdue") == "1"}
	q := s.DB.NewSelect().Model((*billing.Invoice)(nil))
	if d.Status != "" {
		q = q.Where("status = ?", d.Status)
	}
	if d.Overdue {
		q = q.Where("status = ?", billing.InvoiceOpen).Where("due_date < ?", s.Clock.Now().UTC())
	}
	var more bool
	var err error
	d.Invoices, more, err = store.List[*billing.Invoice](r.Context(), q, "id", store.Page{Limit: pageSize, StartingAfter: qv.Get("after")})
	if err != nil {
		s.fail(w, r, x, err)
		return
	}
	if more {
		next := url.Values{"status": {d.Status}, "after": {d.Invoices[len(d.Invoices)-1].ID}}
		if d.Overdue {
			next.Set("overdue", "1")
		}
		d.Next = "/admin/invoices?" + next.Encode()
	}
	s.render(w, r, x, http.StatusOK, "invoices", "Invoices", d)
}

// actions says which actions an invoice allows now.
type actions struct {
	Finalize, Void, MarkUncollectible, Reissue bool
	Resend                                     string // invoice or receipt: the e-mail that can be sent again
	CreditNote                                 bool
	Any                                        bool
}

// invoiceData is what an invoice's page shows.
type invoiceData struct {
	Invoice     *billing.Invoice
	Customer    *billing.Customer
	Vouchers    []*billing.Voucher
	Emails      []*billing.Task
	Events      []*billing.Event
	CreditNotes []*billing.CreditNote
	HasPDF      bool
	HasReceipt  bool
	Can         actions
	// CreditLeft is what is left to credit, tax included; OneRate says
	// whether the invoice has one tax rate (a credit by amount needs it).
	CreditLeft int64
	OneRate    bool
	Reasons    []billing.CreditNoteReason
	Outcomes   []billing.CreditNoteOutcome
}

func (s *Server) invoice(w http.ResponseWriter, r *http.Request, x *session) {
	ctx, id := r.Context(), r.PathValue("id")
	in, err := s.Invoices.Get(ctx, id)
	if err != nil {
		s.fail(w, r, x, err)
		return
	}
	d := invoiceData{Invoice: in, Customer: new(billing.Customer)}
	err = firstError(
		func() (err error) { d.Vouchers, err = s.Invoices.Vouchers(ctx, id); return err },
		func() error { return s.DB.NewSelect().Model(d.Customer).Where("id = ?", in.CustomerID).Scan(ctx) },
		func() error {
			return s.DB.NewSelect().Model(&d.Emails).Where("kind = ?", delivery.TaskEmail).Where("object_id = ?", id).Order("id").Scan(ctx)
		},
		func() error {
			return s.DB.NewSelect().Model(&d.Events).Where("object_id = ?", id).Order("id").Scan(ctx)
		},
		func() error {
			return s.DB.NewSelect().Model(&d.CreditNotes).Where("invoice_id = ?", id).Order("id").Scan(ctx)
		},
	)
	if err != nil {
		s.fail(w, r, x, store.Translate(err))
		return
	}
	d.HasPDF = in.Status != billing.InvoiceDraft
	d.HasReceipt = in.Status == billing.InvoicePaid && in.AmountPaid > 0
	d.Can = allowed(in, d.Vouchers)
	d.CreditLeft, d.OneRate = creditLeft(in, d.CreditNotes), len(in.TaxBreakdown) == 1
	d.Reasons, d.Outcomes = creditNoteReasons, creditNoteOutcomes
	d.Can.CreditNote = creditable(in) && d.CreditLeft > 0
	d.Can.Any = d.Can.Any || d.Can.CreditNote
	s.render(w, r, x, http.StatusOK, "invoice", "Invoice", d)
}

// allowed returns the actions an invoice with these vouchers allows. The
// services check again when the action is taken.
func allowed(in *billing.Invoice, vs []*billing.Voucher) actions {
	var a actions
	live := false
	for _, v := range vs {
		if v.Status == "pending" {
			live = true
		}
	}
	switch in.Status {
	case billing.InvoiceDraft:
		a.Finalize = true
	case billing.InvoiceOpen:
		a.Void, a.MarkUncollectible = true, true
		a.Reissue = !live && in.AmountRemaining > 0 &&
			(in.CollectionStatus == billing.CollectionNone || in.CollectionStatus == billing.CollectionActionRequired)
		if in.CollectionStatus == billing.CollectionActive && live {
			a.Resend = "invoice"
		}
	case billing.InvoiceUncollectible:
		a.Void = true
	case billing.InvoicePaid:
		if in.AmountPaid > 0 {
			a.Resend = "receipt"
		}
	}
	a.Any = a.Finalize || a.Void || a.MarkUncollectible || a.Reissue || a.Resend != ""
	return a
}

// document serves an invoice's stored PDF (invoice.pdf or receipt.pdf),
// the one the customer got, to the logged-in operator.
func (s *Server) document(w http.ResponseWriter, r *http.Request, x *session) {
	kind := map[string]string{"invoice.pdf": "invoice", "receipt.pdf": "receipt"}[r.PathValue("file")]
	if kind == "" {
		s.fail(w, r, x, billing.Errorf(billing.ENOTFOUND, "No such document: %s", r.PathValue("file")))
		return
	}
	in, err := s.Invoices.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, x, err)
		return
	}
	doc, err := s.Documents.Document(r.Context(), in.ID, kind)
	if err != nil {
		s.fail(w, r, x, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	number := in.ID
	if in.Number != nil {
		number = *in.Number
	}
	delivery.ServePDF(w, doc, number)
}

// exportsData is what the export form shows.
type exportsData struct {
	Kinds        []export.Kind
	Formats      []export.Format
	Kind, Format string
	From, To     string
	BOM          bool
	Error        string
}

func (s *Server) exports(w http.ResponseWriter, r *http.Request, x *session) {
	loc := s.location()
	y, m, _ := s.Clock.Now().In(loc).Date()
	first := time.Date(y, m, 1, 0, 0, 0, 0, loc).AddDate(0, -1, 0) // last month, a common export
	d := exportsData{Kinds: export.Kinds, Formats: export.Formats, Kind: string(export.Invoices), Format: string(export.CSV),
		From: first.Format("2006-01-02"), To: first.AddDate(0, 1, -1).Format("2006-01-02")}
	s.render(w, r, x, http.StatusOK, "exports", "Exports", d)
}

// download writes the export the form asked for, through export.Write. It
// goes to a temporary file first, so a failure (a name Shift_JIS cannot
// hold) is shown on the form instead of cutting a download short.
func (s *Server) download(w http.ResponseWriter, r *http.Request, x *session) {
	q := r.URL.Query()
	o, err := export.FromQuery(s.Export, q.Get("kind"), q)
	if err == nil {
		err = s.writeExport(r.Context(), w, o)
	}
	if err == nil {
		return
	}
	if billing.ErrorCode(err) != billing.EINVALID {
		s.fail(w, r, x, err)
		return
	}
	d := exportsData{Kinds: export.Kinds, Formats: export.Formats, Kind: q.Get("kind"), Format: q.Get("format"),
		From: q.Get("from"), To: q.Get("to"), BOM: q.Get("bom") == "true", Error: billing.ErrorMessage(err)}
	s.render(w, r, x, http.StatusBadRequest, "exports", "Exports", d)
}

// writeExport writes export o to a temporary file and then to w. Nothing is
// written to w if the export fails.
func (s *Server) writeExport(ctx context.Context, w http.ResponseWriter, o export.Options) error {
	f, err := os.CreateTemp("", "billingd-admin-export-*.csv")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := export.Write(ctx, s.DB, f, o); err != nil {
		return err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", export.ContentType(o.Format))
	w.Header().Set("Content-Disposition", `attachment; filename="`+export.Filename(o)+`"`)
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Cache-Control", "no-store")
	io.Copy(w, f) //nolint:errcheck // a failure here is the browser going away
	return nil
}

// notFound turns "no rows" into a not-found error naming the object.
func notFound(err error, kind, id string) error {
	err = store.Translate(err)
	if billing.ErrorCode(err) == billing.ENOTFOUND {
		return billing.NotFound(kind, id)
	}
	return err
}
