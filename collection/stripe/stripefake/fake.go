// Package stripefake is a local fake of the part of Stripe's API that
// billingd's konbini client uses, for tests on a real HTTP server.
//
// It speaks Stripe's wire format: form-encoded requests in bracket notation
// (arrays as a[] or a[0]), Bearer (or Basic) authentication with the secret
// key, JSON PaymentIntents with next_action.konbini_display_details, errors
// as {"error":{"type","code","message","param"}} with 400/401/404, and
// Idempotency-Key replay. Endpoints:
//
//	POST /v1/payment_intents               create; only confirm=true with konbini
//	GET  /v1/payment_intents/{id}          expand[]=latest_charge[.balance_transaction]
//	GET  /v1/payment_intents/search        query subset: field:'v', metadata['k']:'v', created>=n, joined by AND
//	POST /v1/payment_intents/{id}/cancel
//
// Create validates like Stripe does for konbini: amount ¥120–¥300,000,
// currency jpy, billing_details name and email, expires_at more than 30
// minutes and less than 60 days ahead (or expires_after_days 1–60, not
// both), product_description at most 22 JIS X 0208 characters,
// confirmation_number 10–11 digits, and unknown parameters. Messages
// resemble Stripe's but are not guaranteed to match them.
//
// Only successful responses are saved for Idempotency-Key replay (Stripe
// also saves responses of requests that started executing and then failed).
// A saved key used again with other parameters gets a 400 idempotency_error.
//
// Test controls: Pay and Expire move a voucher on and deliver the signed
// payment_intent.succeeded or payment_intent.payment_failed event to the
// webhook URL before returning; an API cancel delivers
// payment_intent.canceled in the background. FailNext and HangNext disturb
// the next requests for retry tests.
package stripefake

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/stripe/stripe-go/v85"
	"golang.org/x/text/encoding/japanese"
)

// Fees the fake charges on a paid voucher, in yen: the balance
// transaction's fee is StripeFee+FeeTax, split into fee_details of type
// stripe_fee and tax.
const (
	StripeFee = 190
	FeeTax    = 19
)

// APIVersion is the api_version of the events the fake sends: the one
// stripe-go was generated for.
const APIVersion = stripe.APIVersion

// Options configure a Server.
type Options struct {
	APIKey        string           // the secret key requests must carry; "" accepts any
	WebhookSecret string           // signs events
	WebhookURL    string           // receives events; "" keeps them only in Events
	Now           func() time.Time // the fake's clock; nil means time.Now
}

// Request is an API request the fake received.
type Request struct {
	Method, Path string
	Header       http.Header
	Form         url.Values // query string and form body
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	URL string // base URL, e.g. http://127.0.0.1:41234

	hs      *httptest.Server
	now     func() time.Time
	key     string
	secret  string
	closing chan struct{}
	wg      sync.WaitGroup

	mu       sync.Mutex
	hook     string
	intents  map[string]*intent
	idem     map[string]saved
	faults   []fault
	requests []Request
	events   [][]byte
}

type saved struct {
	fingerprint string
	status      int
	body        []byte
}

type fault struct {
	status int // 0 means hang
}

// Start starts a fake on 127.0.0.1 on a free port.
func Start(o Options) *Server {
	s := &Server{
		now:     o.Now,
		key:     o.APIKey,
		secret:  o.WebhookSecret,
		hook:    o.WebhookURL,
		closing: make(chan struct{}),
		intents: map[string]*intent{},
		idem:    map[string]saved{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.hs = httptest.NewServer(s)
	s.URL = s.hs.URL
	return s
}

// Close releases hanging requests, waits for background webhook deliveries
// and stops the server.
func (s *Server) Close() {
	close(s.closing)
	s.wg.Wait()
	s.hs.Close()
}

// SetWebhookURL changes where events are delivered.
func (s *Server) SetWebhookURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = u
}

// FailNext makes the next n API requests answer status (e.g. 500 or 429)
// with a Stripe error, without acting on them. Status 0 hangs (HangNext).
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{status: status})
	}
}

