package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"billingd/billing"
	"billingd/billing/store"
	"billingd/collection/sandbox"
	"billingd/collection/stripe/stripefake"
)

// eventually polls fn until it returns true, for work the daemon does in the
// background (a webhook applied after it was acknowledged).
func eventually(t testing.TB, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // generous: CI machines are slow and busy
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// oneOff creates a customer and a finalized one-off invoice of amount (tax
// exempt, so the total is the amount) and returns the invoice id.
func (d *daemon) oneOff(amount int64, customer map[string]any) string {
	d.t.Helper()
	if customer == nil {
		customer = map[string]any{"name": "山田 太郎", "kana_name": "ヤマダ タロウ", "email": "taro@example.com", "phone": "090-1234-5678"}
	}
	cus := d.must("POST", "/v1/customers", customer)
	in := d.must("POST", "/v1/invoices", map[string]any{"customer": cus["id"], "days_until_due": 10,
		"lines": []any{map[string]any{"description": "サポート", "unit_amount": amount, "tax_rate": "exempt"}}})
	id := in["id"].(string)
	d.must("POST", "/v1/invoices/"+id+"/finalize", nil)
	return id
}

// voucher waits for the invoice's live voucher to be issued and returns it.
func (d *daemon) voucher(id string) map[string]any {
	d.t.Helper()
	var v map[string]any
	eventually(d.t, "voucher of "+id, func() bool {
		in := d.must("GET", "/v1/invoices/"+id, nil)
		v, _ = in["collection"].(map[string]any)
		return v != nil && v["provider_id"] != "" && v["status"] == "pending"
	})
	return v
}

func (d *daemon) invoiceStatus(id string) string {
	return d.must("GET", "/v1/invoices/"+id, nil)["status"].(string)
}

func TestSandboxVoucherPaidByWebhook(t *testing.T) {
	each(t, func(t *testing.T, dialect string) {
		d := startDaemon(t, dialect, nil)
		id := d.oneOff(1100, nil)
		v := d.voucher(id)
		codes := v["payment_codes"].([]any)
		if len(codes) != 1 || len(codes[0].(map[string]any)["payment_code"].(string)) < 6 || v["instructions_url"] == "" || v["amount"] != 1100.0 {
			t.Fatalf("voucher: %v", v)
		}
		// The deadline is the end of the due date in JST: finalized 2027-01-01, due in 10 days.
		if v["expires_at"] != "2027-01-11T14:59:59Z" {
			t.Errorf("expires_at %v, want 2027-01-11T14:59:59Z (23:59:59 JST)", v["expires_at"])
		}
		d.must("POST", "/sandbox/charges/"+v["provider_id"].(string)+"/mark_as_paid", nil)
		eventually(t, "invoice paid", func() bool { return d.invoiceStatus(id) == "paid" })
		in := d.must("GET", "/v1/invoices/"+id, nil)
		c := in["collection"].(map[string]any)
		// Fees by the seed's formula: 150 + 0.5 % = 155.5 → 156; VAT 15.6 → 16.
		if in["amount_paid"] != 1100.0 || in["amount_remaining"] != 0.0 || c["status"] != "successful" || c["fee"] != 156.0 || c["fee_vat"] != 16.0 || c["net"] != 928.0 {
			t.Fatalf("paid invoice: paid %v remaining %v voucher %v", in["amount_paid"], in["amount_remaining"], c)
		}
		if evs := d.must("GET", "/v1/events?type=invoice.paid&object_id="+id, nil)["data"].([]any); len(evs) != 1 {
			t.Fatalf("%d invoice.paid events", len(evs))
		}
	})
}

// opnWebhook posts a charge.complete event signed the way the sandbox signs.
func (d *daemon) opnWebhook(eventID, chargeID, secret string) int {
	d.t.Helper()
	body := fmt.Sprintf(`{"object":"event","id":%q,"key":"charge.complete","data":{"object":"charge","id":%q,"status":"successful"}}`, eventID, chargeID)
	key, _ := base64.StdEncoding.DecodeString(secret)
	ts := strconv.FormatInt(d.m.Clock.Now().Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(ts + "." + body))
	req, _ := http.NewRequest("POST", d.url+"/webhooks/opn", bytes.NewReader([]byte(body)))
	req.Header.Set("Omise-Signature", hex.EncodeToString(mac.Sum(nil)))
	req.Header.Set("Omise-Signature-Timestamp", ts)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestWebhooksAreVerifiedDeduplicatedAndRefetched(t *testing.T) {
	d := startDaemon(t, store.SQLite, nil)
	id := d.oneOff(5000, nil)
	v := d.voucher(id)
	secret, _, _ := store.Setting(t.Context(), d.m.DB, "sandbox_webhook_secret")
	// A body claiming success is not believed: the charge is re-fetched and is still pending.
	if code := d.opnWebhook("evnt_forged_claim", v["provider_id"].(string), secret); code != 200 {
		t.Fatalf("signed webhook: %d", code)
	}
	time.Sleep(200 * time.Millisecond)
	if st := d.invoiceStatus(id); st != "open" {
		t.Fatalf("invoice %s after a webhook whose body lies", st)
	}
	// A bad signature is refused and stored nowhere.
	if code := d.opnWebhook("evnt_bad", v["provider_id"].(string), base64.StdEncoding.EncodeToString([]byte("wrong secret, wrong secret!!!!!"))); code != 400 {
		t.Fatalf("forged signature: %d", code)
	}
	d.must("POST", "/sandbox/charges/"+v["provider_id"].(string)+"/mark_as_paid", nil)
	eventually(t, "invoice paid", func() bool { return d.invoiceStatus(id) == "paid" })
	// Replays of the same event and new events about the paid charge change nothing.
	for i := range 3 {
		d.opnWebhook("evnt_replay", v["provider_id"].(string), secret)
		d.opnWebhook(fmt.Sprint("evnt_new_", i), v["provider_id"].(string), secret)
	}
	time.Sleep(300 * time.Millisecond)
	in := d.must("GET", "/v1/invoices/"+id, nil)
	if in["amount_paid"] != 5000.0 {
		t.Fatalf("amount_paid %v after duplicate webhooks", in["amount_paid"])
	}
	// charge.create and charge.complete from the sandbox, the lying one, one
	// replay and three new ones; the forged one was refused.
	if n := d.count("provider_events"); n != 7 {
		t.Fatalf("%d provider events stored, want 7 (forged one refused, replays deduplicated)", n)
	}
}

func TestVoucherExpiryReissueAndPastDue(t *testing.T) {
	each(t, func(t *testing.T, dialect string) {
		d := startDaemon(t, dialect, map[string]string{"BILLING_VOUCHER_REISSUES": "1", "BILLING_VOUCHER_REISSUE_DAYS": "5"})
		id := d.oneOff(3000, nil)
		first := d.voucher(id)
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": "2027-01-12T01:00:00+09:00"}) // past the 11th and the grace hour
		second := d.voucher(id)
		// Issued an hour after the expiry (the grace period), valid 5 days.
		if second["id"] == first["id"] || second["expires_at"] != "2027-01-17T14:59:59Z" {
			t.Fatalf("reissued voucher %v (first %v)", second, first["id"])
		}
		d.must("POST", "/v1/test_clock/advance", map[string]any{"by": "10d"})
		in := d.must("GET", "/v1/invoices/"+id, nil)
		if in["status"] != "open" || in["collection_status"] != "none" || in["collection"].(map[string]any)["status"] != "expired" {
			t.Fatalf("after the last voucher expired: status %v collection %v %v", in["status"], in["collection_status"], in["collection"])
		}
		charges := d.must("GET", "/v1/invoices/"+id+"/charges", nil)["data"].([]any)
		if len(charges) != 2 {
			t.Fatalf("%d vouchers, want 2 (one reissue)", len(charges))
		}
		for typ, want := range map[string]int{"invoice.voucher_expired": 2, "invoice.voucher_reissued": 1, "invoice.voucher_created": 2} {
			if n := len(d.must("GET", "/v1/events?type="+typ+"&object_id="+id, nil)["data"].([]any)); n != want {
				t.Errorf("%d %s events, want %d", n, typ, want)
			}
		}
	})
}

func TestSmallAmountCarriedToNextInvoice(t *testing.T) {
	each(t, func(t *testing.T, dialect string) {
		d := startDaemon(t, dialect, nil)
		cus := d.must("POST", "/v1/customers", map[string]any{"name": "A", "kana_name": "エー", "email": "a@example.com", "phone": "0312345678"})
		small := d.must("POST", "/v1/invoices", map[string]any{"customer": cus["id"], "lines": []any{map[string]any{"description": "x", "unit_amount": 150, "tax_rate": "exempt"}}})
		d.must("POST", "/v1/invoices/"+small["id"].(string)+"/finalize", nil)
		eventually(t, "small invoice closed", func() bool { return d.invoiceStatus(small["id"].(string)) == "paid" })
		in := d.must("GET", "/v1/invoices/"+small["id"].(string), nil)
		if in["carried_to_balance"] != 150.0 || in["amount_paid"] != 0.0 {
			t.Fatalf("small invoice: %v", in)
		}
		if c := d.must("GET", "/v1/customers/"+cus["id"].(string), nil); c["balance"] != 150.0 {
			t.Fatalf("balance %v, want 150", c["balance"])
		}
		next := d.must("POST", "/v1/invoices", map[string]any{"customer": cus["id"], "lines": []any{map[string]any{"description": "y", "unit_amount": 1000, "tax_rate": "exempt"}}})
		next = d.must("POST", "/v1/invoices/"+next["id"].(string)+"/finalize", nil)
		if next["starting_balance"] != 150.0 || next["amount_due"] != 1150.0 {
			t.Fatalf("next invoice: starting_balance %v amount_due %v", next["starting_balance"], next["amount_due"])
		}
		if v := d.voucher(next["id"].(string)); v["amount"] != 1150.0 {
			t.Fatalf("voucher amount %v", v["amount"])
		}
		if c := d.must("GET", "/v1/customers/"+cus["id"].(string), nil); c["balance"] != 0.0 {
			t.Fatalf("balance after applying %v", c["balance"])
		}
	})
}

func TestAboveMaximumSplitOrActionRequired(t *testing.T) {
	d := startDaemon(t, store.SQLite, nil)
	id := d.oneOff(120_000, nil)
	eventually(t, "action_required", func() bool {
		return d.must("GET", "/v1/invoices/"+id, nil)["collection_status"] == "action_required"
	})
	if e := d.must("GET", "/v1/invoices/"+id, nil)["collection_error"].(string); !bytes.Contains([]byte(e), []byte("49999")) {
		t.Errorf("collection_error %q does not name the limit", e)
	}
	split := startDaemon(t, store.SQLite, map[string]string{"BILLING_SPLIT_VOUCHERS": "true"})
	id = split.oneOff(120_000, nil)
	eventually(t, "three vouchers", func() bool {
		vs := split.must("GET", "/v1/invoices/"+id+"/charges", nil)["data"].([]any)
		n := 0
		for _, v := range vs {
			if v.(map[string]any)["provider_id"] != "" {
				n++
			}
		}
		return n == 3
	})
	// The invoice e-mail lists each part with its amount and codes.
	num := split.must("GET", "/v1/invoices/"+id, nil)["number"].(string)
	eventually(t, "the invoice e-mail", func() bool { return len(split.mailsAbout(num)) > 0 })
	if body := split.mailsAbout(num)[0].text; !strings.Contains(body, "【3枚目】40,000円") {
		t.Errorf("the invoice e-mail does not list the parts:\n%s", body)
	}
	vs := split.must("GET", "/v1/invoices/"+id+"/charges", nil)["data"].([]any)
	for _, v := range vs {
		split.must("POST", "/sandbox/charges/"+v.(map[string]any)["provider_id"].(string)+"/mark_as_paid", nil)
	}
	eventually(t, "paid by three vouchers", func() bool { return split.invoiceStatus(id) == "paid" })
	if in := split.must("GET", "/v1/invoices/"+id, nil); in["amount_paid"] != 120000.0 {
		t.Fatalf("amount_paid %v", in["amount_paid"])
	}
}

func TestInvalidPayerNeedsAction(t *testing.T) {
	d := startDaemon(t, store.SQLite, nil)
	id := d.oneOff(1000, map[string]any{"name": "A", "phone": "090-1234-5678", "email": "billing-department-of-a-long-company-name@example-holdings.co.jp"}) // Opn takes at most 50 characters
	eventually(t, "action_required", func() bool {
		in := d.must("GET", "/v1/invoices/"+id, nil)
		return in["collection_status"] == "action_required" && bytes.Contains([]byte(in["collection_error"].(string)), []byte("email"))
	})
	if n := len(d.must("GET", "/v1/events?type=invoice.collection_action_required", nil)["data"].([]any)); n != 1 {
		t.Fatalf("%d action_required events", n)
	}
	// The invoice PDF, stored once for good, is not issued without its
	// payment code.
	if code, _ := d.do("GET", "/v1/invoices/"+id+"/pdf", nil); code != http.StatusConflict {
		t.Fatalf("PDF while action is required: %d, want 409", code)
	}
}

func TestOpnLostResponseCreatesOneCharge(t *testing.T) {
	var d *daemon
	fake, srv := opnFake(t, &d)
	d = startDaemon(t, store.SQLite, map[string]string{"BILLING_PROVIDER": "opn", "BILLING_OPN_URL": srv.URL,
		"BILLING_OPN_SECRET_KEY": "skey_test_fake", "BILLING_PROVIDER_TIMEOUT": "300ms"})
	fake.InjectFaults(sandbox.FaultLoseResponse, 1)
	id := d.oneOff(2000, nil)
	eventually(t, "first attempt timed out", func() bool {
		vs := d.must("GET", "/v1/invoices/"+id+"/charges", nil)["data"].([]any)
		return len(vs) == 1 && vs[0].(map[string]any)["failure_message"] != nil
	})
	// The retry is due after a minute of backoff.
	d.must("POST", "/v1/test_clock/advance", map[string]any{"by": "3m"})
	v := d.voucher(id)
	total := opnCharges(t, srv)
	if total != 1 {
		t.Fatalf("%d charges at Opn after a lost response and a retry, want 1 (voucher %v)", total, v["provider_id"])
	}
}

func TestStripeVoucherHasFourStores(t *testing.T) {
	var d *daemon // the fake shares the daemon's test clock
	fake := stripefake.Start(stripefake.Options{APIKey: "sk_test_x", WebhookSecret: "whsec_test", Now: func() time.Time {
		if d == nil {
			return time.Now()
		}
		return d.m.Clock.Now()
	}})
	defer fake.Close()
	d = startDaemon(t, store.SQLite, map[string]string{"BILLING_PROVIDER": "stripe", "BILLING_STRIPE_URL": fake.URL,
		"BILLING_STRIPE_SECRET_KEY": "sk_test_x", "BILLING_STRIPE_WEBHOOK_SECRET": "whsec_test"})
	fake.SetWebhookURL(d.url + "/webhooks/stripe")
	id := d.oneOff(3300, nil)
	v := d.voucher(id)
	if codes := v["payment_codes"].([]any); len(codes) != 4 || v["instructions_url"] == "" {
		t.Fatalf("stripe voucher: %v", v)
	}
	if err := fake.Pay(v["provider_id"].(string)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "paid via stripe", func() bool { return d.invoiceStatus(id) == "paid" })
}

func decodeJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestPaymentAfterVoidBecomesCredit(t *testing.T) {
	each(t, func(t *testing.T, dialect string) {
		d := startDaemon(t, dialect, nil)
		id := d.oneOff(2500, nil)
		v := d.voucher(id)
		d.must("POST", "/v1/invoices/"+id+"/void", nil)
		eventually(t, "voucher canceled", func() bool {
			c := d.must("GET", "/v1/invoices/"+id, nil)["collection"].(map[string]any)
			return c["status"] == "canceled"
		})
		// Opn cannot cancel a Konbini charge: the customer pays the slip anyway.
		d.must("POST", "/sandbox/charges/"+v["provider_id"].(string)+"/mark_as_paid", nil)
		cus := d.must("GET", "/v1/invoices/"+id, nil)["customer"].(string)
		eventually(t, "credit on the balance", func() bool {
			return d.must("GET", "/v1/customers/"+cus, nil)["balance"] == -2500.0
		})
		if st := d.invoiceStatus(id); st != "void" {
			t.Fatalf("voided invoice became %s", st)
		}
	})
}

func TestStripeVoidCancelsIntent(t *testing.T) {
	var d *daemon
	fake := stripefake.Start(stripefake.Options{APIKey: "sk_test_x", WebhookSecret: "whsec_test", Now: func() time.Time {
		if d == nil {
			return time.Now()
		}
		return d.m.Clock.Now()
	}})
	defer fake.Close()
	d = startDaemon(t, store.SQLite, map[string]string{"BILLING_PROVIDER": "stripe", "BILLING_STRIPE_URL": fake.URL,
		"BILLING_STRIPE_SECRET_KEY": "sk_test_x", "BILLING_STRIPE_WEBHOOK_SECRET": "whsec_test"})
	id := d.oneOff(3300, nil)
	v := d.voucher(id)
	d.must("POST", "/v1/invoices/"+id+"/void", nil)
	eventually(t, "intent canceled at Stripe", func() bool {
		for _, r := range fake.Requests() {
			if r.Method == "POST" && r.Path == "/v1/payment_intents/"+v["provider_id"].(string)+"/cancel" {
				return true
			}
		}
		return false
	})
}

// TestOldVoucherPaidAfterReissue: the customer pays the old slip at its
// deadline and the payment is reported after billingd reissued; then pays the
// new slip too. The invoice is paid once, the new voucher is canceled, and
// the second payment becomes a credit: no yen lost or counted twice.
func TestOldVoucherPaidAfterReissue(t *testing.T) {
	each(t, func(t *testing.T, dialect string) {
		d := startDaemon(t, dialect, nil)
		id := d.oneOff(3000, nil)
		v1 := d.voucher(id)
		d.must("POST", "/sandbox/charges/"+v1["provider_id"].(string)+"/expire", nil)
		// The expiry webhook arrives asynchronously and schedules the reissue
		// a grace period after it is applied: the frozen clock may only move
		// on once billingd has seen it.
		eventually(t, "reissue scheduled", func() bool {
			c, _ := d.must("GET", "/v1/invoices/"+id, nil)["collection"].(map[string]any)
			return c != nil && c["id"] != v1["id"]
		})
		d.must("POST", "/v1/test_clock/advance", map[string]any{"by": "2h"}) // past the grace period
		v2 := d.voucher(id)
		if v2["id"] == v1["id"] {
			t.Fatal("no reissue")
		}
		d.must("POST", "/sandbox/charges/"+v1["provider_id"].(string)+"/mark_as_paid?late=true", nil)
		eventually(t, "paid by the old slip", func() bool { return d.invoiceStatus(id) == "paid" })
		eventually(t, "new voucher canceled", func() bool {
			for _, c := range d.must("GET", "/v1/invoices/"+id+"/charges", nil)["data"].([]any) {
				if c := c.(map[string]any); c["id"] == v2["id"] {
					return c["status"] == "canceled"
				}
			}
			return false
		})
		// Opn cannot cancel a Konbini slip: the customer pays the new one as well.
		d.must("POST", "/sandbox/charges/"+v2["provider_id"].(string)+"/mark_as_paid", nil)
		cus := d.must("GET", "/v1/invoices/"+id, nil)["customer"].(string)
		eventually(t, "second payment credited", func() bool {
			return d.must("GET", "/v1/customers/"+cus, nil)["balance"] == -3000.0
		})
		in := d.must("GET", "/v1/invoices/"+id, nil)
		if in["amount_paid"] != 3000.0 || in["status"] != "paid" {
			t.Fatalf("invoice: paid %v status %v", in["amount_paid"], in["status"])
		}
	})
}

// TestThreePeriodsOnTimeAfterReissueAndNever drives a monthly subscription
// through three periods: the first paid on time, the second after a
// reissue, the third never. The statuses, balance and events are as
// specified.
func TestThreePeriodsOnTimeAfterReissueAndNever(t *testing.T) {
	each(t, func(t *testing.T, dialect string) {
		d := startDaemon(t, dialect, map[string]string{"BILLING_VOUCHER_REISSUES": "1", "BILLING_VOUCHER_REISSUE_DAYS": "3"})
		cus := d.must("POST", "/v1/customers", map[string]any{"name": "佐藤花子", "kana_name": "サトウハナコ", "email": "hanako@example.com", "phone": "09011112222"})
		plan := d.must("POST", "/v1/plans", map[string]any{"name": "Basic", "amount": 3000, "interval": "month"})
		sub := d.must("POST", "/v1/subscriptions", map[string]any{"customer": cus["id"], "days_until_due": 14,
			"items": []any{map[string]any{"plan": plan["id"]}}})
		invoiceOf := func(n int) string {
			list := d.must("GET", "/v1/invoices?subscription="+sub["id"].(string), nil)["data"].([]any)
			return list[len(list)-n].(map[string]any)["id"].(string)
		}
		// Period 1: paid on time.
		first := invoiceOf(1)
		d.must("POST", "/sandbox/charges/"+d.voucher(first)["provider_id"].(string)+"/mark_as_paid", nil)
		eventually(t, "period 1 paid", func() bool { return d.invoiceStatus(first) == "paid" })
		// Period 2: the first voucher expires unpaid, the reissued one is paid.
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": "2027-02-01T09:00:00+09:00"})
		second := invoiceOf(2)
		v := d.voucher(second)
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": "2027-02-16T12:00:00+09:00"}) // past the deadline and the grace
		re := d.voucher(second)
		if re["id"] == v["id"] {
			t.Fatal("period 2 was not reissued")
		}
		d.must("POST", "/sandbox/charges/"+re["provider_id"].(string)+"/mark_as_paid", nil)
		eventually(t, "period 2 paid", func() bool { return d.invoiceStatus(second) == "paid" })
		// Period 3: never paid; both vouchers expire.
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": "2027-03-25T00:00:00+09:00"})
		third := invoiceOf(3)
		in := d.must("GET", "/v1/invoices/"+third, nil)
		if in["status"] != "open" || in["collection_status"] != "none" || in["amount_remaining"] != 3300.0 {
			t.Fatalf("period 3: status %v collection %v remaining %v", in["status"], in["collection_status"], in["amount_remaining"])
		}
		if s := d.must("GET", "/v1/subscriptions/"+sub["id"].(string), nil); s["status"] != "past_due" {
			t.Fatalf("subscription %v, want past_due", s["status"])
		}
		if c := d.must("GET", "/v1/customers/"+cus["id"].(string), nil); c["balance"] != 0.0 {
			t.Fatalf("balance %v", c["balance"])
		}
		for typ, want := range map[string]int{"invoice.paid": 2, "invoice.voucher_reissued": 2, "invoice.voucher_expired": 3} {
			n := 0
			for _, e := range d.must("GET", "/v1/events?limit=100&type="+typ, nil)["data"].([]any) {
				if oid := e.(map[string]any)["object_id"]; oid == first || oid == second || oid == third {
					n++
				}
			}
			if n != want {
				t.Errorf("%d %s events, want %d", n, typ, want)
			}
		}
	})
}

// TestCrashAfterProviderCallRecoveredOnRestart: the provider created the
// charge but billingd died before recording it. The restarted daemon looks
// the attempt up before retrying and adopts the charge: one voucher, one
// charge at Opn.
func TestCrashAfterProviderCallRecoveredOnRestart(t *testing.T) {
	var d *daemon
	fake, srv := opnFake(t, &d)
	d = startDaemon(t, store.SQLite, map[string]string{"BILLING_PROVIDER": "opn", "BILLING_OPN_URL": srv.URL,
		"BILLING_OPN_SECRET_KEY": "skey_test_fake", "BILLING_PROVIDER_TIMEOUT": "300ms"})
	fake.InjectFaults(sandbox.FaultLoseResponse, 1)
	id := d.oneOff(2000, nil)
	eventually(t, "the provider call", func() bool {
		vs := d.must("GET", "/v1/invoices/"+id+"/charges", nil)["data"].([]any)
		return len(vs) == 1 && vs[0].(map[string]any)["failure_message"] != nil
	})
	// "Crash": stop the daemon and start a new one on the same data.
	cfg := d.m.Config
	if err := d.m.Close(); err != nil {
		t.Fatal(err)
	}
	m2 := &Main{Config: cfg, Stdout: io.Discard, Stderr: io.Discard}
	if err := m2.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m2.Close() })
	d.m, d.url = m2, "http://"+m2.Addr
	d.must("POST", "/v1/test_clock/advance", map[string]any{"by": "3m"})
	d.voucher(id)
	charges := d.must("GET", "/v1/invoices/"+id+"/charges", nil)["data"].([]any)
	total := opnCharges(t, srv)
	if total != 1 || len(charges) != 1 {
		t.Fatalf("%d charges at Opn and %d vouchers after the crash, want 1 and 1", total, len(charges))
	}
}

