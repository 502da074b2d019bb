package stripekonbini_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"billingd/billing"
	"billingd/collection"
	stripekonbini "billingd/collection/stripe"
	"billingd/collection/stripe/stripefake"
)

const (
	apiKey = "sk_test_billingd"
	secret = "whsec_billingd"
)

// env is a fake Stripe, a webhook receiver that parses events with the
// client, and the client.
type env struct {
	fake   *stripefake.Server
	client *stripekonbini.Client
	events chan *collection.WebhookEvent
	clock  *clock
}

// clock is a settable billing.Clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func setup(t *testing.T, cfg stripekonbini.Config) *env {
	t.Helper()
	e := &env{events: make(chan *collection.WebhookEvent, 10), clock: &clock{t: time.Now()}}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := e.client.ParseWebhook(r.Header, body, time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		e.events <- ev
	}))
	t.Cleanup(receiver.Close)
	e.fake = stripefake.Start(stripefake.Options{APIKey: apiKey, WebhookSecret: secret, WebhookURL: receiver.URL})
	t.Cleanup(e.fake.Close)
	if cfg.APIKey == "" {
		cfg.APIKey = apiKey
	}
	cfg.WebhookSecret = secret
	cfg.BaseURL = e.fake.URL
	if cfg.MaxNetworkRetries == nil {
		cfg.MaxNetworkRetries = new(int64) // no retries inside stripe-go unless a test asks
	}
	if cfg.Clock == nil {
		cfg.Clock = e.clock
	}
	var err error
	if e.client, err = stripekonbini.New(cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

var attempts int

func request() collection.CreateRequest {
	attempts++
	return collection.CreateRequest{
		InvoiceID:   "in_test1",
		AttemptID:   "att_" + strconv.Itoa(attempts) + "_" + strconv.FormatInt(time.Now().UnixNano(), 36),
		Amount:      5500,
		ExpiresAt:   time.Now().Add(7 * 24 * time.Hour).Truncate(time.Second),
		Payer:       collection.Payer{Name: "山田 太郎", Email: "taro@example.jp"},
		Description: "INV-0001 5月分",
	}
}

func TestEndToEnd(t *testing.T) {
	e := setup(t, stripekonbini.Config{})
	ctx := context.Background()
	req := request()

	ch, err := e.client.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Status != collection.StatusPending || ch.Amount != 5500 || ch.InvoiceID != req.InvoiceID || ch.AttemptID != req.AttemptID {
		t.Errorf("created %+v", ch)
	}
	if !ch.ExpiresAt.Equal(req.ExpiresAt) {
		t.Errorf("ExpiresAt = %v, want %v", ch.ExpiresAt, req.ExpiresAt)
	}
	if ch.InstructionsURL == "" {
		t.Error("no InstructionsURL")
	}
	stores := []string{"familymart", "lawson", "ministop", "seicomart"}
	if len(ch.PaymentCodes) != len(stores) {
		t.Fatalf("PaymentCodes = %+v", ch.PaymentCodes)
	}
	for i, pc := range ch.PaymentCodes {
		if pc.Store != stores[i] || pc.PaymentCode == "" || pc.ConfirmationNumber == "" {
			t.Errorf("PaymentCodes[%d] = %+v", i, pc)
		}
	}

	// The wire format of the one create call.
	reqs := e.fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if got := r.Header.Get("Idempotency-Key"); got != req.AttemptID {
		t.Errorf("Idempotency-Key = %q, want %q", got, req.AttemptID)
	}
	for k, want := range map[string]string{
		"amount":                    "5500",
		"currency":                  "jpy",
		"confirm":                   "true",
		"payment_method_types[0]":   "konbini",
		"payment_method_data[type]": "konbini",
		"payment_method_data[billing_details][name]":           "山田 太郎",
		"payment_method_data[billing_details][email]":          "taro@example.jp",
		"payment_method_options[konbini][expires_at]":          strconv.FormatInt(req.ExpiresAt.Unix(), 10),
		"payment_method_options[konbini][product_description]": "ＩＮＶ－０００１　５月分",
		"metadata[invoice_id]":                                 req.InvoiceID,
		"metadata[attempt_id]":                                 req.AttemptID,
	} {
		if got := r.Form.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}

	if err := e.fake.Pay(ch.ID); err != nil {
		t.Fatal(err)
	}
	ev := <-e.events
	if ev.Type != "payment_intent.succeeded" || ev.ChargeID != ch.ID || ev.ID == "" {
		t.Errorf("event %+v", ev)
	}

	got, err := e.client.Get(ctx, ev.ChargeID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != collection.StatusSuccessful || got.PaidAt == nil {
		t.Errorf("after pay: %+v", got)
	}
	if got.Fee == nil || got.FeeVAT == nil || got.Net == nil {
		t.Fatalf("fees missing: %+v", got)
	}
	if *got.Fee != stripefake.StripeFee || *got.FeeVAT != stripefake.FeeTax || *got.Net != 5500-stripefake.StripeFee-stripefake.FeeTax {
		t.Errorf("fee %d, VAT %d, net %d", *got.Fee, *got.FeeVAT, *got.Net)
	}
}

func TestExpire(t *testing.T) {
	e := setup(t, stripekonbini.Config{})
	ctx := context.Background()
	ch, err := e.client.Create(ctx, request())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.fake.Expire(ch.ID); err != nil {
		t.Fatal(err)
	}
	if ev := <-e.events; ev.Type != "payment_intent.payment_failed" || ev.ChargeID != ch.ID {
		t.Errorf("event %+v", ev)
	}
	got, err := e.client.Get(ctx, ch.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != collection.StatusExpired || got.FailureCode != "payment_intent_payment_attempt_expired" || got.FailureMessage == "" {
		t.Errorf("after expiry: %+v", got)
	}
	if !got.ExpiresAt.Equal(ch.ExpiresAt) || got.Fee != nil {
		t.Errorf("after expiry: %+v", got)
	}
}

func TestCancel(t *testing.T) {
	e := setup(t, stripekonbini.Config{})
	ctx := context.Background()
	ch, err := e.client.Create(ctx, request())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.Cancel(ctx, ch.ID); err != nil {
		t.Fatal(err)
	}
	if ev := <-e.events; ev.Type != "payment_intent.canceled" || ev.ChargeID != ch.ID {
		t.Errorf("event %+v", ev)
	}
	if got, err := e.client.Get(ctx, ch.ID); err != nil || got.Status != collection.StatusCanceled {
		t.Errorf("after cancel: %+v, %v", got, err)
	}
	t.Run("AgainOK", func(t *testing.T) {
		if err := e.client.Cancel(ctx, ch.ID); err != nil {
			t.Error(err)
		}
	})
	t.Run("ErrPaid", func(t *testing.T) {
		paid, err := e.client.Create(ctx, request())
		if err != nil {
			t.Fatal(err)
		}
		if err := e.fake.Pay(paid.ID); err != nil {
			t.Fatal(err)
		}
		<-e.events
		err = e.client.Cancel(ctx, paid.ID)
		var ce *collection.Error
		if !errors.As(err, &ce) || ce.Code != "payment_intent_unexpected_state" || ce.Temporary || ce.Status != 400 {
			t.Errorf("cancel of a paid intent: %v", err)
		}
	})
}

func TestIdempotentRetry(t *testing.T) {
	e := setup(t, stripekonbini.Config{})
	ctx := context.Background()
	req := request()
	first, err := e.client.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.client.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID || len(again.PaymentCodes) != 4 || again.PaymentCodes[0] != first.PaymentCodes[0] {
		t.Errorf("retry gave %+v, first %+v", again, first)
	}
}

func TestLostResponse(t *testing.T) {
	e := setup(t, stripekonbini.Config{})
	req := request()
	since := time.Now()

	e.fake.HangNext(1)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := e.client.Create(ctx, req)
	cancel()
	if !collection.IsTemporary(err) {
		t.Fatalf("Create with lost response: %v, want a temporary error", err)
	}

	ctx = context.Background()
	t.Run("FindByAttempt", func(t *testing.T) {
		found, err := e.client.FindByAttempt(ctx, req.InvoiceID, req.AttemptID, since)
		if err != nil || found == nil {
			t.Fatalf("FindByAttempt = %+v, %v", found, err)
		}
		if found.AttemptID != req.AttemptID || found.Status != collection.StatusPending || len(found.PaymentCodes) != 4 {
			t.Errorf("found %+v", found)
		}
		again, err := e.client.Create(ctx, req)
		if err != nil || again.ID != found.ID {
			t.Errorf("retried Create = %+v, %v; want %s", again, err, found.ID)
		}
	})
	t.Run("FindByAttemptNone", func(t *testing.T) {
		found, err := e.client.FindByAttempt(ctx, req.InvoiceID, "att_never", since)
		if err != nil || found != nil {
			t.Errorf("FindByAttempt = %+v, %v; want nil, nil", found, err)
		}
		found, err = e.client.FindByAttempt(ctx, req.InvoiceID, req.AttemptID, since.Add(time.Hour))
		if err != nil || found != nil {
			t.Errorf("FindByAttempt after since = %+v, %v; want nil, nil", found, err)
		}
	})
}

// A retry after the clamped expires_at moved sends other parameters with the
// same Idempotency-Key; Create resolves Stripe's idempotency_error by search.
func TestRetryAfterClampMoved(t *testing.T) {
	e := setup(t, stripekonbini.Config{})
	ctx := context.Background()
	req := request()
	req.ExpiresAt = time.Now() // clamped to now+35m
	first, err := e.client.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(2 * time.Minute)
	again, err := e.client.Create(ctx, req)
	if err != nil || again.ID != first.ID {
		t.Fatalf("retry = %+v, %v; want %s", again, err, first.ID)
	}
	reqs := e.fake.Requests()
	if f0, f1 := reqs[0].Form.Get("payment_method_options[konbini][expires_at]"), reqs[1].Form.Get("payment_method_options[konbini][expires_at]"); f0 == f1 {
		t.Errorf("expires_at did not move: %s", f0)
	}
	t.Run("ErrSameAttemptOtherAmount", func(t *testing.T) {
		req.Amount++
		_, err := e.client.Create(ctx, req)
		var ce *collection.Error
		if !errors.As(err, &ce) || ce.Code != "idempotency_error" || ce.Temporary {
			t.Errorf("err = %v, want a permanent idempotency_error", err)
		}
	})
}

func TestExpiresAtClamp(t *testing.T) {
	e := setup(t, stripekonbini.Config{})
	now := e.clock.Now()
	for _, tc := range []struct {
		name string
		at   time.Time
		want time.Time
	}{
		{"PastRaisedTo35Minutes", now.Add(-time.Hour), now.Add(35 * time.Minute)},
		{"TooFarLoweredTo60Days", now.Add(90 * 24 * time.Hour), now.Add(60*24*time.Hour - 5*time.Minute)},
		{"InRangeKept", now.Add(10 * 24 * time.Hour), now.Add(10 * 24 * time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := request()
			req.ExpiresAt = tc.at
			ch, err := e.client.Create(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if d := ch.ExpiresAt.Sub(tc.want); d < -time.Second || d > time.Second {
				t.Errorf("ExpiresAt = %v, want %v", ch.ExpiresAt, tc.want)
			}
		})
	}
	t.Run("ZeroLeftToStripe", func(t *testing.T) {
		req := request()
		req.ExpiresAt = time.Time{}
		ch, err := e.client.Create(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		reqs := e.fake.Requests()
		if v, ok := reqs[len(reqs)-1].Form["payment_method_options[konbini][expires_at]"]; ok {
			t.Errorf("expires_at sent: %v", v)
		}
		if ch.ExpiresAt.IsZero() {
			t.Error("no ExpiresAt from the voucher")
		}
	})
}

func TestErrors(t *testing.T) {
	e := setup(t, stripekonbini.Config{})
	ctx := context.Background()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	wrongKey, _ := stripekonbini.New(stripekonbini.Config{APIKey: "sk_test_wrong", BaseURL: e.fake.URL, MaxNetworkRetries: new(int64)})
	unreachable, _ := stripekonbini.New(stripekonbini.Config{APIKey: apiKey, BaseURL: closed.URL, MaxNetworkRetries: new(int64)})

	for _, tc := range []struct {
		name      string
		client    *stripekonbini.Client
		fail      int // status the fake answers the next request with
		status    int
		code      string
		temporary bool
	}{
		{"ErrServerIsTemporary", e.client, 500, 500, "api_error", true},
		{"ErrRateLimitIsTemporary", e.client, 429, 429, "rate_limit", true},
		{"ErrNotFoundIsPermanent", e.client, 0, 404, "resource_missing", false},
		{"ErrWrongKeyIsPermanent", wrongKey, 0, 401, "invalid_request_error", false},
		{"ErrConnectionIsTemporary", unreachable, 0, 0, "connection_error", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fail != 0 {
				e.fake.FailNext(1, tc.fail)
			}
			_, err := tc.client.Get(ctx, "pi_missing")
			var ce *collection.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *collection.Error", err)
			}
			if ce.Provider != "stripe" || ce.Status != tc.status || ce.Code != tc.code || ce.Temporary != tc.temporary || ce.Message == "" {
				t.Errorf("err = %+v", ce)
			}
		})
	}
}

// stripe-go retries a request that got no response itself, with the same
// Idempotency-Key, and the fake replays the saved response.
func TestStripeGoRetriesLostResponse(t *testing.T) {
	retries := int64(1)
	e := setup(t, stripekonbini.Config{MaxNetworkRetries: &retries, HTTPClient: &http.Client{Timeout: 300 * time.Millisecond}})
	e.fake.HangNext(1)
	req := request()
	ch, err := e.client.Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	reqs := e.fake.Requests()
	if len(reqs) != 2 || reqs[0].Header.Get("Idempotency-Key") != req.AttemptID || reqs[1].Header.Get("Idempotency-Key") != req.AttemptID {
		t.Errorf("%d requests", len(reqs))
	}
	if ids := e.fake.IntentIDs(); len(ids) != 1 || ids[0] != ch.ID {
		t.Errorf("intents %v, want only %s", ids, ch.ID)
	}
}

func TestCreateInvalidMakesNoCall(t *testing.T) {
	e := setup(t, stripekonbini.Config{})
	req := request()
	req.Amount = 100
	_, err := e.client.Create(context.Background(), req)
	if billing.ErrorCode(err) != billing.EINVALID {
		t.Errorf("err = %v", err)
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("%d requests", n)
	}
}

// TestIdempotencyConflictBeforeSearchCatchesUp: a retry whose expires_at
// was clamped anew meets Stripe's idempotency check before its search index
// shows the intent the key made: the error is temporary (retried later,
// when the look-up finds the live intent), never a permanent failure.
func TestIdempotencyConflictBeforeSearchCatchesUp(t *testing.T) {
	e := setup(t, stripekonbini.Config{})
	target, _ := url.Parse(e.fake.URL)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/payment_intents/search") { // the index lags
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"object":"search_result","url":"/v1/payment_intents/search","has_more":false,"data":[]}`)
			return
		}
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	client, err := stripekonbini.New(stripekonbini.Config{APIKey: apiKey, WebhookSecret: secret, BaseURL: proxy.URL,
		MaxNetworkRetries: new(int64), Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := request()
	req.ExpiresAt = time.Now().Add(90 * 24 * time.Hour) // clamped to now + 60 days, which moves
	if _, err := client.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(2 * time.Minute)
	_, err = client.Create(ctx, req)
	var ce *collection.Error
	if !errors.As(err, &ce) || !ce.Temporary {
		t.Fatalf("err = %v, want a temporary error", err)
	}
}