// HangNext makes the next n API requests take effect but withhold their
// response until the client gives up or the fake closes: a lost response.
func (s *Server) HangNext(n int) {
	s.FailNext(n, 0)
}

// Requests returns the API requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// IntentIDs returns the ids of the PaymentIntents the fake holds, sorted.
func (s *Server) IntentIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.intents))
	for id := range s.intents {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Events returns the bodies of the events sent so far, oldest first.
func (s *Server) Events() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// Sign returns the Stripe-Signature header value for body signed at t:
// "t=<unix>,v1=<hex HMAC-SHA256 of "<unix>.<body>" keyed with secret>".
func Sign(secret string, t time.Time, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%d.", t.Unix())
	mac.Write(body)
	return fmt.Sprintf("t=%d,v1=%s", t.Unix(), hex.EncodeToString(mac.Sum(nil)))
}

// Pay marks a pending voucher paid, as when the customer pays at the till,
// and delivers payment_intent.succeeded.
func (s *Server) Pay(id string) error {
	s.mu.Lock()
	pi, err := s.pending(id)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	now := s.now().Unix()
	chID := newID("ch_")
	pi.charge = &charge{
		ID: chID, Object: "charge", Amount: pi.Amount, AmountCaptured: pi.Amount, Captured: true,
		Created: now, Currency: "jpy", Paid: true, PaymentIntent: pi.ID, PaymentMethod: pi.PaymentMethod,
		PaymentMethodDetails: map[string]any{"type": "konbini", "konbini": map[string]any{"store": map[string]any{"chain": "lawson"}}},
		Status:               "succeeded",
		bt: &balanceTransaction{
			ID: newID("txn_"), Object: "balance_transaction", Amount: pi.Amount,
			AvailableOn: now + 4*86400, Created: now, Currency: "jpy",
			Fee: StripeFee + FeeTax,
			FeeDetails: []feeDetail{
				{Amount: StripeFee, Currency: "jpy", Description: "Stripe processing fees", Type: "stripe_fee"},
				{Amount: FeeTax, Currency: "jpy", Description: "JCT on Stripe fees", Type: "tax"},
			},
			Net: pi.Amount - StripeFee - FeeTax, ReportingCategory: "charge", Source: chID, Status: "pending", Type: "charge",
		},
	}
	pi.Status, pi.AmountReceived, pi.NextAction = "succeeded", pi.Amount, nil
	hook, body := s.event("payment_intent.succeeded", pi)
	s.mu.Unlock()
	return s.deliver(hook, body)
}

// Expire lets a pending voucher lapse unpaid, as Stripe does about an hour
// after its expires_at: the intent returns to requires_payment_method with
// last_payment_error, and payment_intent.payment_failed is delivered.
func (s *Server) Expire(id string) error {
	s.mu.Lock()
	pi, err := s.pending(id)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	pi.LastPaymentError = &apiError{
		Type:    "invalid_request_error",
		Code:    "payment_intent_payment_attempt_expired",
		Message: "The latest payment attempt of this PaymentIntent has expired. Provide a payment_method or payment_method_data to attempt to fulfill this PaymentIntent again.",
		PaymentMethod: map[string]any{"id": deref(pi.PaymentMethod), "object": "payment_method", "type": "konbini",
			"billing_details": pi.billing, "konbini": map[string]any{}},
	}
	pi.Status, pi.NextAction, pi.PaymentMethod = "requires_payment_method", nil, nil
	hook, body := s.event("payment_intent.payment_failed", pi)
	s.mu.Unlock()
	return s.deliver(hook, body)
}

// pending returns the intent id if it waits for payment.
func (s *Server) pending(id string) (*intent, error) {
	pi := s.intents[id]
	if pi == nil {
		return nil, fmt.Errorf("stripefake: no such payment_intent: %q", id)
	}
	if pi.Status != "requires_action" {
		return nil, fmt.Errorf("stripefake: payment_intent %s is %s, not requires_action", id, pi.Status)
	}
	return pi, nil
}

// event records an event about pi and returns where to send it and its
// body. s.mu must be held.
func (s *Server) event(typ string, pi *intent) (hook string, body []byte) {
	body, _ = json.Marshal(map[string]any{
		"id": newID("evt_"), "object": "event", "api_version": APIVersion,
		"created": s.now().Unix(), "data": map[string]any{"object": pi.render(nil)},
		"livemode": false, "pending_webhooks": 1,
		"request": map[string]any{"id": nil, "idempotency_key": nil}, "type": typ,
	})
	s.events = append(s.events, body)
	return s.hook, body
}

// deliver posts a signed event to hook, if any; a non-2xx answer is an error.
func (s *Server) deliver(hook string, body []byte) error {
	if hook == "" {
		return nil
	}
	req, err := http.NewRequest(http.MethodPost, hook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Stripe-Signature", Sign(s.secret, s.now(), body))
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("stripefake: webhook delivery: %w", err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("stripefake: webhook delivery: %s", res.Status)
	}
	return nil
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	err := r.ParseForm()
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Form: r.Form})
	var f *fault
	if len(s.faults) > 0 {
		f, s.faults = &s.faults[0], s.faults[1:]
	}
	if f != nil && f.status != 0 {
		s.mu.Unlock()
		e := &apiError{Type: "api_error", Message: "stripefake: injected failure"}
		if f.status == http.StatusTooManyRequests {
			e = &apiError{Type: "invalid_request_error", Code: "rate_limit", Message: "Too many requests hit the API too quickly."}
		}
		write(w, f.status, errorBody{e}, false)
		return
	}
	status, body, replayed := s.serve(r, err)
	s.mu.Unlock()
	if f != nil { // hang: the request took effect, its response is lost
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		return
	}
	write(w, status, body, replayed)
}

