package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"billingd/billing"
	"billingd/billing/store"
	"billingd/invoice"
	"billingd/subscription"
)

// query reads and checks query parameters; the first error wins.
type query struct {
	r       *http.Request
	allowed map[string]bool
	err     error
}

func newQuery(r *http.Request, allowed ...string) *query {
	q := &query{r: r, allowed: map[string]bool{"limit": true, "starting_after": true}}
	for _, a := range allowed {
		q.allowed[a] = true
	}
	for k := range r.URL.Query() {
		if !q.allowed[k] && q.err == nil {
			q.err = billing.Invalid(k, "Received unknown parameter: %s.", k)
		}
	}
	return q
}

func (q *query) str(name string) string { return q.r.URL.Query().Get(name) }

func (q *query) int64(name string) *int64 {
	v := q.str(name)
	if v == "" {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil && q.err == nil {
		q.err = billing.Invalid(name, "%s must be a whole number, got %q", name, v)
	}
	return &n
}

// time accepts RFC 3339 or Unix seconds.
func (q *query) time(name string) *time.Time {
	v := q.str(name)
	if v == "" {
		return nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return &t
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		if q.err == nil {
			q.err = billing.Invalid(name, "%s must be an RFC 3339 time or Unix seconds, got %q", name, v)
		}
		return nil
	}
	t := time.Unix(n, 0)
	return &t
}

func (q *query) page() store.Page {
	p := store.Page{StartingAfter: q.str("starting_after")}
	if l := q.int64("limit"); l != nil {
		if *l < 1 || *l > 100 {
			if q.err == nil {
				q.err = billing.Invalid("limit", "limit must be between 1 and 100, got %d", *l)
			}
		} else {
			p.Limit = int(*l)
		}
	}
	return p
}

func (s *Server) createCustomer(w http.ResponseWriter, r *http.Request) (any, error) {
	var p subscription.CustomerParams
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	if p.Name == nil {
		return nil, billing.Invalid("name", "name is required")
	}
	if p.Email == nil {
		return nil, billing.Invalid("email", "email is required")
	}
	return s.Subscriptions.CreateCustomer(r.Context(), p)
}

func (s *Server) updateCustomer(w http.ResponseWriter, r *http.Request) (any, error) {
	var p subscription.CustomerParams
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	return s.Subscriptions.UpdateCustomer(r.Context(), r.PathValue("id"), p)
}

func (s *Server) getCustomer(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.Subscriptions.GetCustomer(r.Context(), r.PathValue("id"))
}

func (s *Server) listCustomers(w http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r, "email")
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	data, more, err := s.Subscriptions.ListCustomers(r.Context(), q.str("email"), p)
	return newList(r, data, more), err
}

func (s *Server) createPlan(w http.ResponseWriter, r *http.Request) (any, error) {
	var p subscription.PlanParams
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	return s.Subscriptions.CreatePlan(r.Context(), p)
}

func (s *Server) getPlan(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.Subscriptions.GetPlan(r.Context(), r.PathValue("id"))
}

func (s *Server) listPlans(w http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	data, more, err := s.Subscriptions.ListPlans(r.Context(), p)
	return newList(r, data, more), err
}

func (s *Server) createSubscription(w http.ResponseWriter, r *http.Request) (any, error) {
	var p subscription.Params
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	return s.Subscriptions.Create(r.Context(), p)
}

func (s *Server) getSubscription(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.Subscriptions.Get(r.Context(), r.PathValue("id"))
}

func (s *Server) listSubscriptions(w http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r, "customer")
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	data, more, err := s.Subscriptions.List(r.Context(), q.str("customer"), p)
	return newList(r, data, more), err
}

func (s *Server) cancelSubscription(w http.ResponseWriter, r *http.Request) (any, error) {
	var p subscription.CancelParams
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	return s.Subscriptions.CancelWith(r.Context(), r.PathValue("id"), p)
}

func (s *Server) updateSubscription(w http.ResponseWriter, r *http.Request) (any, error) {
	var p subscription.UpdateParams
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	return s.Subscriptions.Update(r.Context(), r.PathValue("id"), p)
}

func (s *Server) listBalanceTransactions(w http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	data, more, err := s.Subscriptions.BalanceTransactions(r.Context(), r.PathValue("id"), p)
	return newList(r, data, more), err
}

func (s *Server) createInvoice(w http.ResponseWriter, r *http.Request) (any, error) {
	var p invoice.DraftParams
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	return s.Invoices.CreateDraft(r.Context(), p)
}

func (s *Server) getInvoice(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.Invoices.Get(r.Context(), r.PathValue("id"))
}

