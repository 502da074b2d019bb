package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"billingd/billing/store"
)

// count returns how many rows a table has, to prove a rejected request wrote nothing.
func (d *daemon) count(table string) int {
	d.t.Helper()
	n, err := d.m.DB.NewSelect().Table(table).Count(d.t.Context())
	if err != nil {
		d.t.Fatal(err)
	}
	return int(n)
}

func TestBadInputIsRejectedAndWritesNothing(t *testing.T) {
	each(t, func(t *testing.T, dialect string) {
		d := startDaemon(t, dialect, nil)
		cus := d.must("POST", "/v1/customers", map[string]any{"phone": "090-0000-0000", "name": "A", "email": "a@example.com"})
		plan := d.must("POST", "/v1/plans", map[string]any{"name": "Pro", "amount": 1000, "interval": "month"})
		cid, pid := cus["id"].(string), plan["id"].(string)
		tables := []string{"customers", "plans", "subscriptions", "invoices", "invoice_lines", "events", "webhook_endpoints"}
		before := map[string]int{}
		for _, tb := range tables {
			before[tb] = d.count(tb)
		}
		tests := []struct {
			name, path string
			body       any
			status     int
			param      string
		}{
			{"UnknownCustomer", "/v1/subscriptions", map[string]any{"customer": "cus_nope", "items": []any{map[string]any{"plan": pid}}}, 400, "customer"},
			{"UnknownPlan", "/v1/subscriptions", map[string]any{"customer": cid, "items": []any{map[string]any{"plan": "plan_nope"}}}, 400, "items[0].plan"},
			{"QuantityZero", "/v1/subscriptions", map[string]any{"customer": cid, "items": []any{map[string]any{"plan": pid, "quantity": 0}}}, 400, "items[0].quantity"},
			{"NoItems", "/v1/subscriptions", map[string]any{"customer": cid, "items": []any{}}, 400, "items"},
			{"ZeroAmount", "/v1/plans", map[string]any{"name": "x", "amount": 0, "interval": "month"}, 400, "amount"},
			{"NegativeAmount", "/v1/plans", map[string]any{"name": "x", "amount": -100, "interval": "month"}, 400, "amount"},
			{"AmountBeyondInt64", "/v1/plans", `{"name":"x","amount":99999999999999999999,"interval":"month"}`, 400, "amount"},
			{"AmountAboveCap", "/v1/plans", map[string]any{"name": "x", "amount": 100_000_000_001, "interval": "month"}, 400, "amount"},
			{"FractionalAmount", "/v1/plans", `{"name":"x","amount":10.5,"interval":"month"}`, 400, "amount"},
			{"CurrencyUSD", "/v1/plans", map[string]any{"name": "x", "amount": 100, "currency": "usd", "interval": "month"}, 400, "currency"},
			{"BadInterval", "/v1/plans", map[string]any{"name": "x", "amount": 100, "interval": "fortnight"}, 400, "interval"},
			{"BadTaxRate", "/v1/plans", map[string]any{"name": "x", "amount": 100, "interval": "month", "tax_rate": "luxury"}, 400, "tax_rate"},
			{"FieldNameCase", "/v1/plans", map[string]any{"NAME": "x", "amount": 100, "interval": "month"}, 400, "NAME"},
			{"UnknownField", "/v1/plans", map[string]any{"name": "x", "amount": 100, "interval": "month", "colour": "red"}, 400, "colour"},
			{"MalformedJSON", "/v1/customers", `{"name": "x",`, 400, ""},
			{"TrailingJSON", "/v1/customers", `{"name":"x","email":"x@example.com","phone":"0312345678"} {}`, 400, ""},
			{"TrailingBrace", "/v1/customers", `{"name":"x","email":"x@example.com","phone":"0312345678"} }`, 400, ""},
			{"TrailingGarbageOnWebhookEndpoint", "/v1/webhook_endpoints", `{"url":"https://example.com/h","events":["*"]} garbage`, 400, ""},
			{"NoPhone", "/v1/customers", map[string]any{"name": "x", "email": "x@example.com"}, 400, "phone"},
			{"BadPhone", "/v1/customers", map[string]any{"name": "x", "email": "x@example.com", "phone": "abc"}, 400, "phone"},
			{"PhoneLineBreak", "/v1/customers", map[string]any{"name": "x", "email": "x@example.com", "phone": "090\r\n12345678"}, 400, "phone"},
			{"BackdatedStart", "/v1/subscriptions", map[string]any{"customer": cid, "start": "1990-01-01T00:00:00Z", "items": []any{map[string]any{"plan": pid}}}, 400, "start"},
			{"FarFutureStart", "/v1/subscriptions", map[string]any{"customer": cid, "start": "9999-01-01T00:00:00Z", "items": []any{map[string]any{"plan": pid}}}, 400, "start"},
			{"StartNotATime", "/v1/subscriptions", map[string]any{"customer": cid, "start": "2027-01-01", "items": []any{map[string]any{"plan": pid}}}, 400, "start"},
			{"TestClockToNotATime", "/v1/test_clock/advance", map[string]any{"to": 123}, 400, "to"},
			{"TestClockByOverflow", "/v1/test_clock/advance", map[string]any{"by": "213504d"}, 400, "by"},
			{"OversizedJSON", "/v1/customers", `{"name":"` + strings.Repeat("x", 2<<20) + `"}`, 413, ""},
			{"BadEmail", "/v1/customers", map[string]any{"phone": "090-0000-0000", "name": "x", "email": "not-an-email"}, 400, "email"},
			{"EmailWithoutDomainDot", "/v1/customers", map[string]any{"name": "x", "phone": "0312345678", "email": "a@b"}, 400, "email"},
			{"EmailAddressLiteral", "/v1/customers", map[string]any{"name": "x", "phone": "0312345678", "email": "a@[1.2.3.4]"}, 400, "email"},
			{"EmailBadLabel", "/v1/customers", map[string]any{"name": "x", "phone": "0312345678", "email": "a@-example.com"}, 400, "email"},
			{"HeaderInjectionInName", "/v1/customers", map[string]any{"phone": "090-0000-0000", "name": "x\r\nBcc: evil@example.com", "email": "x@example.com"}, 400, "name"},
			{"BadRegistrationNumber", "/v1/customers", map[string]any{"phone": "090-0000-0000", "name": "x", "email": "x@example.com", "registration_number": "T12345"}, 400, "registration_number"},
			{"BadLanguage", "/v1/customers", map[string]any{"phone": "090-0000-0000", "name": "x", "email": "x@example.com", "language": "fr"}, 400, "language"},
			{"DraftUnknownCustomer", "/v1/invoices", map[string]any{"customer": "cus_nope"}, 400, "customer"},
			{"DraftLineZeroQuantity", "/v1/invoices", map[string]any{"customer": cid, "lines": []any{map[string]any{"description": "x", "quantity": 0, "unit_amount": 100}}}, 400, "lines[0].quantity"},
			{"DraftLineOverflow", "/v1/invoices", map[string]any{"customer": cid, "lines": []any{map[string]any{"description": "x", "quantity": 1000000, "unit_amount": 100000000000}}}, 400, "lines[0].quantity"},
			{"DraftLineNoAmount", "/v1/invoices", map[string]any{"customer": cid, "lines": []any{map[string]any{"description": "x"}}}, 400, "lines[0].unit_amount"},
			{"CancelUnknown", "/v1/subscriptions/sub_nope/cancel", map[string]any{}, 404, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				code, out := d.do("POST", tt.path, tt.body)
				if code != tt.status {
					t.Fatalf("status %d, want %d: %v", code, tt.status, out)
				}
				e, _ := out["error"].(map[string]any)
				if e == nil || e["message"] == "" || e["type"] == nil {
					t.Fatalf("no Stripe-shaped error: %v", out)
				}
				if tt.param != "" && e["param"] != tt.param {
					t.Errorf("param %v, want %q (message %v)", e["param"], tt.param, e["message"])
				}
			})
		}
		for _, q := range []string{"created_gte=2027-01-01T00:00:00Z&created_lte=2026-01-01T00:00:00Z", "total_gte=500&total_lte=100"} {
			if code, out := d.do("GET", "/v1/invoices?"+q, nil); code != 400 {
				t.Errorf("inverted range %s: %d %v", q, code, out)
			}
		}
		for _, tb := range tables {
			if n := d.count(tb); n != before[tb] {
				t.Errorf("%s: %d rows after rejected requests, had %d", tb, n, before[tb])
			}
		}
	})
}