// serve authenticates, applies idempotency and routes. s.mu is held.
func (s *Server) serve(r *http.Request, formErr error) (status int, body any, replayed bool) {
	key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if u, _, ok := r.BasicAuth(); ok {
		key = u
	}
	switch {
	case key == "":
		return 401, errorBody{&apiError{Type: "invalid_request_error", Message: "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."}}, false
	case s.key != "" && key != s.key:
		return 401, errorBody{&apiError{Type: "invalid_request_error", Message: "Invalid API Key provided: " + redact(key)}}, false
	case formErr != nil:
		return 400, invalid("", "", "Invalid request body: "+formErr.Error()), false
	}
	p, err := parseParams(r.Form)
	if err != nil {
		return 400, invalid("", "", err.Error()), false
	}
	idemKey := r.Header.Get("Idempotency-Key")
	fingerprint := r.Method + " " + r.URL.Path + "?" + r.Form.Encode()
	if r.Method == http.MethodPost && idemKey != "" {
		if old, ok := s.idem[idemKey]; ok {
			if old.fingerprint != fingerprint {
				return 400, errorBody{&apiError{Type: "idempotency_error", Message: fmt.Sprintf(
					"Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '%s' if you meant to execute a different request.", idemKey)}}, false
			}
			return old.status, json.RawMessage(old.body), true
		}
	}
	status, body = s.route(r, p)
	if r.Method == http.MethodPost && idemKey != "" && status < 300 {
		b, _ := json.Marshal(body)
		s.idem[idemKey] = saved{fingerprint, status, b}
	}
	return status, body, false
}

