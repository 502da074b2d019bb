package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"billingd/billing/store"
	"billingd/billing/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.DropTemplates()
	os.Exit(code)
}

// daemon is a running billingd and a client for it.
type daemon struct {
	t    testing.TB
	m    *Main
	url  string
	key  string
	out  *bytes.Buffer
	http *http.Client
}

// startDaemon runs the real daemon on :0 with a temp data dir on dialect,
// with env overriding the defaults.
func startDaemon(t testing.TB, dialect string, env map[string]string) *daemon {
	t.Helper()
	dir := t.TempDir()
	vars := map[string]string{
		"BILLING_ADDR": "127.0.0.1:0", "BILLING_DATA_DIR": dir, "BILLING_CLOCK": "test",
		"BILLING_TEST_CLOCK_START": "2027-01-01T09:00:00+09:00", "BILLING_LOG_LEVEL": "warn",
		"BILLING_ISSUER_NAME": "株式会社テスト", "BILLING_ISSUER_REGISTRATION_NUMBER": "T4011001098993",
	}
	if dialect == store.Postgres {
		vars["BILLING_DATABASE_URL"] = storetest.URL(t, store.Postgres)
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	out := new(bytes.Buffer)
	var stderr io.Writer = io.Discard
	if lvl := os.Getenv("BILLING_TEST_LOG"); lvl != "" {
		stderr = os.Stderr
		if lvl == "debug" {
			vars["BILLING_LOG_LEVEL"] = "debug"
			cfg.LogLevel = "debug"
		}
	}
	m := &Main{Config: cfg, Stdout: out, Stderr: stderr}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	key := regexp.MustCompile(`sk_[0-9a-z]+`).FindString(out.String())
	if key == "" {
		t.Fatalf("no API key printed: %q", out.String())
	}
	return &daemon{t: t, m: m, url: "http://" + m.Addr, key: key, out: out, http: &http.Client{}}
}

// do sends a request and decodes the JSON answer into a map; it returns the
// status code.
func (d *daemon) do(method, path string, body any, hdr ...string) (int, map[string]any) {
	d.t.Helper()
	var rd io.Reader
	if s, ok := body.(string); ok {
		rd = strings.NewReader(s)
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, d.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+d.key)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := d.http.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil && resp.Header.Get("Content-Type") == "application/json" {
		d.t.Fatalf("%s %s: bad JSON %q", method, path, raw)
	}
	return resp.StatusCode, out
}

// must is do that fails the test unless the status is 200.
func (d *daemon) must(method, path string, body any) map[string]any {
	d.t.Helper()
	code, out := d.do(method, path, body)
	if code != http.StatusOK {
		d.t.Fatalf("%s %s: %d %v", method, path, code, out)
	}
	return out
}

func each(t *testing.T, fn func(t *testing.T, dialect string)) {
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, d)
		})
	}
}