func TestIdempotencyKey(t *testing.T) {
	d := startDaemon(t, store.SQLite, nil)
	body := map[string]any{"name": "A", "email": "a@example.com", "phone": "090-1234-5678"}
	code1, first := d.do("POST", "/v1/customers", body, "Idempotency-Key", "k1")
	code2, again := d.do("POST", "/v1/customers", body, "Idempotency-Key", "k1")
	if code1 != 200 || code2 != 200 || first["id"] != again["id"] {
		t.Fatalf("replay: %d %v / %d %v", code1, first["id"], code2, again["id"])
	}
	if n := d.count("customers"); n != 1 {
		t.Fatalf("%d customers after a replayed POST", n)
	}
	code, out := d.do("POST", "/v1/customers", map[string]any{"phone": "090-0000-0000", "name": "B", "email": "b@example.com"}, "Idempotency-Key", "k1")
	if code != http.StatusConflict {
		t.Fatalf("same key, other body: %d %v", code, out)
	}
	// A failed request's response is replayed too (Stripe does the same for 4xx).
	c1, _ := d.do("POST", "/v1/plans", map[string]any{"name": "x"}, "Idempotency-Key", "k2")
	c2, _ := d.do("POST", "/v1/plans", map[string]any{"name": "x"}, "Idempotency-Key", "k2")
	if c1 != 400 || c2 != 400 {
		t.Fatalf("replayed error: %d %d", c1, c2)
	}
}

