package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"billingd/billing/webhook"
)

// whEvent is an event as a receiver got it.
type whEvent struct {
	ID      string    `json:"id"`
	Object  string    `json:"object"`
	Type    string    `json:"type"`
	Created time.Time `json:"created"`
	Data    struct {
		Object map[string]any `json:"object"`
	} `json:"data"`
}

// whReceiver is the operator's application: it checks every signature and
// records the events, answering with status (200 by default), or hangs until
// release is closed.
type whReceiver struct {
	t       *testing.T
	d       *daemon
	srv     *httptest.Server
	release chan struct{} // closed by unhang
	once    sync.Once

	mu        sync.Mutex
	secret    string
	tolerance time.Duration // of the signature's timestamp against the daemon's clock
	status    int
	hang      bool
	events    []whEvent
	hits      int
	abandoned int // hanging requests the daemon gave up on (its timeout)
}

func newWHReceiver(t *testing.T) *whReceiver {
	rc := &whReceiver{t: t, status: http.StatusOK, tolerance: 5 * time.Minute, release: make(chan struct{})}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *whReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.hits++
	secret, status, hang, tolerance := rc.secret, rc.status, rc.hang, rc.tolerance
	rc.mu.Unlock()
	if hang {
		select {
		case <-rc.release:
		case <-r.Context().Done():
			rc.mu.Lock()
			rc.abandoned++
			rc.mu.Unlock()
			return
		}
	}
	if err := webhook.Verify(body, r.Header.Get("Billing-Signature"), secret, tolerance, rc.d.m.Clock.Now()); err != nil {
		rc.t.Errorf("delivery with a bad signature: %v (%s)", err, r.Header.Get("Billing-Signature"))
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	var ev whEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		rc.t.Errorf("delivery body %q: %v", body, err)
	}
	if status/100 == 2 {
		rc.mu.Lock()
		rc.events = append(rc.events, ev)
		rc.mu.Unlock()
	}
	w.WriteHeader(status)
}

// unhang lets hanging requests, and later ones, answer.
func (rc *whReceiver) unhang() { rc.once.Do(func() { close(rc.release) }) }

func (rc *whReceiver) set(f func(rc *whReceiver)) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	f(rc)
}

// got returns "type object" of each event received, in order.
func (rc *whReceiver) got() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, ev := range rc.events {
		out = append(out, ev.Type+" "+ev.Data.Object["id"].(string))
	}
	return out
}

// endpoint registers rc for events and keeps the secret.
func (rc *whReceiver) endpoint(d *daemon, events ...string) map[string]any {
	d.t.Helper()
	rc.d = d
	ep := d.must("POST", "/v1/webhook_endpoints", map[string]any{"url": rc.srv.URL + "/billing", "events": events})
	secret, _ := ep["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") || ep["status"] != "enabled" || ep["object"] != "webhook_endpoint" {
		d.t.Fatalf("created endpoint: %v", ep)
	}
	rc.set(func(rc *whReceiver) { rc.secret = secret })
	return ep
}

func (d *daemon) deliveries(endpoint string) []any {
	d.t.Helper()
	return d.must("GET", "/v1/webhook_endpoints/"+endpoint+"/deliveries?limit=100", nil)["data"].([]any)
}

// allDelivered reports whether every delivery to endpoint succeeded.
func (d *daemon) allDelivered(endpoint string) bool {
	for _, x := range d.deliveries(endpoint) {
		if x.(map[string]any)["status"] != "succeeded" {
			return false
		}
	}
	return true
}

