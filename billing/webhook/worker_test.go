package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/store"
	"billingd/billing/store/storetest"
	"billingd/billing/webhook"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.DropTemplates()
	os.Exit(code)
}

// receiver is an endpoint of the operator's application.
type receiver struct {
	mu   sync.Mutex
	fail bool
	got  []string // path type object id, of verified requests
	srv  *httptest.Server
}

func newReceiver(t *testing.T, secret func(path string) string, now func() time.Time) *receiver {
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(body, r.Header.Get("Billing-Signature"), secret(r.URL.Path), time.Minute, now()); err != nil {
			t.Errorf("%s: %v", r.URL.Path, err)
		}
		var ev struct {
			ID, Type string
			Data     struct{ Object struct{ ID string } }
		}
		json.Unmarshal(body, &ev)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if rc.fail {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		rc.got = append(rc.got, r.URL.Path+" "+ev.Type+" "+ev.Data.Object.ID)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) set(fail bool) {
	rc.mu.Lock()
	rc.fail = fail
	rc.mu.Unlock()
}

func (rc *receiver) take() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	got := rc.got
	rc.got = nil
	return got
}

func TestDeliveries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		s := &webhook.Service{DB: db, Clock: billing.ClockFunc(func() time.Time { return now }),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AllowPrivate: true}
		defer s.Close()
		secrets := map[string]string{}
		rc := newReceiver(t, func(p string) string { return secrets[p] }, func() time.Time { return now })
		create := func(path string, events ...string) *webhook.Endpoint {
			u := rc.srv.URL + path
			e, err := s.Create(ctx, webhook.EndpointParams{URL: &u, Events: &events})
			if err != nil {
				t.Fatal(err)
			}
			secrets[path] = e.Secret
			return e
		}
		emitAt := func(at time.Time, typ, object string) {
			t.Helper()
			ev, _ := billing.NewEvent(at, typ, object, map[string]string{"id": object})
			if err := db.InTx(ctx, func(ctx context.Context, tx bun.Tx) error { return store.InsertEvents(ctx, tx, ev) }); err != nil {
				t.Fatal(err)
			}
		}
		emit := func(typ, object string) { t.Helper(); emitAt(now, typ, object) }
		deliveries := func(e *webhook.Endpoint) []*webhook.Delivery {
			t.Helper()
			ds, _, err := s.Deliveries(ctx, e.ID, "", store.Page{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			return ds
		}
		run := func() {
			t.Helper()
			if err := s.Run(ctx, now); err != nil {
				t.Fatal(err)
			}
		}

		// No endpoint: events queue nothing.
		emit("invoice.finalized", "in_0")
		a := create("/a", "invoice.finalized", "invoice.paid")
		b := create("/b", "*")
		off := true
		if _, err := s.Update(ctx, b.ID, webhook.EndpointParams{Disabled: &off}); err != nil {
			t.Fatal(err)
		}

		// In order per object: invoice.paid waits for invoice.finalized of the
		// same invoice, which fails once and is retried after a minute.
		emit("invoice.finalized", "in_x")
		emit("invoice.paid", "in_x")
		emit("customer.created", "cus_y") // a is not subscribed; b is disabled
		if ds := deliveries(a); len(ds) != 2 || len(deliveries(b)) != 0 {
			t.Fatalf("deliveries: a %d, b %d; want 2 and 0", len(ds), len(deliveries(b)))
		}
		rc.set(true)
		run()
		ds := deliveries(a) // newest first
		if ds[1].AttemptCount != 1 || *ds[1].LastResponseCode != 503 || ds[0].AttemptCount != 0 || len(ds[1].Attempts) != 1 {
			t.Fatalf("after a failed attempt: %+v, %+v", ds[1], ds[0])
		}
		if next, ok, _ := s.Next(ctx, now); !ok || !next.Equal(now.Add(time.Minute)) {
			t.Fatalf("next attempt %v %v, want in a minute", next, ok)
		}
		rc.set(false)
		now = now.Add(time.Minute)
		run()
		if got := rc.take(); len(got) != 2 || got[0] != "/a invoice.finalized in_x" || got[1] != "/a invoice.paid in_x" {
			t.Fatalf("received %q", got)
		}

		// An endpoint that fails for the whole window is disabled, with an
		// event; what it misses meanwhile is delivered when it is re-enabled.
		rc.set(true)
		emit("invoice.finalized", "in_z")
		start := now
		for range 40 {
			run()
			next, ok, err := s.Next(ctx, now)
			if err != nil || !ok {
				break
			}
			now = next
		}
		e, _ := s.Get(ctx, a.ID)
		ds = deliveries(a)
		if e.DisabledAt == nil || e.DisabledReason != webhook.ReasonFailing || ds[0].Status != webhook.StatusPending {
			t.Fatalf("after three days of failures: endpoint %+v, delivery %+v", e, ds[0])
		}
		if n := ds[0].AttemptCount; n < 15 || n > 20 || now.Sub(start) < 72*time.Hour {
			t.Fatalf("%d attempts over %v", n, now.Sub(start))
		}
		gaps := []time.Duration{}
		for i := 1; i < 4; i++ {
			gaps = append(gaps, ds[0].Attempts[i].AttemptedAt.Sub(ds[0].Attempts[i-1].AttemptedAt))
		}
		if gaps[0] != time.Minute || gaps[1] != time.Minute || gaps[2] != 2*time.Minute {
			t.Fatalf("backoff gaps %v", gaps)
		}
		var evs []billing.Event
		db.NewSelect().Model(&evs).Where("type = ?", webhook.EventDisabled).Scan(ctx)
		if len(evs) != 2 { // b by the operator, a for failing
			t.Fatalf("%d webhook_endpoint.disabled events", len(evs))
		}
		emit("invoice.finalized", "in_missed")
		emit("customer.created", "cus_missed")
		// An event recorded after the disabling but stamped before it (its
		// job's round began earlier) is not missed either.
		emitAt(e.DisabledAt.Add(-time.Minute), "invoice.finalized", "in_stamped_earlier")
		rc.set(false)
		rc.take()
		on := false
		if _, err := s.Update(ctx, a.ID, webhook.EndpointParams{Disabled: &on}); err != nil {
			t.Fatal(err)
		}
		run()
		got := rc.take()
		slices.Sort(got)
		if !slices.Equal(got, []string{"/a invoice.finalized in_missed", "/a invoice.finalized in_stamped_earlier", "/a invoice.finalized in_z"}) {
			t.Fatalf("after re-enabling: %q", got)
		}
		for _, d := range deliveries(a) {
			if d.Status != webhook.StatusSucceeded {
				t.Errorf("delivery %s %s: %s", d.EventType, d.ObjectID, d.Status)
			}
		}
		// b, re-enabled, gets every event since it was disabled.
		if _, err := s.Update(ctx, b.ID, webhook.EndpointParams{Disabled: &on}); err != nil {
			t.Fatal(err)
		}
		run()
		// Seven events since (and not in_0, from before it existed), and the
		// two endpoints' webhook_endpoint.disabled.
		if got = rc.take(); len(got) != 9 {
			t.Fatalf("b got %d events since it was disabled: %q", len(got), got)
		}

		// A round that began ten minutes ago still signs with the time of
		// the delivery: the receiver (one minute of tolerance) accepts it.
		emitAt(now.Add(-10*time.Minute), "invoice.paid", "in_late_round")
		if err := s.Run(ctx, now.Add(-10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got = rc.take(); len(got) != 2 {
			t.Fatalf("from a late round: %q", got)
		}
	})
}