func TestOneOffInvoiceLifecycleAndFilters(t *testing.T) {
	each(t, func(t *testing.T, dialect string) {
		d := startDaemon(t, dialect, nil)
		cus := d.must("POST", "/v1/customers", map[string]any{"name": "A", "email": "a@example.com", "phone": "090-1234-5678"})
		draft := d.must("POST", "/v1/invoices", map[string]any{"customer": cus["id"], "days_until_due": 14,
			"lines": []any{map[string]any{"description": "Setup", "unit_amount": 5000}}})
		if draft["status"] != "draft" || draft["number"] != nil {
			t.Fatalf("draft: %v", draft)
		}
		id := draft["id"].(string)
		in := d.must("POST", "/v1/invoices/"+id+"/lines", map[string]any{"description": "お米", "quantity": 2, "unit_amount": 1500, "tax_rate": "reduced"})
		if in["total"] != 5000+500+3000+240.0 {
			t.Fatalf("total after adding a line: %v", in["total"])
		}
		in = d.must("POST", "/v1/invoices/"+id+"/finalize", nil)
		if in["status"] != "open" || in["number"] != "INV-2027-000001" || in["due_date"] != "2027-01-15T14:59:59Z" {
			t.Fatalf("finalized: status %v number %v due %v", in["status"], in["number"], in["due_date"])
		}
		if code, _ := d.do("POST", "/v1/invoices/"+id+"/lines", map[string]any{"description": "x", "unit_amount": 1}); code != 409 {
			t.Fatalf("adding a line to a finalized invoice: %d", code)
		}
		if code, _ := d.do("POST", "/v1/invoices/"+id+"/finalize", nil); code != 409 {
			t.Fatalf("finalizing twice: %d", code)
		}
		in = d.must("POST", "/v1/invoices/"+id+"/mark_uncollectible", nil)
		if in["status"] != "uncollectible" {
			t.Fatalf("uncollectible: %v", in["status"])
		}
		in = d.must("POST", "/v1/invoices/"+id+"/void", nil)
		if in["status"] != "void" {
			t.Fatalf("void: %v", in["status"])
		}
		if code, _ := d.do("POST", "/v1/invoices/"+id+"/void", nil); code != 409 {
			t.Fatalf("voiding twice: %d", code)
		}
		// A rejected finalization (no lines) leaves no gap in the numbers.
		empty := d.must("POST", "/v1/invoices", map[string]any{"customer": cus["id"]})
		if code, _ := d.do("POST", "/v1/invoices/"+empty["id"].(string)+"/finalize", nil); code != 400 {
			t.Fatalf("finalizing an empty draft: %d", code)
		}
		second := d.must("POST", "/v1/invoices", map[string]any{"customer": cus["id"], "lines": []any{map[string]any{"description": "x", "unit_amount": 1000}}})
		if n := d.must("POST", "/v1/invoices/"+second["id"].(string)+"/finalize", nil)["number"]; n != "INV-2027-000002" {
			t.Fatalf("next number %v", n)
		}
		for q, want := range map[string]int{
			"status=void": 1, "status=open": 1, "status=draft": 1, "total_gte=1100": 2, "total_lte=1100": 2,
			"customer=" + cus["id"].(string): 3, "created_gte=2027-01-01T00:00:00Z": 3, "created_lte=2026-12-31T00:00:00Z": 0,
		} {
			if got := len(d.must("GET", "/v1/invoices?"+q, nil)["data"].([]any)); got != want {
				t.Errorf("?%s: %d invoices, want %d", q, got, want)
			}
		}
		events := d.must("GET", "/v1/events?object_id="+id, nil)["data"].([]any)
		var types []string
		for _, e := range events {
			// Voucher events come from the collection worker, in parallel.
			if typ := e.(map[string]any)["type"].(string); !strings.HasPrefix(typ, "invoice.voucher_") && !strings.HasPrefix(typ, "email.") {
				types = append(types, typ)
			}
		}
		if got := strings.Join(types, ","); got != "invoice.voided,invoice.marked_uncollectible,invoice.finalized,invoice.updated,invoice.created" {
			t.Errorf("events newest first: %s", got)
		}
	})
}

