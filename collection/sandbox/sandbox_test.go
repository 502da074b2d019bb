package sandbox_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"billingd/collection"
	"billingd/collection/opn"
	"billingd/collection/sandbox"
)

const secretKey = "skey_test_sandbox"

var webhookSecret = base64.StdEncoding.EncodeToString([]byte("sandbox webhook secret"))

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *testClock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// receiver is a webhook endpoint that verifies signatures with the opn
// client and can be told to fail or hang.
type receiver struct {
	srv    *httptest.Server
	events chan *collection.WebhookEvent
	fail   atomic.Bool
	hang   atomic.Bool
	calls  atomic.Int32
}

func newReceiver(t *testing.T, clock *testClock) *receiver {
	verifier, err := opn.New(opn.Config{WebhookSecret: webhookSecret})
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{events: make(chan *collection.WebhookEvent, 100)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.calls.Add(1)
		body, _ := io.ReadAll(r.Body) // read, so that the server notices the client leaving
		if rc.hang.Load() {
			<-r.Context().Done()
			return
		}
		if rc.fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		ev, err := verifier.ParseWebhook(r.Header, body, clock.Now())
		if err != nil {
			t.Errorf("webhook: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		rc.events <- ev
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// next returns the next event, failing after a few seconds.
func (rc *receiver) next(t *testing.T) *collection.WebhookEvent {
	t.Helper()
	select {
	case ev := <-rc.events:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no webhook event")
		return nil
	}
}

type env struct {
	clock  *testClock
	rc     *receiver
	sb     *sandbox.Server
	url    string
	client *opn.Client
}

func newEnv(t *testing.T, edit func(*sandbox.Config)) *env {
	t.Helper()
	e := &env{clock: &testClock{t: time.Date(2026, 4, 1, 0, 30, 0, 0, time.UTC)}}
	e.rc = newReceiver(t, e.clock)
	cfg := sandbox.Config{SecretKey: secretKey, Clock: e.clock, WebhookURL: e.rc.srv.URL, WebhookSecret: webhookSecret}
	if edit != nil {
		edit(&cfg)
	}
	e.start(t, cfg)
	return e
}

// start serves a sandbox for cfg and points the client at it.
func (e *env) start(t *testing.T, cfg sandbox.Config) {
	t.Helper()
	sb, err := sandbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb)
	t.Cleanup(func() { srv.Close(); sb.Close() })
	e.sb, e.url = sb, srv.URL
	e.client, err = opn.New(opn.Config{Name: "sandbox", BaseURL: srv.URL, SecretKey: secretKey, Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
}

var attempts atomic.Int64

func (e *env) create(t *testing.T, expiresAt time.Time) *collection.Charge {
	t.Helper()
	ch, err := e.client.Create(context.Background(), collection.CreateRequest{
		InvoiceID: "in_1", AttemptID: fmt.Sprint("att_", attempts.Add(1)), Amount: 1000, ExpiresAt: expiresAt,
		Payer: collection.Payer{Name: "山田太郎", Email: "taro@example.com", Phone: "0312345678"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func (e *env) get(t *testing.T, id string) *collection.Charge {
	t.Helper()
	ch, err := e.client.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// do sends a raw API request and returns the status and decoded JSON body.
func (e *env) do(t *testing.T, method, path, contentType, body string, auth bool) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth {
		req.SetBasicAuth(secretKey, "")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// waitNextDue waits until NextDue is want, after the background delivery of
// charge.create.
func waitNextDue(t *testing.T, sb *sandbox.Server, want time.Time) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if next, ok := sb.NextDue(); ok && next.Equal(want) {
			return
		}
	}
	got, _ := sb.NextDue()
	t.Fatalf("NextDue = %v, want %v", got, want)
}

func TestTickExpiresCharges(t *testing.T) {
	e := newEnv(t, nil)
	expires := e.clock.Now().Add(2 * time.Hour)
	ch := e.create(t, expires)
	if ev := e.rc.next(t); ev.Type != "charge.create" || ev.ChargeID != ch.ID {
		t.Fatalf("event %+v", ev)
	}
	waitNextDue(t, e.sb, expires)

	e.clock.Add(time.Hour)
	if err := e.sb.Tick(context.Background(), e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if got := e.get(t, ch.ID); got.Status != collection.StatusPending {
		t.Fatalf("status before expiry = %s", got.Status)
	}

	e.clock.Set(expires)
	if err := e.sb.Tick(context.Background(), expires); err != nil {
		t.Fatal(err)
	}
	select { // delivered before Tick returned
	case ev := <-e.rc.events:
		if ev.Type != "charge.complete" || ev.ChargeID != ch.ID {
			t.Fatalf("event %+v", ev)
		}
	default:
		t.Fatal("no charge.complete event after Tick")
	}
	got := e.get(t, ch.ID)
	if got.Status != collection.StatusExpired || got.FailureCode != "timeout" {
		t.Errorf("after expiry %+v", got)
	}
	if next, ok := e.sb.NextDue(); ok {
		t.Errorf("NextDue = %v, want nothing due", next)
	}
}

func TestWebhookRetriedOnTick(t *testing.T) {
	e := newEnv(t, nil)
	e.rc.fail.Store(true)
	start := e.clock.Now()
	ch := e.create(t, time.Time{})
	waitNextDue(t, e.sb, start.Add(time.Minute)) // first retry a minute later

	e.clock.Add(30 * time.Second)
	_ = e.sb.Tick(context.Background(), e.clock.Now())
	if n := e.rc.calls.Load(); n != 1 {
		t.Fatalf("%d delivery attempts before the retry is due, want 1", n)
	}

	e.clock.Set(start.Add(time.Minute))
	_ = e.sb.Tick(context.Background(), e.clock.Now())
	waitNextDue(t, e.sb, start.Add(3*time.Minute)) // second failure: two minutes later

	e.rc.fail.Store(false)
	e.clock.Set(start.Add(3 * time.Minute))
	_ = e.sb.Tick(context.Background(), e.clock.Now())
	if ev := e.rc.next(t); ev.Type != "charge.create" || ev.ChargeID != ch.ID {
		t.Fatalf("event %+v", ev)
	}
	if next, _ := e.sb.NextDue(); !next.Equal(start.Add(opn.MaxExpiry)) {
		t.Errorf("NextDue = %v, want the charge's expiry", next)
	}
}

func TestWebhookTimeoutDoesNotBlock(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.WebhookTimeout = 200 * time.Millisecond })
	e.rc.hang.Store(true)
	ch := e.create(t, time.Time{})
	began := time.Now()
	status, body := e.do(t, "POST", "/charges/"+ch.ID+"/mark_as_paid", "", "", true)
	if status != 200 || body["status"] != "successful" {
		t.Fatalf("mark_as_paid: %d %v", status, body)
	}
	// The endpoint never answers: only the 200 ms delivery timeout lets the
	// request return at all (the bound is a hang detector, not a speed goal).
	if d := time.Since(began); d > 30*time.Second {
		t.Errorf("mark_as_paid hung for %v on a hanging webhook endpoint", d)
	}
	waitNextDue(t, e.sb, e.clock.Now().Add(time.Minute))
}

func TestStatePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sandbox.json")
	e := newEnv(t, func(c *sandbox.Config) { c.StatePath = path })
	e.rc.fail.Store(true)
	ch := e.create(t, time.Time{})
	waitNextDue(t, e.sb, e.clock.Now().Add(time.Minute))

	// A restarted daemon: a new server on the same file.
	e.start(t, sandbox.Config{SecretKey: secretKey, Clock: e.clock, WebhookURL: e.rc.srv.URL, WebhookSecret: webhookSecret, StatePath: path})
	got := e.get(t, ch.ID)
	if got.Status != collection.StatusPending || got.PaymentCodes[0] != ch.PaymentCodes[0] || got.InvoiceID != "in_1" {
		t.Fatalf("after restart %+v", got)
	}
	if next, _ := e.sb.NextDue(); !next.Equal(e.clock.Now().Add(time.Minute)) {
		t.Errorf("undelivered event lost: NextDue = %v", next)
	}
	if ch2 := e.create(t, time.Time{}); ch2.PaymentCodes[0] == ch.PaymentCodes[0] {
		t.Errorf("payment code %s reused after restart", ch.PaymentCodes[0].PaymentCode)
	}
}

// TestStateJournal: the state file takes each change as a line; a restart
// finds the last state of each charge, drops a line cut short by a crash,
// rewrites the file with a line per charge, and reads a file in the format
// before the journal.
func TestStateJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sandbox.json")
	e := newEnv(t, func(c *sandbox.Config) { c.StatePath = path; c.WebhookURL = "" })
	ch := e.create(t, time.Time{})
	if status, body := e.do(t, "POST", "/charges/"+ch.ID+"/mark_as_paid", "", "", true); status != 200 {
		t.Fatalf("mark_as_paid: %d %v", status, body)
	}
	var ids []string
	for range 300 {
		ids = append(ids, e.create(t, time.Time{}).ID)
	}
	// Cut the last line short, as a crash while appending would.
	data, _ := os.ReadFile(path)
	if err := os.WriteFile(path, append(data, `{"charge":{"id":"chrg_torn`...), 0o600); err != nil {
		t.Fatal(err)
	}
	restart := sandbox.Config{SecretKey: secretKey, Clock: e.clock, StatePath: path}
	e.start(t, restart)
	if got := e.get(t, ch.ID); got.Status != collection.StatusSuccessful {
		t.Errorf("after restart the paid charge is %s", got.Status)
	}
	if got := e.get(t, ids[len(ids)-1]); got.Status != collection.StatusPending {
		t.Errorf("after restart the last charge is %s", got.Status)
	}
	// Opened, the file was rewritten with a line per charge.
	data, _ = os.ReadFile(path)
	if n := bytes.Count(data, []byte("\n")); n != 301 || bytes.Contains(data, []byte("chrg_torn")) {
		t.Errorf("state file after restart: %d lines for 301 charges", n)
	}

	// The format before the journal: the whole state as one object.
	old := filepath.Join(t.TempDir(), "old.json")
	if err := os.WriteFile(old, []byte(`{"charges":[{"object":"charge","id":"chrg_test_old","amount":1000,"currency":"JPY","status":"pending","metadata":{"invoice_id":"in_9"}}],"deliveries":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	e.start(t, sandbox.Config{SecretKey: secretKey, Clock: e.clock, StatePath: old})
	if got := e.get(t, "chrg_test_old"); got.InvoiceID != "in_9" {
		t.Errorf("old state file: %+v", got)
	}
}

func TestCreateValidation(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.WebhookURL = "" })
	form := func(edit func(url.Values)) string {
		v := url.Values{"amount": {"300"}, "currency": {"JPY"}, "source[type]": {"econtext"},
			"source[name]": {"ヤマダタロウ"}, "source[email]": {"taro@example.com"}, "source[phone_number]": {"01234567891"},
			"metadata[invoice_id]": {"in_1"}}
		edit(v)
		return v.Encode()
	}
	const formType = "application/x-www-form-urlencoded"
	past := e.clock.Now().Add(-time.Minute).Format(time.RFC3339)
	late := e.clock.Now().Add(31 * 24 * time.Hour).Format(time.RFC3339)
	for _, tc := range []struct {
		name, contentType, body string
		auth                    bool
		status                  int
		code                    string
	}{
		{"OKForm", formType, form(func(url.Values) {}), true, 200, ""},
		{"OKJSON", "application/json", `{"amount":300,"currency":"jpy","source":{"type":"econtext","name":"ヤマダタロウ","email":"taro@example.com","phone_number":"01234567891"},"metadata":{"invoice_id":"in_1"}}`, true, 200, ""},
		{"ErrNoAuth", formType, form(func(url.Values) {}), false, 401, "authentication_failure"},
		{"ErrAmountBelowMinimum", formType, form(func(v url.Values) { v.Set("amount", "199") }), true, 400, "invalid_charge"},
		{"ErrAmountAboveMaximum", formType, form(func(v url.Values) { v.Set("amount", "50000") }), true, 400, "invalid_charge"},
		{"ErrCurrency", formType, form(func(v url.Values) { v.Set("currency", "THB") }), true, 400, "invalid_charge"},
		{"ErrSourceType", formType, form(func(v url.Values) { v.Set("source[type]", "card") }), true, 400, "bad_request"},
		{"ErrNameTooLong", formType, form(func(v url.Values) { v.Set("source[name]", "ヤマダタロウヤマダタロ") }), true, 400, "bad_request"},
		{"ErrNameNotNormalised", formType, form(func(v url.Values) { v.Set("source[name]", "ﾔﾏﾀﾞ") }), true, 400, "bad_request"},
		{"ErrNameSpace", formType, form(func(v url.Values) { v.Set("source[name]", "山田 太郎") }), true, 400, "bad_request"},
		{"ErrEmailTooShort", formType, form(func(v url.Values) { v.Set("source[email]", "a@b.j") }), true, 400, "bad_request"},
		{"ErrPhoneWithHyphens", formType, form(func(v url.Values) { v.Set("source[phone_number]", "090-1234-5678") }), true, 400, "bad_request"},
		{"ErrExpiresInPast", formType, form(func(v url.Values) { v.Set("expires_at", past) }), true, 400, "invalid_charge"},
		{"ErrExpiresTooLate", formType, form(func(v url.Values) { v.Set("expires_at", late) }), true, 400, "invalid_charge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.do(t, "POST", "/charges", tc.contentType, tc.body, tc.auth)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, body)
			}
			if tc.code != "" && (body["object"] != "error" || body["code"] != tc.code) {
				t.Errorf("body %v, want error %s", body, tc.code)
			}
			if tc.code == "" && (body["status"] != "pending" || body["metadata"].(map[string]any)["invoice_id"] != "in_1") {
				t.Errorf("body %v", body)
			}
		})
	}
}

func TestList(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.WebhookURL = "" })
	t0 := e.clock.Now()
	var ids []string
	for range 3 {
		ids = append(ids, e.create(t, time.Time{}).ID)
		e.clock.Add(time.Hour)
	}
	ts := func(d time.Duration) string { return url.QueryEscape(t0.Add(d).Format(time.RFC3339)) }
	for _, tc := range []struct {
		name, query string
		total       float64
		want        []string
	}{
		{"DefaultChronological", "", 3, ids},
		{"Reverse", "?order=reverse_chronological", 3, []string{ids[2], ids[1], ids[0]}},
		{"FromTo", "?from=" + ts(time.Hour) + "&to=" + ts(time.Hour), 1, ids[1:2]},
		{"LimitOffset", "?order=reverse_chronological&limit=1&offset=1", 3, ids[1:2]},
		{"OffsetPastEnd", "?offset=5", 3, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.do(t, "GET", "/charges"+tc.query, "", "", true)
			if status != 200 || body["object"] != "list" || body["total"] != tc.total {
				t.Fatalf("%d %v", status, body)
			}
			var got []string
			for _, ch := range body["data"].([]any) {
				got = append(got, ch.(map[string]any)["id"].(string))
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("ids %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("ErrLimitTooLarge", func(t *testing.T) {
		if status, body := e.do(t, "GET", "/charges?limit=101", "", "", true); status != 400 || body["code"] != "bad_request" {
			t.Errorf("%d %v", status, body)
		}
	})
}

func TestTestModeActions(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.WebhookURL = "" })
	ch := e.create(t, time.Time{})
	status, body := e.do(t, "POST", "/charges/"+ch.ID+"/mark_as_failed", "application/x-www-form-urlencoded", "failure_code=payment_cancelled", true)
	if status != 200 || body["status"] != "failed" || body["failure_code"] != "payment_cancelled" {
		t.Fatalf("mark_as_failed: %d %v", status, body)
	}
	if got := e.get(t, ch.ID); got.Status != collection.StatusFailed || got.FailureMessage != "Payment cancelled by payer." {
		t.Errorf("after mark_as_failed %+v", got)
	}
	for _, tc := range []struct {
		name, path string
		status     int
		code       string
	}{
		{"ErrNotPending", "/charges/" + ch.ID + "/mark_as_paid", 400, "invalid_charge"},
		{"ErrUnknownCharge", "/charges/chrg_test_missing/expire", 404, "not_found"},
		{"ErrUnknownAction", "/charges/" + ch.ID + "/refund", 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, body := e.do(t, "POST", tc.path, "", "", true); status != tc.status || body["code"] != tc.code {
				t.Errorf("%d %v", status, body)
			}
		})
	}
	t.Run("Expire", func(t *testing.T) {
		ch := e.create(t, time.Time{})
		if status, body := e.do(t, "POST", "/charges/"+ch.ID+"/expire", "", "", true); status != 200 || body["status"] != "expired" {
			t.Errorf("%d %v", status, body)
		}
		if got := e.get(t, ch.ID); got.Status != collection.StatusExpired {
			t.Errorf("after expire %+v", got)
		}
	})
}

func TestAuthorizeHook(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) {
		c.WebhookURL = ""
		c.Authorize = func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer api_key" }
	})
	req, _ := http.NewRequest("GET", e.url+"/charges", nil)
	req.Header.Set("Authorization", "Bearer api_key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("with the API key: %s", resp.Status)
	}
	if status, _ := e.do(t, "GET", "/charges", "", "", true); status != 401 {
		t.Errorf("with Basic auth replaced by Authorize: %d", status)
	}
}