// TestYearOfBilling drives the real daemon over HTTP with the test clock for
// a year: a monthly subscription from Jan 31 yields 13 invoices (the 13th at
// the start of the next year), numbered without gaps, taxed and due.
func TestYearOfBilling(t *testing.T) {
	each(t, func(t *testing.T, dialect string) {
		d := startDaemon(t, dialect, nil)
		cus := d.must("POST", "/v1/customers", map[string]any{"phone": "090-0000-0000", "name": "山田太郎", "email": "taro@example.com", "language": "ja"})
		std := d.must("POST", "/v1/plans", map[string]any{"name": "Pro", "amount": 1980, "interval": "month"})
		food := d.must("POST", "/v1/plans", map[string]any{"name": "お弁当", "amount": 1080, "interval": "month", "tax_rate": "reduced", "tax_behavior": "exclusive"})
		start := "2027-01-31T10:00:00+09:00"
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": start})
		sub := d.must("POST", "/v1/subscriptions", map[string]any{"customer": cus["id"], "start": start,
			"items": []map[string]any{{"plan": std["id"], "quantity": 3}, {"plan": food["id"], "quantity": 1}}})
		clock := d.must("POST", "/v1/test_clock/advance", map[string]any{"by": "365d"})
		if clock["frozen_time"] != "2028-01-31T01:00:00Z" {
			t.Fatalf("clock after a year: %v", clock["frozen_time"])
		}
		list := d.must("GET", "/v1/invoices?limit=100&subscription="+sub["id"].(string), nil)
		invs := list["data"].([]any)
		if len(invs) != 13 {
			t.Fatalf("%d invoices after a year, want 13", len(invs))
		}
		numbers := map[string]bool{}
		var grand float64
		for _, x := range invs {
			in := x.(map[string]any)
			numbers[in["number"].(string)] = true
			// 3 × 1,980 = 5,940 + 594 tax; 1,080 + 86 tax (8 %, rounded down).
			if in["subtotal"] != 7020.0 || in["tax"] != 680.0 || in["total"] != 7700.0 || in["status"] != "open" || in["due_date"] == nil {
				t.Errorf("invoice %v: subtotal %v tax %v total %v status %v due %v", in["number"], in["subtotal"], in["tax"], in["total"], in["status"], in["due_date"])
			}
			br := in["tax_breakdown"].([]any)
			if len(br) != 2 || br[0].(map[string]any)["tax"] != 594.0 || br[1].(map[string]any)["tax"] != 86.0 {
				t.Errorf("tax breakdown %v", br)
			}
			if !strings.HasPrefix(in["hosted_invoice_url"].(string), d.url+"/pay/") || in["issuer_registration_number"] != "T4011001098993" {
				t.Errorf("hosted url %v, issuer %v", in["hosted_invoice_url"], in["issuer_registration_number"])
			}
			grand += in["total"].(float64)
		}
		for i := 1; i <= 12; i++ {
			if !numbers[fmt.Sprintf("INV-2027-%06d", i)] {
				t.Errorf("INV-2027-%06d missing: %v", i, numbers)
			}
		}
		if !numbers["INV-2028-000001"] || grand != 13*7700 {
			t.Errorf("numbers %v, grand total %v", numbers, grand)
		}
		// February's period ends on the last day and March returns to the 31st.
		feb := invs[11].(map[string]any)
		if feb["period_start"] != "2027-02-28T01:00:00Z" && invs[12].(map[string]any)["period_end"] != "2027-02-28T01:00:00Z" {
			t.Errorf("February period: %v – %v", feb["period_start"], feb["period_end"])
		}
		// Advancing again without due work creates nothing.
		d.must("POST", "/v1/test_clock/advance", map[string]any{"by": "1h"})
		if again := d.must("GET", "/v1/invoices?limit=100", nil)["data"].([]any); len(again) != 13 {
			t.Errorf("%d invoices after an idle hour", len(again))
		}
		events := d.must("GET", "/v1/events?type=invoice.finalized&limit=100", nil)["data"].([]any)
		if len(events) != 13 {
			t.Errorf("%d invoice.finalized events, want 13", len(events))
		}
	})
}

func TestAPIKeyGeneratedOnceAndRequired(t *testing.T) {
	d := startDaemon(t, store.SQLite, nil)
	req, _ := http.NewRequest("GET", d.url+"/v1/customers", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no key: %d", resp.StatusCode)
	}
	if code, _ := d.do("GET", "/v1/customers", nil); code != 200 {
		t.Fatalf("with key: %d", code)
	}
	// A restart on the same data keeps the key and does not print a new one.
	dir := d.m.Config.DataDir
	d.m.Close()
	cfg := d.m.Config
	out := new(bytes.Buffer)
	m2 := &Main{Config: cfg, Stdout: out, Stderr: io.Discard}
	if err := m2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if strings.Contains(out.String(), "sk_") {
		t.Errorf("restart printed a new key: %q", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "billingd.db")); err != nil {
		t.Error(err)
	}
	d.url = "http://" + m2.Addr
	if code, _ := d.do("GET", "/v1/customers", nil); code != 200 {
		t.Fatalf("old key after restart: %d", code)
	}
	d.m = m2
}

// TestHTTPFailureStopsDaemon: a daemon whose listener fails does not go on
// without its API; Wait returns the failure so that the process exits.
func TestHTTPFailureStopsDaemon(t *testing.T) {
	d := startDaemon(t, store.SQLite, nil)
	d.m.listener.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.m.Wait(ctx); err == nil || !strings.Contains(err.Error(), "http server") {
		t.Fatalf("Wait = %v, want the HTTP server's failure", err)
	}
}

// TestConcurrencyConfigured: BILLING_CONCURRENCY reaches the collector and
// the outbox.
func TestConcurrencyConfigured(t *testing.T) {
	d := startDaemon(t, store.SQLite, map[string]string{"BILLING_CONCURRENCY": "2"})
	if d.m.Collector.Concurrency != 2 || d.m.Outbox.Concurrency != 2 {
		t.Errorf("collector %d, outbox %d; want 2", d.m.Collector.Concurrency, d.m.Outbox.Concurrency)
	}
}