// route dispatches an authenticated request. s.mu is held.
func (s *Server) route(r *http.Request, p params) (int, any) {
	const base = "/v1/payment_intents"
	path := r.URL.Path
	switch {
	case r.Method == http.MethodPost && path == base:
		return s.create(p)
	case r.Method == http.MethodGet && path == base+"/search":
		return s.search(p)
	case strings.HasPrefix(path, base+"/"):
		id, action, _ := strings.Cut(strings.TrimPrefix(path, base+"/"), "/")
		pi := s.intents[id]
		switch {
		case r.Method == http.MethodGet && action == "" || r.Method == http.MethodPost && action == "cancel":
			if pi == nil {
				return 404, errorBody{&apiError{Type: "invalid_request_error", Code: "resource_missing",
					Message: fmt.Sprintf("No such payment_intent: '%s'", id), Param: "intent"}}
			}
			if action == "cancel" {
				return s.cancel(pi, p)
			}
			return s.retrieve(pi, p)
		}
	}
	return 404, errorBody{&apiError{Type: "invalid_request_error",
		Message: fmt.Sprintf("Unrecognized request URL (%s: %s).", r.Method, path)}}
}

func (s *Server) create(p params) (int, any) {
	const (
		bd = "payment_method_data[billing_details]"
		ko = "payment_method_options[konbini]"
	)
	if k := p.unknown("amount", "currency", "confirm", "description", "payment_method_types[]",
		"payment_method_data[type]", bd+"[name]", bd+"[email]", bd+"[phone]",
		ko+"[expires_at]", ko+"[expires_after_days]", ko+"[product_description]", ko+"[confirmation_number]",
		"metadata[*]", "expand[]"); k != "" {
		return 400, invalid("parameter_unknown", k, "Received unknown parameter: "+k)
	}
	for _, k := range []string{"amount", "currency"} {
		if _, ok := p.get(k); !ok {
			return 400, invalid("parameter_missing", k, "Missing required param: "+k+".")
		}
	}
	amountStr, _ := p.get("amount")
	amount, err := strconv.ParseInt(amountStr, 10, 64)
	if err != nil {
		return 400, invalid("parameter_invalid_integer", "amount", "Invalid integer: "+amountStr)
	}
	if cur, _ := p.get("currency"); cur != "jpy" {
		return 400, invalid("payment_intent_invalid_parameter", "currency",
			fmt.Sprintf("The currency provided (%s) is invalid. Payments with konbini support the following currencies: jpy.", cur))
	}
	if types := p["payment_method_types[]"]; len(types) != 1 || types[0] != "konbini" {
		return 400, invalid("parameter_invalid", "payment_method_types", "stripefake supports only payment_method_types[]=konbini.")
	}
	switch {
	case amount < 120:
		return 400, invalid("amount_too_small", "amount", "Amount must be at least ¥120 jpy")
	case amount > 300000:
		return 400, invalid("amount_too_large", "amount", "Amount must be no more than ¥300,000 jpy")
	}
	if c, _ := p.get("confirm"); c != "true" {
		return 400, invalid("parameter_invalid", "confirm", "stripefake supports only confirm=true.")
	}
	if t, ok := p.get("payment_method_data[type]"); !ok || t != "konbini" {
		return 400, invalid("parameter_missing", "payment_method_data[type]", "Missing required param: payment_method_data[type].")
	}
	name, _ := p.get(bd + "[name]")
	email, _ := p.get(bd + "[email]")
	for k, v := range map[string]string{bd + "[name]": name, bd + "[email]": email} {
		if v == "" {
			return 400, invalid("parameter_missing", k, "Missing required param: "+k+".")
		}
	}
	if !strings.Contains(email, "@") {
		return 400, invalid("email_invalid", bd+"[email]", "Invalid email address: "+email)
	}
	now := s.now()
	opts := map[string]any{"confirmation_number": nil, "expires_after_days": nil, "expires_at": nil, "product_description": nil}
	at, hasAt := p.get(ko + "[expires_at]")
	days, hasDays := p.get(ko + "[expires_after_days]")
	var expires time.Time
	switch {
	case hasAt && hasDays:
		return 400, invalid("parameter_invalid", ko+"[expires_at]", "Only one of expires_after_days or expires_at may be set.")
	case hasAt:
		n, err := strconv.ParseInt(at, 10, 64)
		if err != nil {
			return 400, invalid("parameter_invalid_integer", ko+"[expires_at]", "Invalid integer: "+at)
		}
		expires = time.Unix(n, 0)
		if !expires.After(now.Add(30*time.Minute)) || !expires.Before(now.Add(60*24*time.Hour)) {
			return 400, invalid("parameter_invalid", ko+"[expires_at]",
				"expires_at must be more than 30 minutes from now and less than 60 days from now.")
		}
		opts["expires_at"] = n
	default:
		d := int64(3)
		if hasDays {
			var err error
			if d, err = strconv.ParseInt(days, 10, 64); err != nil || d < 1 || d > 60 {
				return 400, invalid("parameter_invalid", ko+"[expires_after_days]", "expires_after_days must be between 1 and 60.")
			}
			opts["expires_after_days"] = d
		}
		y, m, day := now.In(jst).Date()
		expires = time.Date(y, m, day+int(d), 23, 59, 59, 0, jst)
	}
	if desc, ok := p.get(ko + "[product_description]"); ok {
		if utf8.RuneCountInString(desc) > 22 {
			return 400, invalid("parameter_invalid", ko+"[product_description]", "product_description must be at most 22 characters.")
		}
		for _, r := range desc {
			if !jisX0208(r) {
				return 400, invalid("parameter_invalid", ko+"[product_description]",
					fmt.Sprintf("product_description may only contain characters from JIS X 0208; %q is not one.", r))
			}
		}
		opts["product_description"] = desc
	}
	confirmation := randomDigits(11)
	if cn, ok := p.get(ko + "[confirmation_number]"); ok {
		if len(strings.Trim(cn, "0123456789")) != 0 || len(cn) < 10 || len(cn) > 11 || strings.Trim(cn, "0") == "" {
			return 400, invalid("parameter_invalid", ko+"[confirmation_number]", "confirmation_number must be 10 to 11 digits and not all zeroes.")
		}
		confirmation, opts["confirmation_number"] = cn, cn
	}
	md := p.metadata()
	for k, v := range md {
		if len(k) > 40 || len(v) > 500 || len(md) > 50 {
			return 400, invalid("parameter_invalid", "metadata", "Metadata may have up to 50 keys of up to 40 characters with values of up to 500 characters.")
		}
	}
	id := newID("pi_")
	stores := map[string]any{}
	for _, st := range []string{"familymart", "lawson", "ministop", "seicomart"} {
		stores[st] = map[string]any{"payment_code": randomDigits(12), "confirmation_number": confirmation}
	}
	pm := newID("pm_")
	pi := &intent{
		ID: id, Object: "payment_intent", Amount: amount, CaptureMethod: "automatic",
		ClientSecret: id + "_secret_" + newID(""), ConfirmationMethod: "automatic", Created: now.Unix(), Currency: "jpy",
		Metadata: md, PaymentMethod: &pm,
		PaymentMethodOptions: map[string]any{"konbini": opts},
		PaymentMethodTypes:   []string{"konbini"},
		Status:               "requires_action",
		NextAction: &nextAction{Type: "konbini_display_details", KonbiniDisplayDetails: map[string]any{
			"expires_at": expires.Unix(), "hosted_voucher_url": s.URL + "/konbini/voucher/" + id, "stores": stores}},
		billing: map[string]any{"name": name, "email": email, "phone": nil, "address": nil},
	}
	if d, ok := p.get("description"); ok {
		pi.Description = &d
	}
	s.intents[id] = pi
	return 200, pi.render(nil)
}

