package main

import (
	"net/http"
	"testing"
)

// invoicesOf lists a subscription's invoices, oldest first.
func (d *daemon) invoicesOf(sub string) []map[string]any {
	d.t.Helper()
	data := d.must("GET", "/v1/invoices?limit=100&subscription="+sub, nil)["data"].([]any)
	out := make([]map[string]any, len(data))
	for i, x := range data {
		out[len(data)-1-i] = x.(map[string]any)
	}
	return out
}

// TestSubscriptionLifecycle drives a subscription through the daemon with
// the test clock: a trial, an upgrade invoiced at once, refused bad input, a
// pause that keeps invoices as drafts, a downgrade credited to the balance
// (and the ledger that shows it), a scheduled cancellation undone, and an
// immediate cancellation with a prorated credit; and a plan billed in
// arrears (月末締め).
func TestSubscriptionLifecycle(t *testing.T) {
	each(t, func(t *testing.T, dialect string) {
		d := startDaemon(t, dialect, nil)
		cus := d.must("POST", "/v1/customers", map[string]any{"phone": "090-0000-0000", "name": "株式会社山田", "email": "keiri@example.com"})
		basic := d.must("POST", "/v1/plans", map[string]any{"name": "Basic", "amount": 3000, "interval": "month"})
		pro := d.must("POST", "/v1/plans", map[string]any{"name": "Pro", "amount": 6000, "interval": "month"})
		if basic["billing_timing"] != "in_advance" {
			t.Fatalf("default billing_timing %v", basic["billing_timing"])
		}
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": "2027-04-01T00:00:00+09:00"})

		// A 10-day trial: nothing billed until April 11.
		sub := d.must("POST", "/v1/subscriptions", map[string]any{"customer": cus["id"], "trial_period_days": 10,
			"items": []map[string]any{{"plan": basic["id"]}}})
		id := sub["id"].(string)
		if sub["status"] != "trialing" || sub["trial_end"] != "2027-04-10T15:00:00Z" || sub["pause_collection"] != nil {
			t.Fatalf("created: %v trial_end %v", sub["status"], sub["trial_end"])
		}
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": "2027-04-10T23:59:59+09:00"})
		if n := len(d.invoicesOf(id)); n != 0 {
			t.Fatalf("%d invoices during the trial", n)
		}
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": "2027-04-11T00:00:00+09:00"})
		invs := d.invoicesOf(id)
		if len(invs) != 1 || invs[0]["total"] != 3300.0 || invs[0]["period_end"] != "2027-05-10T15:00:00Z" {
			t.Fatalf("after the trial: %v", invs)
		}
		if s := d.must("GET", "/v1/subscriptions/"+id, nil); s["status"] != "active" {
			t.Fatalf("status %v", s["status"])
		}

		// Upgrade after 10 of the period's 30 days, invoiced at once:
		// −2,000 + 4,000, tax 200 once for the invoice.
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": "2027-04-21T00:00:00+09:00"})
		item := sub["items"].([]any)[0].(map[string]any)["id"]
		up := d.must("POST", "/v1/subscriptions/"+id, map[string]any{"items": []map[string]any{{"id": item, "plan": pro["id"]}},
			"proration_behavior": "always_invoice"})
		if up["items"].([]any)[0].(map[string]any)["plan"] != pro["id"] {
			t.Fatalf("items after upgrade: %v", up["items"])
		}
		invs = d.invoicesOf(id)
		last := invs[len(invs)-1]
		lines := last["lines"].([]any)
		if len(invs) != 2 || last["billing_reason"] != "subscription_update" || last["total"] != 2200.0 || last["tax"] != 200.0 ||
			len(lines) != 2 || lines[0].(map[string]any)["amount"] != -2000.0 || lines[1].(map[string]any)["proration"] != true {
			t.Fatalf("upgrade invoice: %v", last)
		}
		// Its PDF (negative lines included) once its payment code is issued.
		eventually(t, "PDF of the proration invoice", func() bool {
			code, _ := d.do("GET", "/v1/invoices/"+last["id"].(string)+"/pdf", nil)
			return code == http.StatusOK
		})

		// Bad input is refused naming the parameter, and changes nothing.
		for _, tt := range []struct {
			body  map[string]any
			param string
		}{
			{map[string]any{"proration_behavior": "sometimes"}, "proration_behavior"},
			{map[string]any{"items": []map[string]any{{"id": item, "plan": "plan_missing"}}}, "items[0].plan"},
			{map[string]any{"pause_collection": map[string]any{"behavior": "nap"}}, "pause_collection.behavior"},
			{map[string]any{"trial_end": "tomorrow"}, "trial_end"},
			{map[string]any{"cancel_at_period_end": "yes"}, "cancel_at_period_end"},
			{map[string]any{"colour": "red"}, "colour"},
		} {
			code, out := d.do("POST", "/v1/subscriptions/"+id, tt.body)
			if e, _ := out["error"].(map[string]any); code != http.StatusBadRequest || e["param"] != tt.param {
				t.Errorf("%v: %d %v, want 400 naming %s", tt.body, code, out, tt.param)
			}
		}
		if code, _ := d.do("POST", "/v1/subscriptions/"+id+"/cancel", map[string]any{"at_period_end": true, "prorate": true}); code != http.StatusBadRequest {
			t.Errorf("at_period_end with prorate: %d", code)
		}
		if n := len(d.invoicesOf(id)); n != 2 {
			t.Fatalf("%d invoices after refused requests", n)
		}

		// Pause with keep_as_draft: May 11's invoice stays a draft; resumed,
		// June's is collected.
		p := d.must("POST", "/v1/subscriptions/"+id, map[string]any{"pause_collection": map[string]any{"behavior": "keep_as_draft"}})
		if pc, _ := p["pause_collection"].(map[string]any); pc["behavior"] != "keep_as_draft" {
			t.Fatalf("pause_collection %v", p["pause_collection"])
		}
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": "2027-05-12T00:00:00+09:00"})
		invs = d.invoicesOf(id)
		if len(invs) != 3 || invs[2]["status"] != "draft" || invs[2]["number"] != nil || invs[2]["total"] != 6600.0 {
			t.Fatalf("paused invoice: %v", invs[len(invs)-1])
		}
		if r := d.must("POST", "/v1/subscriptions/"+id, map[string]any{"pause_collection": nil}); r["pause_collection"] != nil {
			t.Fatalf("resumed: %v", r["pause_collection"])
		}
		if f := d.must("POST", "/v1/invoices/"+invs[2]["id"].(string)+"/finalize", nil); f["status"] != "open" || f["number"] == nil {
			t.Fatalf("finalizing the kept draft: %v", f)
		}

		// Downgrade after 5 of May 11–June 11's 31 days: −6,000 × 26/31 +
		// 3,000 × 26/31 = −5,032 + 2,516 = −2,516, −251 tax: a credit of 2,767.
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": "2027-05-16T00:00:00+09:00"})
		d.must("POST", "/v1/subscriptions/"+id, map[string]any{"items": []map[string]any{{"id": item, "plan": basic["id"]}}})
		if c := d.must("GET", "/v1/customers/"+cus["id"].(string), nil); c["balance"] != -2767.0 {
			t.Fatalf("balance after downgrade: %v", c["balance"])
		}
		ledger := d.must("GET", "/v1/customers/"+cus["id"].(string)+"/balance_transactions", nil)["data"].([]any)
		if len(ledger) != 1 || ledger[0].(map[string]any)["type"] != "proration_credit" || ledger[0].(map[string]any)["object"] != "customer_balance_transaction" {
			t.Fatalf("ledger: %v", ledger)
		}
		if code, _ := d.do("GET", "/v1/customers/cus_missing/balance_transactions", nil); code != http.StatusNotFound {
			t.Errorf("ledger of a missing customer: %d", code)
		}

		// Cancel at period end, then reactivate: June is billed (the credit applied).
		if c := d.must("POST", "/v1/subscriptions/"+id+"/cancel", map[string]any{"at_period_end": true}); c["cancel_at_period_end"] != true {
			t.Fatalf("cancel at period end: %v", c)
		}
		d.must("POST", "/v1/subscriptions/"+id, map[string]any{"cancel_at_period_end": false})
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": "2027-06-11T00:00:00+09:00"})
		invs = d.invoicesOf(id)
		june := invs[len(invs)-1]
		if len(invs) != 4 || june["total"] != 3300.0 || june["starting_balance"] != -2767.0 || june["amount_due"] != 533.0 {
			t.Fatalf("June: %v", june)
		}

		// Cancel now with a prorated credit: 15 of June 11–July 11's 30 days unused.
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": "2027-06-26T00:00:00+09:00"})
		c := d.must("POST", "/v1/subscriptions/"+id+"/cancel", map[string]any{"prorate": true})
		if c["status"] != "canceled" || c["ended_at"] != "2027-06-25T15:00:00Z" {
			t.Fatalf("canceled: %v", c)
		}
		if cu := d.must("GET", "/v1/customers/"+cus["id"].(string), nil); cu["balance"] != -1650.0 {
			t.Fatalf("balance after cancel: %v", cu["balance"])
		}
		if code, _ := d.do("POST", "/v1/subscriptions/"+id, map[string]any{"cancel_at_period_end": false}); code != http.StatusConflict {
			t.Errorf("reactivating a canceled subscription: %d", code)
		}

		// 月末締め: a plan billed in arrears is invoiced when its month ends.
		monthly := d.must("POST", "/v1/plans", map[string]any{"name": "保守", "amount": 10000, "interval": "month", "billing_timing": "in_arrears"})
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": "2027-07-01T00:00:00+09:00"})
		arr := d.must("POST", "/v1/subscriptions", map[string]any{"customer": cus["id"], "items": []map[string]any{{"plan": monthly["id"]}}})
		if n := len(d.invoicesOf(arr["id"].(string))); n != 0 {
			t.Fatalf("%d invoices at the start of an in-arrears subscription", n)
		}
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": "2027-08-01T00:00:00+09:00"})
		invs = d.invoicesOf(arr["id"].(string))
		// July's 11,000, less the 1,650 credit.
		if len(invs) != 1 || invs[0]["period_start"] != "2027-06-30T15:00:00Z" || invs[0]["period_end"] != "2027-07-31T15:00:00Z" ||
			invs[0]["total"] != 11000.0 || invs[0]["amount_due"] != 9350.0 {
			t.Fatalf("July in arrears: %v", invs)
		}
	})
}