// TestLostWebhookReconciled: Opn never sends the payment's webhook; once the
// voucher is past its deadline, billingd asks Opn and records the payment:
// the invoice becomes paid, or, if it was voided meanwhile (Opn cannot
// cancel the slip), the payment is credited to the customer's balance.
func TestLostWebhookReconciled(t *testing.T) {
	for _, void := range []bool{false, true} {
		t.Run(map[bool]string{false: "open", true: "voided"}[void], func(t *testing.T) {
			var d *daemon
			_, srv := opnFake(t, &d) // no webhook URL: every webhook is lost
			d = startDaemon(t, store.SQLite, map[string]string{"BILLING_PROVIDER": "opn", "BILLING_OPN_URL": srv.URL, "BILLING_OPN_SECRET_KEY": "skey_test_fake"})
			id := d.oneOff(4000, nil)
			v := d.voucher(id)
			want, balance := "paid", 0.0
			if void {
				d.must("POST", "/v1/invoices/"+id+"/void", nil)
				want, balance = "void", -4000.0
			}
			payAtOpn(t, srv, v["provider_id"].(string))
			cus := d.must("GET", "/v1/invoices/"+id, nil)["customer"].(string)
			d.must("POST", "/v1/test_clock/advance", map[string]any{"by": "24h"})
			if st, b := d.invoiceStatus(id), d.must("GET", "/v1/customers/"+cus, nil)["balance"]; st == "paid" || b != 0.0 {
				t.Fatalf("before the deadline: %s, balance %v", st, b)
			}
			d.must("POST", "/v1/test_clock/advance", map[string]any{"by": "12d"}) // due in 10 days, plus the grace
			if st, b := d.invoiceStatus(id), d.must("GET", "/v1/customers/"+cus, nil)["balance"]; st != want || b != balance {
				t.Fatalf("after reconciliation: %s, balance %v; want %s, %v", st, b, want, balance)
			}
		})
	}
}

// payAtOpn pays a charge at the outside Opn of opnFake, as a customer at
// the store.
func payAtOpn(t *testing.T, srv *httptest.Server, charge string) {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+"/charges/"+charge+"/mark_as_paid", nil)
	req.SetBasicAuth("skey_test_fake", "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// opnFake starts the Opn emulator as an outside Opn for a daemon on
// BILLING_PROVIDER=opn. It shares the daemon's test clock once *d is set;
// webhooks go nowhere (tests that need them use the built-in sandbox).
func opnFake(t *testing.T, d **daemon) (*sandbox.Server, *httptest.Server) {
	t.Helper()
	fake, err := sandbox.New(sandbox.Config{SecretKey: "skey_test_fake", Clock: billing.ClockFunc(func() time.Time {
		if *d == nil {
			return time.Now()
		}
		return (*d).m.Clock.Now()
	})})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv
}

// opnCharges counts the charges the Opn emulator holds.
func opnCharges(t *testing.T, srv *httptest.Server) int {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/charges?limit=100", nil)
	req.SetBasicAuth("skey_test_fake", "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Total int `json:"total"`
	}
	decodeJSON(t, resp, &out)
	return out.Total
}