func (s *Server) retrieve(pi *intent, p params) (int, any) {
	if k := p.unknown("expand[]"); k != "" {
		return 400, invalid("parameter_unknown", k, "Received unknown parameter: "+k)
	}
	for _, e := range p["expand[]"] {
		if e != "latest_charge" && e != "latest_charge.balance_transaction" {
			return 400, invalid("parameter_invalid", "expand", fmt.Sprintf("This property cannot be expanded (%s).", e))
		}
	}
	return 200, pi.render(p["expand[]"])
}

var cancelable = []string{"requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing"}

func (s *Server) cancel(pi *intent, p params) (int, any) {
	if k := p.unknown("cancellation_reason", "expand[]"); k != "" {
		return 400, invalid("parameter_unknown", k, "Received unknown parameter: "+k)
	}
	reason, hasReason := p.get("cancellation_reason")
	if hasReason && !slices.Contains([]string{"duplicate", "fraudulent", "requested_by_customer", "abandoned"}, reason) {
		return 400, invalid("parameter_invalid", "cancellation_reason", "Invalid cancellation_reason: "+reason)
	}
	if !slices.Contains(cancelable, pi.Status) {
		return 400, errorBody{&apiError{Type: "invalid_request_error", Code: "payment_intent_unexpected_state",
			Message: fmt.Sprintf("You cannot cancel this PaymentIntent because it has a status of %s. Only a PaymentIntent with one of the following statuses may be canceled: %s.",
				pi.Status, strings.Join(cancelable, ", ")),
			PaymentIntent: pi.render(nil)}}
	}
	now := s.now().Unix()
	pi.Status, pi.CanceledAt, pi.NextAction = "canceled", &now, nil
	if hasReason {
		pi.CancellationReason = &reason
	}
	hook, body := s.event("payment_intent.canceled", pi)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.deliver(hook, body)
	}()
	return 200, pi.render(p["expand[]"])
}