func TestWebhooksDeliverSignedEvents(t *testing.T) {
	each(t, func(t *testing.T, dialect string) {
		d := startDaemon(t, dialect, map[string]string{"BILLING_WEBHOOK_ALLOW_PRIVATE": "true"})
		rc := newWHReceiver(t)
		ep := rc.endpoint(d, "invoice.finalized", "invoice.paid")
		id := ep["id"].(string)
		// The secret is shown once.
		if got := d.must("GET", "/v1/webhook_endpoints/"+id, nil); got["secret"] != nil || got["url"] != rc.srv.URL+"/billing" {
			t.Fatalf("GET endpoint: %v", got)
		}
		if list := d.must("GET", "/v1/webhook_endpoints", nil)["data"].([]any); len(list) != 1 || list[0].(map[string]any)["secret"] != nil {
			t.Fatalf("list: %v", list)
		}
		for _, c := range []struct {
			body  map[string]any
			param string
		}{
			{map[string]any{"url": rc.srv.URL, "events": []string{"invoice.paid", "invoice.exploded"}}, "events"},
			{map[string]any{"url": rc.srv.URL, "events": []string{}}, "events"},
			{map[string]any{"url": "ftp://example.com/x", "events": []string{"*"}}, "url"},
			{map[string]any{"events": []string{"*"}}, "url"},
			{map[string]any{"url": rc.srv.URL, "events": []string{"*"}, "secret": "mine"}, "secret"},
		} {
			code, out := d.do("POST", "/v1/webhook_endpoints", c.body)
			if e, _ := out["error"].(map[string]any); code != 400 || e["param"] != c.param {
				t.Errorf("POST %v: %d %v, want 400 naming %s", c.body, code, out, c.param)
			}
		}
		if code, _ := d.do("GET", "/v1/webhook_endpoints/we_missing", nil); code != 404 {
			t.Errorf("missing endpoint: %d", code)
		}

		in := d.oneOff(1100, nil) // invoice.created (not subscribed), invoice.finalized
		v := d.voucher(in)
		d.must("POST", "/sandbox/charges/"+v["provider_id"].(string)+"/mark_as_paid", nil)
		eventually(t, "invoice.finalized and invoice.paid delivered", func() bool { return len(rc.got()) == 2 })
		if got := rc.got(); got[0] != "invoice.finalized "+in || got[1] != "invoice.paid "+in {
			t.Fatalf("received %q", got)
		}
		rc.mu.Lock()
		paid := rc.events[1]
		rc.mu.Unlock()
		if !strings.HasPrefix(paid.ID, "evt_") || paid.Object != "event" || paid.Data.Object["status"] != "paid" || paid.Created.IsZero() {
			t.Fatalf("invoice.paid event: %+v", paid)
		}
		// The event is the one the API lists under the same id.
		evs := d.must("GET", "/v1/events?type=invoice.paid&object_id="+in, nil)["data"].([]any)
		if len(evs) != 1 || evs[0].(map[string]any)["id"] != paid.ID {
			t.Fatalf("events %v, delivered %s", evs, paid.ID)
		}
		// The receiver got them before billingd recorded its answers.
		eventually(t, "deliveries recorded as succeeded", func() bool { return d.allDelivered(id) })
		ds := d.deliveries(id)
		if len(ds) != 2 {
			t.Fatalf("%d deliveries", len(ds))
		}
		for _, x := range ds {
			dl := x.(map[string]any)
			as := dl["attempts"].([]any)
			if dl["status"] != "succeeded" || dl["attempt_count"] != 1.0 || len(as) != 1 || as[0].(map[string]any)["response_code"] != 200.0 {
				t.Errorf("delivery %v", dl)
			}
		}
	})
}