func TestCursorPagination(t *testing.T) {
	d := startDaemon(t, store.SQLite, nil)
	for i := range 25 {
		d.must("POST", "/v1/customers", map[string]any{"phone": "090-0000-0000", "name": fmt.Sprint("c", i), "email": fmt.Sprintf("c%d@example.com", i)})
	}
	seen := map[string]bool{}
	after, pages := "", 0
	for {
		page := d.must("GET", "/v1/customers?limit=10&starting_after="+after, nil)
		data := page["data"].([]any)
		for _, c := range data {
			id := c.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("%s listed twice", id)
			}
			seen[id], after = true, id
		}
		pages++
		if page["has_more"] != true {
			break
		}
	}
	if len(seen) != 25 || pages != 3 {
		t.Fatalf("%d customers in %d pages", len(seen), pages)
	}
	if code, _ := d.do("GET", "/v1/customers?limit=101", nil); code != 400 {
		t.Fatalf("limit 101: %d", code)
	}
}

func TestConfigErrorsAtStartup(t *testing.T) {
	tests := map[string]map[string]string{
		"BILLING_TIMEZONE":                   {"BILLING_TIMEZONE": "Mars/Olympus"},
		"BILLING_CRON":                       {"BILLING_CRON": "every minute"},
		"BILLING_ISSUER_REGISTRATION_NUMBER": {"BILLING_ISSUER_REGISTRATION_NUMBER": "T5011001098993"},
		"BILLING_CLOCK":                      {"BILLING_CLOCK": "sundial"},
		"BILLING_PROVIDER":                   {"BILLING_PROVIDER": "paypal"},
		"BILLING_TAX_ROUNDING":               {"BILLING_TAX_ROUNDING": "banker"},
		"BILLING_CONCURRENCY":                {"BILLING_CONCURRENCY": "0"},
	}
	for name, env := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := LoadConfig(func(k string) string { return env[k] })
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("err = %v, want one naming %s", err, name)
			}
		})
	}
	t.Run("SoleTraderSkipsCheckDigit", func(t *testing.T) {
		env := map[string]string{"BILLING_ISSUER_REGISTRATION_NUMBER": "T5011001098993", "BILLING_ISSUER_SOLE_TRADER": "true"}
		if _, err := LoadConfig(func(k string) string { return env[k] }); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("DumpMasksSecrets", func(t *testing.T) {
		env := map[string]string{"BILLING_API_KEY": "sk_secret", "BILLING_DATABASE_URL": "postgres://u:pw@db:5432/x",
			"BILLING_SMTP_URL": "smtp://mail.example.com:587?user=u&password=hunter2"}
		c, err := LoadConfig(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		dump := c.Dump()
		if strings.Contains(dump, "sk_secret") || strings.Contains(dump, "pw") || strings.Contains(dump, "hunter2") || !strings.Contains(dump, "BILLING_API_KEY=****") {
			t.Fatalf("dump leaks secrets:\n%s", dump)
		}
	})
}

func TestOutdatedSchemaRefusedUnlessMigrating(t *testing.T) {
	env := map[string]string{"BILLING_DATA_DIR": t.TempDir(), "BILLING_MIGRATE": "false", "BILLING_ADDR": "127.0.0.1:0"}
	cfg, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: cfg, Stdout: new(strings.Builder), Stderr: new(strings.Builder)}
	err = m.Run(t.Context())
	m.Close()
	if err == nil || !strings.Contains(err.Error(), "billingd migrate") {
		t.Fatalf("err = %v, want a refusal pointing at `billingd migrate`", err)
	}
	m = &Main{Config: cfg, Stdout: new(strings.Builder), Stderr: new(strings.Builder)}
	m.Config.Migrate = "true"
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	m.Close()
}