// jisX0208 reports whether r is in JIS X 0208: its EUC-JP encoding is two
// bytes in rows 1–8 or 16–84 (x/text's table also has NEC row 13 and IBM
// rows 89–92). Either Unicode mapping of the six characters mapped two
// ways (WAVE DASH 〜 or FULLWIDTH TILDE ～, …) is accepted.
func jisX0208(r rune) bool {
	alias := map[rune]rune{'\u301C': '\uFF5E', '\u2212': '\uFF0D', '\u2016': '\u2225', '\u00A2': '\uFFE0', '\u00A3': '\uFFE1', '\u00AC': '\uFFE2'}
	if a, ok := alias[r]; ok {
		r = a
	}
	b, err := japanese.EUCJP.NewEncoder().Bytes([]byte(string(r)))
	if err != nil || len(b) != 2 || b[0] < 0xA1 || b[1] < 0xA1 {
		return false
	}
	row := b[0] - 0xA0
	return row <= 8 || 16 <= row && row <= 84
}

var jst = time.FixedZone("JST", 9*3600)

// write sends a JSON response the way Stripe does.
func write(w http.ResponseWriter, status int, body any, replayed bool) {
	b, err := json.Marshal(body)
	if err != nil {
		status, b = 500, []byte(`{"error":{"type":"api_error","message":"stripefake: cannot encode response"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", newID("req_"))
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(status)
	w.Write(b)
}

type errorBody struct {
	Error *apiError `json:"error"`
}

type apiError struct {
	Type          string `json:"type"`
	Code          string `json:"code,omitempty"`
	Message       string `json:"message"`
	Param         string `json:"param,omitempty"`
	PaymentIntent any    `json:"payment_intent,omitempty"`
	PaymentMethod any    `json:"payment_method,omitempty"`
}

func invalid(code, param, msg string) errorBody {
	return errorBody{&apiError{Type: "invalid_request_error", Code: code, Param: param, Message: msg}}
}

type nextAction struct {
	Type                  string         `json:"type"`
	KonbiniDisplayDetails map[string]any `json:"konbini_display_details"`
}

// intent is a PaymentIntent as Stripe serialises it (the fields that matter
// for konbini).
type intent struct {
	ID                   string            `json:"id"`
	Object               string            `json:"object"`
	Amount               int64             `json:"amount"`
	AmountCapturable     int64             `json:"amount_capturable"`
	AmountReceived       int64             `json:"amount_received"`
	CanceledAt           *int64            `json:"canceled_at"`
	CancellationReason   *string           `json:"cancellation_reason"`
	CaptureMethod        string            `json:"capture_method"`
	ClientSecret         string            `json:"client_secret"`
	ConfirmationMethod   string            `json:"confirmation_method"`
	Created              int64             `json:"created"`
	Currency             string            `json:"currency"`
	Description          *string           `json:"description"`
	LastPaymentError     *apiError         `json:"last_payment_error"`
	LatestCharge         any               `json:"latest_charge"`
	Livemode             bool              `json:"livemode"`
	Metadata             map[string]string `json:"metadata"`
	NextAction           *nextAction       `json:"next_action"`
	PaymentMethod        *string           `json:"payment_method"`
	PaymentMethodOptions map[string]any    `json:"payment_method_options"`
	PaymentMethodTypes   []string          `json:"payment_method_types"`
	Status               string            `json:"status"`

	charge  *charge
	billing map[string]any
}

type charge struct {
	ID                   string         `json:"id"`
	Object               string         `json:"object"`
	Amount               int64          `json:"amount"`
	AmountCaptured       int64          `json:"amount_captured"`
	BalanceTransaction   any            `json:"balance_transaction"`
	Captured             bool           `json:"captured"`
	Created              int64          `json:"created"`
	Currency             string         `json:"currency"`
	Paid                 bool           `json:"paid"`
	PaymentIntent        string         `json:"payment_intent"`
	PaymentMethod        *string        `json:"payment_method"`
	PaymentMethodDetails map[string]any `json:"payment_method_details"`
	Status               string         `json:"status"`

	bt *balanceTransaction
}

type balanceTransaction struct {
	ID                string      `json:"id"`
	Object            string      `json:"object"`
	Amount            int64       `json:"amount"`
	AvailableOn       int64       `json:"available_on"`
	Created           int64       `json:"created"`
	Currency          string      `json:"currency"`
	Fee               int64       `json:"fee"`
	FeeDetails        []feeDetail `json:"fee_details"`
	Net               int64       `json:"net"`
	ReportingCategory string      `json:"reporting_category"`
	Source            string      `json:"source"`
	Status            string      `json:"status"`
	Type              string      `json:"type"`
}

type feeDetail struct {
	Amount      int64   `json:"amount"`
	Application *string `json:"application"`
	Currency    string  `json:"currency"`
	Description string  `json:"description"`
	Type        string  `json:"type"`
}

// render returns a copy of pi for a response, with latest_charge as an id
// or, if expand asks, as an object whose balance_transaction may be expanded
// too.
func (pi *intent) render(expand []string) *intent {
	out := *pi
	out.LatestCharge = nil
	if ch := pi.charge; ch != nil {
		out.LatestCharge = ch.ID
		if slices.Contains(expand, "latest_charge") || slices.Contains(expand, "latest_charge.balance_transaction") {
			c := *ch
			c.BalanceTransaction = ch.bt.ID
			if slices.Contains(expand, "latest_charge.balance_transaction") {
				c.BalanceTransaction = ch.bt
			}
			out.LatestCharge = &c
		}
	}
	return &out
}

func newID(prefix string) string {
	b := make([]byte, 12)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func randomDigits(n int) string {
	var b strings.Builder
	for range n {
		d, _ := rand.Int(rand.Reader, big.NewInt(10))
		b.WriteString(d.String())
	}
	return b.String()
}

func redact(key string) string {
	if len(key) <= 4 {
		return "****"
	}
	return strings.Repeat("*", len(key)-4) + key[len(key)-4:]
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}