func (s *Server) listInvoices(w http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r, "customer", "subscription", "status", "created_gte", "created_lte", "total_gte", "total_lte")
	f := invoice.Filter{
		Customer: q.str("customer"), Subscription: q.str("subscription"), Status: billing.InvoiceStatus(q.str("status")),
		CreatedGTE: q.time("created_gte"), CreatedLTE: q.time("created_lte"),
		TotalGTE: q.int64("total_gte"), TotalLTE: q.int64("total_lte"),
	}
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	if f.CreatedGTE != nil && f.CreatedLTE != nil && f.CreatedGTE.After(*f.CreatedLTE) {
		return nil, billing.Invalid("created_lte", "created_lte must not be before created_gte")
	}
	if f.TotalGTE != nil && f.TotalLTE != nil && *f.TotalGTE > *f.TotalLTE {
		return nil, billing.Invalid("total_lte", "total_lte must not be below total_gte")
	}
	switch f.Status {
	case "", billing.InvoiceDraft, billing.InvoiceOpen, billing.InvoicePaid, billing.InvoiceVoid, billing.InvoiceUncollectible:
	default:
		return nil, billing.Invalid("status", "status must be one of draft, open, paid, void, uncollectible, got %q", f.Status)
	}
	data, more, err := s.Invoices.List(r.Context(), f, p)
	return newList(r, data, more), err
}

func (s *Server) addInvoiceLine(w http.ResponseWriter, r *http.Request) (any, error) {
	var p invoice.LineParams
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	return s.Invoices.AddLine(r.Context(), r.PathValue("id"), p)
}

func (s *Server) finalizeInvoice(w http.ResponseWriter, r *http.Request) (any, error) {
	if err := decode(r, &struct{}{}); err != nil {
		return nil, err
	}
	return s.Invoices.Finalize(r.Context(), r.PathValue("id"))
}

func (s *Server) voidInvoice(w http.ResponseWriter, r *http.Request) (any, error) {
	if err := decode(r, &struct{}{}); err != nil {
		return nil, err
	}
	return s.Invoices.Void(r.Context(), r.PathValue("id"))
}

func (s *Server) markUncollectible(w http.ResponseWriter, r *http.Request) (any, error) {
	if err := decode(r, &struct{}{}); err != nil {
		return nil, err
	}
	return s.Invoices.MarkUncollectible(r.Context(), r.PathValue("id"))
}

func (s *Server) listCharges(w http.ResponseWriter, r *http.Request) (any, error) {
	vs, err := s.Invoices.Vouchers(r.Context(), r.PathValue("id"))
	return newList(r, vs, false), err
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r, "type", "object_id")
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	sq := s.DB.NewSelect().Model((*billing.Event)(nil))
	if t := q.str("type"); t != "" {
		sq = sq.Where("type = ?", t)
	}
	if o := q.str("object_id"); o != "" {
		sq = sq.Where("object_id = ?", o)
	}
	data, more, err := store.List[*billing.Event](r.Context(), sq, "id", p)
	return newList(r, data, more), err
}

// testClock is the test clock's API form.
type testClock struct {
	Object   string    `json:"object"`
	FrozenAt time.Time `json:"frozen_time"`
	Stops    int       `json:"stops,omitempty"`
	TimeZone string    `json:"time_zone"`
}

func (s *Server) getTestClock(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.TestClock == nil {
		return nil, billing.Errorf(billing.ENOTFOUND, "The test clock is off; start billingd with BILLING_CLOCK=test.")
	}
	return testClock{Object: "test_clock", FrozenAt: s.TestClock.Now(), TimeZone: s.Invoices.Settings.Location.String()}, nil
}

func (s *Server) advanceTestClock(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.TestClock == nil {
		return nil, billing.Errorf(billing.ENOTFOUND, "The test clock is off; start billingd with BILLING_CLOCK=test.")
	}
	var p struct {
		To *time.Time `json:"to"`
		By string     `json:"by"`
	}
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	var to time.Time
	switch {
	case p.To != nil && p.By != "":
		return nil, billing.Invalid("by", "give either to or by, not both")
	case p.To != nil:
		to = *p.To
	case p.By != "":
		d, err := parseDuration(p.By)
		if err != nil || d < 0 {
			return nil, billing.Invalid("by", "by must be a positive duration like \"720h\" or \"30d\", got %q", p.By)
		}
		to = s.TestClock.Now().Add(d)
	default:
		return nil, billing.Invalid("to", "to (a time) or by (a duration) is required")
	}
	if to.Sub(s.TestClock.Now()) > 10*366*24*time.Hour {
		return nil, billing.Invalid("to", "the test clock advances at most ten years at a time")
	}
	stops, err := s.TestClock.Advance(r.Context(), s.Scheduler, to)
	if err != nil {
		return nil, err
	}
	return testClock{Object: "test_clock", FrozenAt: s.TestClock.Now(), Stops: stops, TimeZone: s.Invoices.Settings.Location.String()}, nil
}

// parseDuration is time.ParseDuration that also takes whole days ("30d").
func parseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err == nil && (n < 0 || n > 100*366) {
			err = fmt.Errorf("%d days is out of range (0 to %d)", n, 100*366)
		}
		return time.Duration(n) * 24 * time.Hour, err
	}
	return time.ParseDuration(s)
}