func TestWebhookEndpointRetriedDisabledAndReenabled(t *testing.T) {
	each(t, func(t *testing.T, dialect string) {
		d := startDaemon(t, dialect, map[string]string{"BILLING_WEBHOOK_ALLOW_PRIVATE": "true"})
		rc := newWHReceiver(t)
		rc.set(func(rc *whReceiver) { rc.status = http.StatusInternalServerError })
		id := rc.endpoint(d, "invoice.finalized")["id"].(string)
		first := d.oneOff(1100, nil)
		eventually(t, "first attempt", func() bool {
			ds := d.deliveries(id)
			return len(ds) == 1 && ds[0].(map[string]any)["attempt_count"] == 1.0
		})
		// Retried with exponential backoff for three days, then disabled.
		d.must("POST", "/v1/test_clock/advance", map[string]any{"by": "4d"})
		ep := d.must("GET", "/v1/webhook_endpoints/"+id, nil)
		if ep["status"] != "disabled" || ep["disabled_reason"] != "failing" {
			t.Fatalf("endpoint after four days of failures: %v", ep)
		}
		dl := d.deliveries(id)[0].(map[string]any)
		as := dl["attempts"].([]any)
		n := len(as)
		if dl["status"] != "pending" || n < 15 || n > 20 || dl["attempt_count"] != float64(n) || dl["last_response_code"] != 500.0 {
			t.Fatalf("delivery after the window (%d attempts): %v", n, dl)
		}
		at := func(i int) time.Time {
			ts, _ := time.Parse(time.RFC3339, as[i].(map[string]any)["attempted_at"].(string))
			return ts
		}
		for i, want := range []time.Duration{time.Minute, time.Minute, 2 * time.Minute, 4 * time.Minute} {
			if got := at(i + 1).Sub(at(i)); got != want {
				t.Errorf("gap before attempt %d: %v, want %v", i+2, got, want)
			}
		}
		if span := at(n - 1).Sub(at(0)); span < 72*time.Hour {
			t.Errorf("retried for %v only", span)
		}
		if evs := d.must("GET", "/v1/events?type=webhook_endpoint.disabled&object_id="+id, nil)["data"].([]any); len(evs) != 1 {
			t.Fatalf("%d webhook_endpoint.disabled events", len(evs))
		}

		// Missed while disabled, delivered when re-enabled.
		missed := d.oneOff(2200, nil)
		if len(d.deliveries(id)) != 1 {
			t.Fatal("a disabled endpoint got a new delivery")
		}
		rc.set(func(rc *whReceiver) { rc.status = http.StatusNoContent })
		if ep := d.must("POST", "/v1/webhook_endpoints/"+id, map[string]any{"disabled": false}); ep["status"] != "enabled" {
			t.Fatalf("re-enabled: %v", ep)
		}
		eventually(t, "redelivery", func() bool { return len(rc.got()) == 2 })
		got := strings.Join(rc.got(), ",")
		if !strings.Contains(got, "invoice.finalized "+first) || !strings.Contains(got, "invoice.finalized "+missed) {
			t.Fatalf("redelivered %q", got)
		}
		eventually(t, "deliveries recorded as succeeded", func() bool { return d.allDelivered(id) })
	})
}

func TestSlowWebhookReceiverDoesNotSlowBilling(t *testing.T) {
	each(t, func(t *testing.T, dialect string) {
		d := startDaemon(t, dialect, map[string]string{"BILLING_WEBHOOK_ALLOW_PRIVATE": "true"})
		rc := newWHReceiver(t)
		// The requests hang while the test clock moves a month on: their
		// timestamps are old by then, so check only the signatures.
		rc.set(func(rc *whReceiver) { rc.hang, rc.tolerance = true, 0 })
		t.Cleanup(rc.unhang) // before the daemon closes, which waits for deliveries in flight
		rc.endpoint(d, "invoice.finalized")
		cus := d.must("POST", "/v1/customers", map[string]any{"phone": "090-0000-0000", "name": "山田太郎", "email": "taro@example.com"})
		plan := d.must("POST", "/v1/plans", map[string]any{"name": "Pro", "amount": 1980, "interval": "month"})
		const subs = 20
		for range subs {
			d.must("POST", "/v1/subscriptions", map[string]any{"customer": cus["id"], "items": []map[string]any{{"plan": plan["id"], "quantity": 1}}})
		}
		// Two billing runs, each finalizing 20 invoices whose deliveries hang
		// (each request until the daemon's 10 s timeout). The runs do not wait
		// for them: when they return, no delivery has been given up yet.
		for _, by := range []string{"1h", "31d"} {
			d.must("POST", "/v1/test_clock/advance", map[string]any{"by": by})
			rc.mu.Lock()
			abandoned := rc.abandoned
			rc.mu.Unlock()
			if abandoned > 0 {
				t.Errorf("advancing %s waited for %d hanging deliveries to time out", by, abandoned)
			}
		}
		if invs := d.must("GET", "/v1/invoices?limit=100", nil)["data"].([]any); len(invs) != 2*subs {
			t.Fatalf("%d invoices, want %d", len(invs), 2*subs)
		}
		rc.mu.Lock()
		hits := rc.hits
		rc.mu.Unlock()
		if hits == 0 || hits > 8 {
			t.Fatalf("%d requests in flight, want 1–8 (bounded concurrency)", hits)
		}
		// Once the receiver answers, everything arrives.
		rc.unhang()
		eventually(t, "all deliveries", func() bool {
			d.must("POST", "/v1/test_clock/advance", map[string]any{"by": "1m"})
			return len(rc.got()) == 2*subs
		})
	})
}
