// Package api is billingd's HTTP surface: the operator's /v1 JSON API
// (Stripe-shaped, Bearer-authenticated, idempotent POSTs), health and
// metrics endpoints. Handlers decode and validate the request shape, call
// the services and encode the result; the rules live in the services.
package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"billingd/billing"
	"billingd/billing/metrics"
	"billingd/billing/scheduler"
	"billingd/billing/store"
	"billingd/invoice"
	"billingd/subscription"
)

// MaxBodyBytes limits request bodies.
const MaxBodyBytes = 1 << 20

// Server serves the API.
type Server struct {
	DB            *store.DB
	Subscriptions *subscription.Service
	Invoices      *invoice.Service
	Scheduler     *scheduler.Scheduler
	TestClock     *scheduler.TestClock // nil unless BILLING_CLOCK=test
	Clock         billing.Clock
	Metrics       *metrics.Metrics
	Logger        *slog.Logger
	// APIKeyHash is the hex SHA-256 of the operator's API key.
	APIKeyHash string
	// Ready reports whether the daemon accepts work (false while shutting down).
	Ready func() bool
	// Mount adds routes owned by other packages (webhooks, sandbox, payment page).
	Mount []func(mux *http.ServeMux)
	// Documents serves the stored PDFs of invoices.
	Documents interface {
		Document(ctx context.Context, invoiceID, kind string) (*billing.Document, error)
	}
	// Export serves GET /v1/exports/{kind} (accounting exports).
	Export http.Handler
	// Webhooks, if set, registers the /v1/webhook_endpoints routes through
	// the /v1 wrapper (*webhook.Service).
	Webhooks interface {
		Routes(v1 func(pattern string, h func(w http.ResponseWriter, r *http.Request) (any, error)), decode func(r *http.Request, v any) error)
	}
	// Kick, if set, is called after every successful POST so that side
	// effects (vouchers for a finalized invoice) start at once.
	Kick func()
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	mux := newRouteMux() // records the patterns for Routes (openapi.go)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{}))

	v1 := func(pattern string, h func(w http.ResponseWriter, r *http.Request) (any, error)) {
		mux.Handle(pattern, s.instrument(pattern, s.authenticate(s.idempotent(s.json(h)))))
	}
	v1("POST /v1/customers", s.createCustomer)
	v1("GET /v1/customers", s.listCustomers)
	v1("GET /v1/customers/{id}", s.getCustomer)
	v1("POST /v1/customers/{id}", s.updateCustomer)
	v1("GET /v1/customers/{id}/balance_transactions", s.listBalanceTransactions)
	v1("POST /v1/plans", s.createPlan)
	v1("GET /v1/plans", s.listPlans)
	v1("GET /v1/plans/{id}", s.getPlan)
	v1("POST /v1/subscriptions", s.createSubscription)
	v1("GET /v1/subscriptions", s.listSubscriptions)
	v1("GET /v1/subscriptions/{id}", s.getSubscription)
	v1("POST /v1/subscriptions/{id}", s.updateSubscription)
	v1("POST /v1/subscriptions/{id}/cancel", s.cancelSubscription)
	v1("POST /v1/invoices", s.createInvoice)
	v1("GET /v1/invoices", s.listInvoices)
	v1("GET /v1/invoices/{id}", s.getInvoice)
	v1("POST /v1/invoices/{id}/lines", s.addInvoiceLine)
	v1("POST /v1/invoices/{id}/finalize", s.finalizeInvoice)
	v1("POST /v1/invoices/{id}/void", s.voidInvoice)
	v1("POST /v1/invoices/{id}/mark_uncollectible", s.markUncollectible)
	v1("GET /v1/invoices/{id}/charges", s.listCharges)
	v1("POST /v1/credit_notes", s.createCreditNote)
	v1("GET /v1/credit_notes", s.listCreditNotes)
	v1("GET /v1/credit_notes/{id}", s.getCreditNote)
	mux.Handle("GET /v1/credit_notes/{id}/pdf", s.instrument("GET /v1/credit_notes/{id}/pdf", s.authenticate(http.HandlerFunc(s.creditNotePDF))))
	if s.Export != nil {
		mux.Handle("GET /v1/exports/{kind}", s.instrument("GET /v1/exports/{kind}", s.authenticate(s.Export)))
	}
	mux.Handle("GET /v1/invoices/{id}/pdf", s.instrument("GET /v1/invoices/{id}/pdf", s.authenticate(http.HandlerFunc(s.invoicePDF))))
	v1("GET /v1/events", s.listEvents)
	if s.Webhooks != nil {
		s.Webhooks.Routes(v1, decode)
	}
	mux.Handle("GET /v1/openapi.json", s.instrument("GET /v1/openapi.json", s.authenticate(http.HandlerFunc(serveOpenAPI))))
	v1("GET /v1/test_clock", s.getTestClock)
	v1("POST /v1/test_clock/advance", s.advanceTestClock)
	v1("/v1/", func(w http.ResponseWriter, r *http.Request) (any, error) {
		return nil, billing.Errorf(billing.ENOTFOUND, "Unrecognized request URL (%s %s).", r.Method, r.URL.Path)
	})
	for _, m := range s.Mount {
		m(mux.ServeMux)
	}
	return mux
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.Ready != nil && !s.Ready() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second) // a database that does not answer is not ready
	defer cancel()
	if err := s.DB.PingContext(ctx); err != nil {
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ready\n")
}

