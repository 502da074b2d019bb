package opn_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"billingd/collection"
	"billingd/collection/opn"
	"billingd/collection/sandbox"
)

const secretKey = "skey_test_billingd"

var webhookSecret = base64.StdEncoding.EncodeToString([]byte("webhook secret"))

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// env is the opn client talking to the sandbox, mounted under /sandbox/opn
// as billingd mounts it, with a webhook receiver that verifies signatures.
type env struct {
	clock  *testClock
	sb     *sandbox.Server
	base   string // the sandbox's URL
	client *opn.Client
	events chan *collection.WebhookEvent
}

func newEnv(t *testing.T, timeout time.Duration) *env {
	t.Helper()
	e := &env{
		clock:  &testClock{t: time.Date(2026, 4, 1, 0, 30, 0, 0, time.UTC)},
		events: make(chan *collection.WebhookEvent, 200),
	}
	verifier, err := opn.New(opn.Config{WebhookSecret: webhookSecret})
	if err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := verifier.ParseWebhook(r.Header, body, e.clock.Now())
		if err != nil {
			t.Errorf("webhook: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		e.events <- ev
	}))
	e.sb, err = sandbox.New(sandbox.Config{SecretKey: secretKey, Clock: e.clock, WebhookURL: hook.URL, WebhookSecret: webhookSecret})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/sandbox/opn/", http.StripPrefix("/sandbox/opn", e.sb))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); e.sb.Close(); hook.Close() })
	e.base = srv.URL + "/sandbox/opn"
	e.client = e.newClient(t, secretKey, e.base, timeout)
	return e
}

