// Package sandbox emulates Opn Payments' charge API for Konbini (econtext)
// charges. billingd serves it as its "sandbox" provider, reached through the
// ordinary opn client, and the tests use it as their Opn fake.
//
// It speaks Opn's wire format: Basic auth with the secret key, POST /charges
// (form-encoded or JSON), GET /charges/{id}, GET /charges (from, to, offset,
// limit, order), the test-mode POST /charges/{id}/mark_as_paid,
// /mark_as_failed (optional failure_code) and /expire, Opn error JSON, and
// signed charge.create and charge.complete webhook events. Each charge's
// authorize_uri points at an instructions page it also serves.
//
// Paths are relative to the handler: mount it under a prefix with
// http.StripPrefix, for example
//
//	mux.Handle("/sandbox/", http.StripPrefix("/sandbox", srv))
//
// and point the opn client's BaseURL at http://host/sandbox. Set
// Config.PublicURL to that same URL, or it is derived from each request.
//
// Time comes from Config.Clock. Nothing happens in the background except the
// delivery of charge.create: the owner calls Tick, at NextDue or
// periodically, to expire charges and retry failed deliveries.
package sandbox

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"billingd/billing"
)

// Config configures a Server.
type Config struct {
	// SecretKey is the HTTP Basic user the API accepts (any password).
	SecretKey string
	// Authorize, when set, replaces the Basic auth check, for example to let
	// billingd accept its own API key on the test-mode routes as well.
	Authorize func(r *http.Request) bool
	// Clock tells the time of charges and events; default the wall clock.
	Clock billing.Clock
	// PublicURL is the absolute URL the handler is served at, prefix
	// included, used in authorize_uri; default derived from the request.
	PublicURL string
	// WebhookURL receives the events; empty sends none.
	WebhookURL string
	// WebhookSecret, base64, signs the events; empty sends them unsigned.
	WebhookSecret string
	// WebhookTimeout bounds one delivery; default 5 s.
	WebhookTimeout time.Duration
	// HTTPClient delivers webhooks; default http.DefaultClient (each
	// delivery still has WebhookTimeout).
	HTTPClient *http.Client
	// StatePath, when set, is a file that keeps charges and undelivered
	// events across restarts: each change is appended to it as it happens
	// (see journal.go).
	StatePath string
	// Logger logs failed deliveries and saves; default discards.
	Logger *slog.Logger
}

// Fault is a failure injected into the next API requests by InjectFaults.
type Fault int

// Faults.
const (
	// FaultError answers 500 without doing anything.
	FaultError Fault = iota + 1
	// FaultTimeout does nothing and answers nothing until the client gives up.
	FaultTimeout
	// FaultLoseResponse carries out the request, then answers nothing until
	// the client gives up: a charge created whose response was lost.
	FaultLoseResponse
)

// Delivery retries: after the n-th failure the next attempt is 2^(n−1)
// minutes later, at most an hour; after maxAttempts the event is dropped.
const (
	maxAttempts  = 10
	maxRetryWait = time.Hour
)

// Server is the emulator, an http.Handler. Its state is in memory behind a
// mutex, optionally mirrored to Config.StatePath.
type Server struct {
	cfg Config
	key []byte // decoded webhook secret
	mux *http.ServeMux
	wg  sync.WaitGroup // background deliveries

	mu      sync.Mutex
	charges []*charge // in creation order
	byID    map[string]*charge
	queue   []*delivery
	faults  []Fault
	journal *os.File // the state file, open for appending
	lines   int      // in the state file
	broken  bool     // a write failed: rewrite the file at the next change
}

// delivery is an event waiting to be delivered.
type delivery struct {
	EventID   string          `json:"event_id"`
	Body      json.RawMessage `json:"body"`
	Attempts  int             `json:"attempts"`
	NextAt    time.Time       `json:"next_at"`
	LastError string          `json:"last_error,omitempty"`
	busy      bool            // being delivered
}

// New returns a server for cfg, loading Config.StatePath if it exists.
func New(cfg Config) (*Server, error) {
	if cfg.SecretKey == "" && cfg.Authorize == nil {
		return nil, errors.New("sandbox: a secret key or an Authorize function is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = billing.WallClock{}
	}
	if cfg.WebhookTimeout == 0 {
		cfg.WebhookTimeout = 5 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, byID: map[string]*charge{}}
	if cfg.WebhookSecret != "" {
		key, err := base64.StdEncoding.DecodeString(cfg.WebhookSecret)
		if err != nil {
			return nil, errors.New("sandbox: webhook secret is not base64")
		}
		s.key = key
	}
	if cfg.StatePath != "" {
		if err := s.load(cfg.StatePath); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /charges", s.api(s.create))
	s.mux.HandleFunc("GET /charges", s.api(s.list))
	s.mux.HandleFunc("GET /charges/{id}", s.api(s.get))
	s.mux.HandleFunc("POST /charges/{id}/{action}", s.api(s.action))
	s.mux.HandleFunc("GET /offlines/econtext/instructions/{id}", s.instructions)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{404, "not_found", "path " + r.URL.Path + " was not found"})
	})
	return s, nil
}