// statusRecorder remembers the status code written.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) { r.code = code; r.ResponseWriter.WriteHeader(code) }

func (s *Server) instrument(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.Metrics.HTTPRequests.WithLabelValues(route, fmt.Sprint(rec.code)).Inc()
	})
}

// HashKey returns the hex SHA-256 of an API key, the only form stored.
func HashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(HashKey(key)), []byte(s.APIKeyHash)) != 1 {
			s.Error(w, r, billing.Errorf(billing.EUNAUTHORIZED, "Invalid API key provided. Send it as 'Authorization: Bearer <key>'."))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// json adapts a handler that returns a value or an error.
func (s *Server) json(h func(w http.ResponseWriter, r *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := h(w, r)
		if err != nil {
			s.Error(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
		if r.Method == http.MethodPost && s.Kick != nil {
			s.Kick()
		}
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) //nolint:errcheck
}

// errorStatus maps error codes to HTTP statuses and Stripe error types.
var errorStatus = map[string]struct {
	status int
	typ    string
}{
	billing.EINVALID:      {http.StatusBadRequest, "invalid_request_error"},
	billing.EUNAUTHORIZED: {http.StatusUnauthorized, "authentication_error"},
	billing.ENOTFOUND:     {http.StatusNotFound, "invalid_request_error"},
	billing.ECONFLICT:     {http.StatusConflict, "invalid_request_error"},
	billing.ETOOLARGE:     {http.StatusRequestEntityTooLarge, "invalid_request_error"},
	billing.EUNAVAILABLE:  {http.StatusServiceUnavailable, "api_error"},
	billing.EINTERNAL:     {http.StatusInternalServerError, "api_error"},
}

// Error writes err as a Stripe-shaped error. Internal errors are logged and
// their details are not shown to the client.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	code := billing.ErrorCode(err)
	st := errorStatus[code]
	if code == billing.EINTERNAL {
		s.Logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	body := map[string]any{"type": st.typ, "code": code, "message": billing.ErrorMessage(err)}
	if p := billing.ErrorParam(err); p != "" {
		body["param"] = p
	}
	writeJSON(w, st.status, map[string]any{"error": body})
}

// decode reads a JSON body into v (a pointer to a struct): at most
// MaxBodyBytes, no unknown fields, nothing after the value. Errors name the
// offending field.
func decode(r *http.Request, v any) error {
	if r.ContentLength == 0 && r.Body == http.NoBody {
		return nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err = dec.Decode(v); err == nil {
			if _, terr := dec.Token(); terr != io.EOF {
				return billing.Invalid("", "Invalid request body: data after the JSON value.")
			}
			if k := inexactKey(body, v); k != "" {
				return billing.Invalid(k, "Received unknown parameter: %s (parameter names are lower case, as documented).", k)
			}
		}
	}
	var (
		maxErr  *http.MaxBytesError
		synErr  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
		timeErr *time.ParseError
	)
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return nil
	case errors.As(err, &maxErr):
		return billing.Errorf(billing.ETOOLARGE, "The request body exceeds %d bytes.", MaxBodyBytes)
	case errors.As(err, &synErr):
		return billing.Invalid("", "Invalid JSON at byte %d: %v.", synErr.Offset, err)
	case errors.As(err, &typeErr):
		return billing.Invalid(typeErr.Field, "%s must be %s, got a JSON %s.", typeErr.Field, jsonType(typeErr.Type.String()), typeErr.Value)
	case errors.As(err, &timeErr) || strings.Contains(err.Error(), "Time.UnmarshalJSON"):
		f := timeField(body, v)
		return billing.Invalid(f, "%sTimes must be RFC 3339 with an offset, like 2026-12-01T00:00:00+09:00: %v.", prefix(f), err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return billing.Invalid(f, "Received unknown parameter: %s.", f)
	}
	return billing.Invalid("", "Invalid request body: %v.", err)
}

// topLevel returns the members of a JSON object body and the struct type v
// points to; nil, nil unless both are there.
func topLevel(body []byte, v any) (map[string]json.RawMessage, reflect.Type) {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var fields map[string]json.RawMessage
	if t.Kind() != reflect.Struct || json.Unmarshal(body, &fields) != nil {
		return nil, nil
	}
	return fields, t
}

// inexactKey returns a top-level key of body that names a field of v (a
// pointer to a struct) only case-insensitively, as encoding/json accepts:
// the API's names are exact. "" if there is none.
func inexactKey(body []byte, v any) string {
	fields, t := topLevel(body, v)
	if t == nil {
		return ""
	}
	names := map[string]bool{}
	var collect func(t reflect.Type)
	collect = func(t reflect.Type) {
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case name == "-":
			case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
				collect(f.Type)
			case name == "":
				names[f.Name] = true
			default:
				names[name] = true
			}
		}
	}
	collect(t)
	for k := range fields {
		if !names[k] {
			return k
		}
	}
	return ""
}

// timeField returns the JSON name of the first top-level time field of v
// whose value in body is not a valid time ("" if none is found).
func timeField(body []byte, v any) string {
	fields, t := topLevel(body, v)
	if t == nil {
		return ""
	}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		raw, ok := fields[name]
		if ok && ft == reflect.TypeFor[time.Time]() && json.Unmarshal(raw, new(*time.Time)) != nil {
			return name
		}
	}
	return ""
}