func (e *env) newClient(t *testing.T, key, base string, timeout time.Duration) *opn.Client {
	c, err := opn.New(opn.Config{Name: "sandbox", BaseURL: base, SecretKey: key, WebhookSecret: webhookSecret,
		Clock: e.clock, HTTPClient: &http.Client{Timeout: timeout}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// call sends a request to the sandbox API and decodes the JSON answer.
func (e *env) call(t *testing.T, method, path string, out any) {
	t.Helper()
	req, _ := http.NewRequest(method, e.base+path, nil)
	req.SetBasicAuth(secretKey, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s %s", method, path, resp.Status, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatal(err)
		}
	}
}

// waitEvent waits for the event typ about chargeID, skipping others.
func (e *env) waitEvent(t *testing.T, typ, chargeID string) *collection.WebhookEvent {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-e.events:
			if ev.Type == typ && ev.ChargeID == chargeID {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event for %s", typ, chargeID)
		}
	}
}

func request(attempt string) collection.CreateRequest {
	return collection.CreateRequest{
		InvoiceID: "in_test_1", AttemptID: attempt, Amount: 300, Description: "請求書 INV-0001",
		Payer: collection.Payer{Name: "ﾔﾏﾀﾞ ﾀﾛｳ", Email: "taro.yamada@example.com", Phone: "090-1234-5678"},
	}
}

func TestEndToEnd(t *testing.T) {
	e := newEnv(t, 5*time.Second)
	ctx := context.Background()
	req := request("att_1")
	req.ExpiresAt = e.clock.Now().Add(7 * 24 * time.Hour)

	ch, err := e.client.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ch.ID, "chrg_test_") || ch.Status != collection.StatusPending || ch.Amount != 300 ||
		ch.InvoiceID != "in_test_1" || ch.AttemptID != "att_1" || !ch.ExpiresAt.Equal(req.ExpiresAt) {
		t.Fatalf("created %+v", ch)
	}
	if len(ch.PaymentCodes) != 1 || len(ch.PaymentCodes[0].PaymentCode) < 6 {
		t.Fatalf("payment codes %+v", ch.PaymentCodes)
	}
	e.waitEvent(t, "charge.create", ch.ID)

	// The normalised payer details are what reached Opn.
	var raw struct {
		Source struct {
			Name        string
			PhoneNumber string `json:"phone_number"`
		}
		Description     string
		TransactionFees map[string]string `json:"transaction_fees"`
	}
	e.call(t, "GET", "/charges/"+ch.ID, &raw)
	if raw.Source.Name != "ヤマダタロウ" || raw.Source.PhoneNumber != "09012345678" || raw.Description != req.Description {
		t.Errorf("sent %+v", raw)
	}
	if fmt.Sprint(raw.TransactionFees) != "map[fee_flat:150.0 fee_rate:0.5 vat_rate:10.0]" {
		t.Errorf("transaction_fees %v", raw.TransactionFees)
	}

	// The instructions page is served under the mount prefix and needs no auth.
	if !strings.HasPrefix(ch.InstructionsURL, e.base+"/offlines/econtext/instructions/oflp_test_") {
		t.Fatalf("instructions URL %q", ch.InstructionsURL)
	}
	resp, err := http.Get(ch.InstructionsURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), ch.PaymentCodes[0].PaymentCode) {
		t.Errorf("instructions page: %s\n%s", resp.Status, page)
	}

	got, err := e.client.Get(ctx, ch.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != collection.StatusPending || got.Fee != nil || got.PaidAt != nil {
		t.Fatalf("pending charge %+v", got)
	}

	e.clock.Add(time.Hour)
	e.call(t, "POST", "/charges/"+ch.ID+"/mark_as_paid", nil)
	e.waitEvent(t, "charge.complete", ch.ID)

	got, err = e.client.Get(ctx, ch.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != collection.StatusSuccessful || got.PaidAt == nil || !got.PaidAt.Equal(e.clock.Now()) {
		t.Fatalf("paid charge %+v", got)
	}
	if got.Fee == nil || *got.Fee != 152 || *got.FeeVAT != 15 || *got.Net != 133 {
		t.Errorf("fees %v/%v/%v, want 152/15/133", *got.Fee, *got.FeeVAT, *got.Net)
	}
}

func TestCreateClampsExpiry(t *testing.T) {
	e := newEnv(t, 5*time.Second)
	now := e.clock.Now()
	for _, tc := range []struct {
		name      string
		expiresAt time.Time
		want      time.Time
	}{
		{"Kept", now.Add(48 * time.Hour), now.Add(48 * time.Hour)},
		{"DefaultWhenZero", time.Time{}, now.Add(opn.MaxExpiry)},
		{"ClampedToMaximum", now.Add(90 * 24 * time.Hour), now.Add(opn.MaxExpiry)},
		{"RaisedToMinimum", now.Add(-time.Hour), now.Add(opn.MinExpiry)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := request("att_" + tc.name)
			req.ExpiresAt = tc.expiresAt
			ch, err := e.client.Create(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if !ch.ExpiresAt.Equal(tc.want) {
				t.Errorf("expires_at = %v, want %v", ch.ExpiresAt, tc.want)
			}
		})
	}
}

func TestCreateRejectsInvalidBeforeCalling(t *testing.T) {
	e := newEnv(t, 5*time.Second)
	e.sb.InjectFaults(sandbox.FaultError, 1) // would make any call fail
	req := request("att_1")
	req.Amount = 50_000
	if _, err := e.client.Create(context.Background(), req); err == nil || collection.IsTemporary(err) || !strings.Contains(err.Error(), "param=amount") {
		t.Fatalf("Create = %v, want EINVALID on amount", err)
	}
	if _, err := e.client.Get(context.Background(), "chrg_test_x"); !collection.IsTemporary(err) {
		t.Fatalf("the injected fault was consumed by the invalid Create: Get = %v", err)
	}
}

func TestFindByAttemptAfterLostResponse(t *testing.T) {
	e := newEnv(t, 500*time.Millisecond)
	ctx := context.Background()
	since := e.clock.Now()
	e.sb.InjectFaults(sandbox.FaultLoseResponse, 1)
	if _, err := e.client.Create(ctx, request("att_lost")); !collection.IsTemporary(err) {
		t.Fatalf("Create with lost response = %v, want a temporary error", err)
	}
	e.clock.Add(time.Minute)
	ch, err := e.client.FindByAttempt(ctx, "in_test_1", "att_lost", since)
	if err != nil || ch == nil {
		t.Fatalf("FindByAttempt = %+v, %v", ch, err)
	}
	if ch.Status != collection.StatusPending || ch.AttemptID != "att_lost" || len(ch.PaymentCodes) != 1 {
		t.Errorf("found %+v", ch)
	}
	if ch, err := e.client.FindByAttempt(ctx, "in_test_1", "att_other", since); ch != nil || err != nil {
		t.Errorf("FindByAttempt(other attempt) = %+v, %v; want nil, nil", ch, err)
	}
}

func TestFindByAttemptPaginates(t *testing.T) {
	e := newEnv(t, 5*time.Second)
	ctx := context.Background()
	since := e.clock.Now()
	for i := range 105 {
		if _, err := e.client.Create(ctx, request(fmt.Sprintf("att_%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	// The oldest is on the second page, newest first.
	ch, err := e.client.FindByAttempt(ctx, "in_test_1", "att_0", since)
	if err != nil || ch == nil || ch.AttemptID != "att_0" {
		t.Fatalf("FindByAttempt = %+v, %v", ch, err)
	}
	// Charges created well before since are not searched.
	e.clock.Add(time.Hour)
	if ch, err := e.client.FindByAttempt(ctx, "in_test_1", "att_0", e.clock.Now()); ch != nil || err != nil {
		t.Errorf("FindByAttempt(since later) = %+v, %v; want nil, nil", ch, err)
	}
}

func TestErrorClassification(t *testing.T) {
	e := newEnv(t, 300*time.Millisecond)
	ctx := context.Background()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tooMany := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"object":"error","code":"too_many_requests","message":"slow down"}`)
	}))
	defer tooMany.Close()

	for _, tc := range []struct {
		name      string
		setup     func() *opn.Client
		status    int
		code      string
		temporary bool
	}{
		{"TemporaryOnServerError", func() *opn.Client { e.sb.InjectFaults(sandbox.FaultError, 1); return e.client }, 500, "internal_error", true},
		{"TemporaryOnTimeout", func() *opn.Client { e.sb.InjectFaults(sandbox.FaultTimeout, 1); return e.client }, 0, "timeout", true},
		{"TemporaryOnConnectionRefused", func() *opn.Client { return e.newClient(t, secretKey, closed.URL, time.Second) }, 0, "connection_error", true},
		{"TemporaryOnRateLimit", func() *opn.Client { return e.newClient(t, secretKey, tooMany.URL, time.Second) }, 429, "too_many_requests", true},
		{"PermanentOnBadSecretKey", func() *opn.Client { return e.newClient(t, "skey_test_wrong", e.base, time.Second) }, 401, "authentication_failure", false},
		{"PermanentOnNotFound", func() *opn.Client { return e.client }, 404, "not_found", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.setup().Get(ctx, "chrg_test_missing")
			var pe *collection.Error
			if !errors.As(err, &pe) {
				t.Fatalf("Get = %v, want *collection.Error", err)
			}
			if pe.Status != tc.status || pe.Code != tc.code || pe.Temporary != tc.temporary || collection.IsTemporary(err) != tc.temporary {
				t.Errorf("Get = %#v", pe)
			}
		})
	}
}

func TestCancelIsNoop(t *testing.T) {
	e := newEnv(t, 5*time.Second)
	ch, err := e.client.Create(context.Background(), request("att_1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.Cancel(context.Background(), ch.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.client.Get(context.Background(), ch.ID); got.Status != collection.StatusPending {
		t.Errorf("status after Cancel = %s", got.Status)
	}
}