// ServeHTTP serves the API and the instructions pages.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// InjectFaults makes the next n API requests fail with f (after the auth
// check), for crash and retry tests.
func (s *Server) InjectFaults(f Fault, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, f)
	}
}

// Close waits for background deliveries to finish and closes the state
// file.
func (s *Server) Close() {
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal != nil {
		s.journal.Close()
		s.journal = nil
	}
}

// api wraps an API handler with auth and fault injection.
func (s *Server) api(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			writeError(w, &apiError{401, "authentication_failure", "authentication failed"})
			return
		}
		var f Fault
		s.mu.Lock()
		if len(s.faults) > 0 {
			f, s.faults = s.faults[0], s.faults[1:]
		}
		s.mu.Unlock()
		switch f {
		case FaultError:
			writeError(w, &apiError{500, "internal_error", "injected failure"})
		case FaultTimeout:
			hang(r)
		case FaultLoseResponse:
			h(discard{}, r)
			hang(r)
		default:
			h(w, r)
		}
	}
}

func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.Authorize != nil {
		return s.cfg.Authorize(r)
	}
	user, _, ok := r.BasicAuth()
	return ok && subtle.ConstantTimeCompare([]byte(user), []byte(s.cfg.SecretKey)) == 1
}

// hang waits until the client gives up, or a minute. The body is read first:
// the server only notices a closed connection once it has.
func hang(r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(time.Minute):
	}
}

// discard is a ResponseWriter that loses the response.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

