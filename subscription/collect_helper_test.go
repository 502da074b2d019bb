package subscription_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"billingd/billing"
	"billingd/billing/store"
	"billingd/collection"
	"billingd/collection/opn"
	"billingd/collection/sandbox"
)

// opnWorld is the collection side of the simulated year: billingd's
// Collector with the real Opn client, pointed at the Opn emulator (package
// sandbox) served over HTTP, and billingd's Opn webhook endpoint, which the
// emulator calls signed. All three share the simulation's clock. The
// customer "pays at the store" through the emulator's test-mode
// mark_as_paid; vouchers expire when the emulator's Tick passes their
// deadline. Either way the emulator sends charge.complete to the webhook
// endpoint, which stores it, and the collector's next pass re-fetches the
// charge and applies it (payment, excess to the balance, reissue, dunning).
//
// Some webhooks are lost for good (the endpoint answers 503 to every
// delivery of them until the emulator gives up): the collector's
// reconciliation then learns of the charge once it is two hours past its
// deadline. Only webhooks about vouchers billingd still has as live are
// lost: it asks about no other. charge.create events are acknowledged and dropped: the
// collector records a creation from the API's answer, and the event only
// matters after a lost answer, which this test does not simulate.
type opnWorld struct {
	t    *testing.T
	db   *store.DB
	clk  billing.Clock
	sb   *sandbox.Server
	base string // the emulator's API
	http *http.Client
	col  *collection.Collector

	mu   sync.Mutex
	lost map[string]bool // charge id/status: the webhooks that never arrive
}

const (
	opnSecretKey     = "skey_test_property"
	opnWebhookSecret = "cHJvcGVydHktdGVzdC13ZWJob29rLXNlY3JldA==" // base64
)

func newOpnWorld(t *testing.T, db *store.DB, clk billing.Clock, settings billing.Settings) *opnWorld {
	t.Helper()
	w := &opnWorld{t: t, db: db, clk: clk, lost: map[string]bool{}, http: &http.Client{Timeout: 30 * time.Second}}
	logger := slog.New(slog.DiscardHandler)
	hooks := httptest.NewServer(http.HandlerFunc(w.webhook))
	sb, err := sandbox.New(sandbox.Config{SecretKey: opnSecretKey, Clock: clk, WebhookURL: hooks.URL, WebhookSecret: opnWebhookSecret, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(sb)
	t.Cleanup(func() { api.Close(); sb.Close(); hooks.Close() })
	client, err := opn.New(opn.Config{Name: "opn", BaseURL: api.URL, SecretKey: opnSecretKey, WebhookSecret: opnWebhookSecret, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	w.sb, w.base = sb, api.URL
	// As cmd/billingd configures it: the operator's dunning policy is the
	// default one (2 reissues of 7 days, the invoice stays open, the
	// subscription becomes past_due); subscriptions override it.
	w.col = &collection.Collector{DB: db, Clock: clk, Provider: client, Settings: settings, Logger: logger,
		SplitAboveMax: true, Reissues: billing.DefaultVoucherReissues, ReissueDays: billing.DefaultVoucherReissueDays}
	return w
}

// webhook is billingd's POST /webhooks/opn, less the events this test
// drops (see opnWorld).
func (w *opnWorld) webhook(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	var ev struct {
		Key  string `json:"key"`
		Data struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	lost := w.lost[ev.Data.ID+"/"+ev.Data.Status]
	w.mu.Unlock()
	switch {
	case ev.Key == "charge.create":
		io.WriteString(rw, `{"received":true}`)
		return
	case lost:
		http.Error(rw, "lost", http.StatusServiceUnavailable)
		return
	}
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	w.col.WebhookHandler(nil)(rw, r)
}

// loseWebhook makes every delivery of the event telling that the charge
// became status fail.
func (w *opnWorld) loseWebhook(chargeID, status string) {
	w.mu.Lock()
	w.lost[chargeID+"/"+status] = true
	w.mu.Unlock()
}

// pay pays a charge at the store through the emulator's test-mode route;
// late pays one the emulator already expired (a payment made at the
// deadline, reported after the expiry). It reports whether the emulator
// took the payment: a charge that is no longer payable is refused.
func (w *opnWorld) pay(chargeID string, late bool) bool {
	w.t.Helper()
	form := url.Values{}
	if late {
		form.Set("late", "true")
	}
	req, err := http.NewRequest(http.MethodPost, w.base+"/charges/"+url.PathEscape(chargeID)+"/mark_as_paid", strings.NewReader(form.Encode()))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(opnSecretKey, "")
	resp, err := w.http.Do(req)
	if err != nil {
		w.t.Fatalf("mark_as_paid %s: %v", chargeID, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	switch {
	case resp.StatusCode == http.StatusOK:
		return true
	case resp.StatusCode == http.StatusBadRequest && strings.Contains(string(body), "invalid_charge"):
		return false
	}
	w.t.Fatalf("mark_as_paid %s: %s %s", chargeID, resp.Status, body)
	return false
}

// collect runs the emulator's work due at now (expiring vouchers past
// their deadline, delivering and retrying webhooks), then the collector's
// passes until nothing it can do at now is left: vouchers issued for new
// invoices, webhooks applied, silent vouchers past their deadline asked
// about, vouchers of ended invoices canceled.
func (w *opnWorld) collect(ctx context.Context, now time.Time) {
	w.t.Helper()
	if err := w.sb.Tick(ctx, now); err != nil {
		w.t.Fatal(err)
	}
	for i := 0; ; i++ {
		if err := w.col.Run(ctx, now); err != nil {
			w.t.Fatalf("collector at %v: %v", now, err)
		}
		var left int
		err := w.db.NewRaw(`SELECT
			(SELECT count(*) FROM provider_events WHERE processed_at IS NULL)
			+ (SELECT count(*) FROM invoices WHERE collection_status IN ('pending', 'canceling'))
			+ (SELECT count(*) FROM vouchers WHERE status = 'pending' AND provider_id <> '' AND expires_at < ?
				AND (next_attempt_at IS NULL OR next_attempt_at <= ?))`, now.UTC().Add(-2*time.Hour), now.UTC()).Scan(ctx, &left)
		if err != nil {
			w.t.Fatal(err)
		}
		if left == 0 {
			return
		}
		if i == 20 {
			w.t.Fatalf("collector at %v: %d items of work left after %d passes", now, left, i+1)
		}
	}
}

// voucherState is a voucher as the test sees it when choosing what a
// customer pays.
type voucherState struct {
	ID          string    `bun:"id"`
	ProviderID  string    `bun:"provider_id"`
	Status      string    `bun:"status"`
	FailureCode string    `bun:"failure_code"`
	Amount      int64     `bun:"amount"`
	ExpiresAt   time.Time `bun:"expires_at"`
	CustomerID  string    `bun:"customer_id"`
	Invoice     string    `bun:"invoice_status"`
}

func (v voucherState) String() string {
	return fmt.Sprintf("voucher %s (%s, %s, ¥%d, invoice %s)", v.ID, v.ProviderID, v.Status, v.Amount, v.Invoice)
}