func prefix(field string) string {
	if field == "" {
		return ""
	}
	return field + ": "
}

func jsonType(goType string) string {
	switch strings.TrimPrefix(goType, "*") {
	case "int64", "int":
		return "a whole number (integer yen or count) within range"
	case "string", "billing.TaxRate", "billing.TaxBehavior", "billing.Interval", "billing.BillingTiming", "subscription.ProrationBehavior":
		return "a string"
	case "bool":
		return "true or false"
	}
	return "of type " + goType
}

// list is a Stripe list response.
type list struct {
	Object  string `json:"object"`
	URL     string `json:"url"`
	HasMore bool   `json:"has_more"`
	Data    any    `json:"data"`
}

func newList[T any](r *http.Request, data []T, more bool) list {
	if data == nil {
		data = []T{}
	}
	return list{Object: "list", URL: r.URL.Path, HasMore: more, Data: data}
}

// invoicePDF serves the exact PDF the customer was sent (rendered and stored
// on first use), with its SHA-256 in X-Content-SHA256.
func (s *Server) invoicePDF(w http.ResponseWriter, r *http.Request) {
	if _, err := s.Invoices.Get(r.Context(), r.PathValue("id")); err != nil {
		s.Error(w, r, err)
		return
	}
	doc, err := s.Documents.Document(r.Context(), r.PathValue("id"), "invoice")
	if err != nil {
		s.Error(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("X-Content-SHA256", doc.SHA256)
	w.Write(doc.Content) //nolint:errcheck
}