func (s *Server) now() time.Time { return s.cfg.Clock.Now().UTC().Truncate(time.Second) }

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	p, err := params(r)
	if err != nil {
		writeError(w, badRequest("malformed request body: %v", err))
		return
	}
	now := s.now()
	ch, apiErr := newCharge(p, now)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	ch.AuthorizeURI = s.publicURL(r) + "/offlines/econtext/instructions/oflp_test_" + strings.TrimPrefix(ch.ID, "chrg_test_")
	s.mu.Lock()
	ch.Source.References.PaymentCode = strconv.Itoa(700000 + len(s.charges))
	s.charges = append(s.charges, ch)
	s.byID[ch.ID] = ch
	d := s.enqueueLocked("charge.create", ch, now)
	s.recordLocked(record{Charge: ch, Delivery: d})
	body, _ := json.Marshal(ch)
	s.mu.Unlock()
	if d != nil {
		// In the background, so that a Create never waits on the receiver.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.deliver(context.Background(), d, now)
		}()
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ch := s.byID[r.PathValue("id")]
	body, _ := json.Marshal(ch)
	s.mu.Unlock()
	if ch == nil {
		writeError(w, &apiError{404, "not_found", "charge " + r.PathValue("id") + " was not found"})
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := s.now()
	from, to := time.Unix(0, 0).UTC(), now
	limit, offset, order := 20, 0, q.Get("order")
	var err error
	if v := q.Get("from"); v != "" && err == nil {
		from, err = time.Parse(time.RFC3339, v)
	}
	if v := q.Get("to"); v != "" && err == nil {
		to, err = time.Parse(time.RFC3339, v)
	}
	if v := q.Get("limit"); v != "" && err == nil {
		limit, err = strconv.Atoi(v)
	}
	if v := q.Get("offset"); v != "" && err == nil {
		offset, err = strconv.Atoi(v)
	}
	if order == "" {
		order = "chronological"
	}
	if err != nil || limit < 1 || limit > 100 || offset < 0 || order != "chronological" && order != "reverse_chronological" {
		writeError(w, badRequest("from and to must be ISO 8601 times, limit 1 to 100, offset at least 0, order chronological or reverse_chronological"))
		return
	}
	s.mu.Lock()
	var data []*charge
	for _, ch := range s.charges {
		if !ch.CreatedAt.Before(from) && !ch.CreatedAt.After(to) {
			data = append(data, ch)
		}
	}
	if order == "reverse_chronological" {
		slices.Reverse(data)
	}
	total := len(data)
	data = data[min(offset, total):min(offset+limit, total)]
	body, _ := json.Marshal(map[string]any{
		"object": "list", "location": "/charges", "data": append([]*charge{}, data...),
		"total": total, "offset": offset, "limit": limit, "order": order,
		"from": from.UTC().Format(time.RFC3339), "to": to.UTC().Format(time.RFC3339),
	})
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// action serves the test-mode routes. The charge.complete event is delivered
// before the response (bounded by WebhookTimeout), so that callers see its
// effect when the call returns.
func (s *Server) action(w http.ResponseWriter, r *http.Request) {
	p, err := params(r)
	if err != nil {
		writeError(w, badRequest("malformed request body: %v", err))
		return
	}
	status, code := "", p.Get("failure_code")
	switch r.PathValue("action") {
	case "mark_as_paid":
		status = "successful"
	case "mark_as_failed":
		status = "failed"
		if code == "" {
			code = "failed_processing"
		}
	case "expire":
		status, code = "expired", "timeout"
	default:
		writeError(w, &apiError{404, "not_found", "path " + r.URL.Path + " was not found"})
		return
	}
	now := s.now()
	s.mu.Lock()
	ch := s.byID[r.PathValue("id")]
	// late=true pays an expired charge: a payment made at the deadline and
	// reported after billingd saw the expiry (a test-mode extension).
	late := status == "successful" && p.Get("late") == "true" && ch != nil && ch.Status == "expired"
	if ch == nil || ch.Status != "pending" && !late {
		s.mu.Unlock()
		if ch == nil {
			writeError(w, &apiError{404, "not_found", "charge " + r.PathValue("id") + " was not found"})
		} else {
			writeError(w, invalidCharge("charge is %s, not pending", ch.Status))
		}
		return
	}
	ch.complete(status, code, now)
	d := s.enqueueLocked("charge.complete", ch, now)
	s.recordLocked(record{Charge: ch, Delivery: d})
	body, _ := json.Marshal(ch)
	s.mu.Unlock()
	if d != nil {
		s.deliver(context.WithoutCancel(r.Context()), d, now)
	}
	writeJSON(w, http.StatusOK, body)
}

var instructionsPage = template.Must(template.New("").Parse(`<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>コンビニ支払い (sandbox)</title></head>
<body><h1>コンビニでのお支払い (sandbox)</h1>
<p>お支払い金額: ¥{{.Amount}}</p>
<p>お支払い番号: <strong>{{.Source.References.PaymentCode}}</strong></p>
<p>お支払い期限: {{.ExpiresAt.Format "2006-01-02 15:04 MST"}}</p>
<p>状態: {{.Status}}</p>
<p>This is billingd's Opn sandbox: nothing can be paid here.</p>
</body></html>
`))

func (s *Server) instructions(w http.ResponseWriter, r *http.Request) {
	id := "chrg_test_" + strings.TrimPrefix(r.PathValue("id"), "oflp_test_")
	s.mu.Lock()
	var view *charge
	if ch := s.byID[id]; ch != nil {
		c := *ch
		view = &c
	}
	s.mu.Unlock()
	if view == nil {
		http.NotFound(w, r)
		return
	}
	view.ExpiresAt = view.ExpiresAt.In(time.FixedZone("JST", 9*3600))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = instructionsPage.Execute(w, view)
}

// publicURL is Config.PublicURL, or the scheme, host and mount prefix of r.
func (s *Server) publicURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimSuffix(s.cfg.PublicURL, "/")
	}
	scheme, prefix := "http", ""
	if r.TLS != nil {
		scheme = "https"
	}
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
		prefix = strings.TrimSuffix(u.Path, r.URL.Path)
	}
	return scheme + "://" + r.Host + prefix
}

// params returns the form or, for a JSON body, its fields flattened to form
// keys ({"source":{"name":"x"}} → source[name]=x).
func params(r *http.Request) (url.Values, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		err := r.ParseForm()
		return r.Form, err
	}
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	out := url.Values{}
	flatten("", v, out)
	return out, nil
}

func flatten(key string, v any, out url.Values) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if key != "" {
				k = key + "[" + k + "]"
			}
			flatten(k, x, out)
		}
	case []any:
		for _, x := range v {
			flatten(key+"[]", x, out)
		}
	case nil:
	default:
		out.Add(key, fmt.Sprint(v))
	}
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, e *apiError) {
	body, _ := json.Marshal(map[string]string{
		"object": "error", "location": "https://www.omise.co/api-errors#" + strings.ReplaceAll(e.code, "_", "-"),
		"code": e.code, "message": e.message,
	})
	writeJSON(w, e.status, body)
}
