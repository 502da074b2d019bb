package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"

	"billingd/billing/store"
)

// adminClient is a browser-like client of the dashboard: cookies kept, redirects
// not followed, so each answer can be checked.
type adminClient struct {
	d    *daemon
	c    *http.Client
	csrf string // the session's token, once logged in
}

func (d *daemon) adminClient() *adminClient {
	jar, _ := cookiejar.New(nil)
	return &adminClient{d: d, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// do sends a request (a form POST if form is not nil) and returns the
// answer with its body read.
func (a *adminClient) do(method, path string, form url.Values) (*http.Response, string) {
	a.d.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, a.d.url+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := a.c.Do(req)
	if err != nil {
		a.d.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

var adminCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// formToken returns the CSRF token in a page's forms.
func (a *adminClient) formToken(page string) string {
	a.d.t.Helper()
	m := adminCSRF.FindStringSubmatch(page)
	if m == nil {
		a.d.t.Fatalf("no csrf field in page:\n%s", page)
	}
	return m[1]
}

// login posts secret on the login form and returns the answer.
func (a *adminClient) login(secret string) *http.Response {
	a.d.t.Helper()
	_, page := a.do("GET", "/admin/login", nil)
	resp, _ := a.do("POST", "/admin/login", url.Values{"csrf": {a.formToken(page)}, "key": {secret}})
	if resp.StatusCode == http.StatusSeeOther {
		_, page = a.do("GET", "/admin/", nil)
		a.csrf = a.formToken(page)
	}
	return resp
}

// action posts an invoice action with the session's token and confirmation.
func (a *adminClient) action(id, action string) *http.Response {
	a.d.t.Helper()
	resp, _ := a.do("POST", "/admin/invoices/"+id+"/"+action, url.Values{"csrf": {a.csrf}, "confirm": {"yes"}})
	if resp.StatusCode != http.StatusSeeOther {
		a.d.t.Fatalf("%s %s: %d", action, id, resp.StatusCode)
	}
	return resp
}

// adminEventCount counts the events of a type about an object.
func (d *daemon) adminEventCount(typ, id string) int {
	return len(d.must("GET", "/v1/events?limit=100&type="+typ+"&object_id="+id, nil)["data"].([]any))
}

func TestAdminLoginRefusesWrongKey(t *testing.T) {
	d := startDaemon(t, store.SQLite, nil)
	a := d.adminClient()
	resp := a.login("sk_not_the_key")
	for _, c := range resp.Cookies() {
		if c.Name == "billingd_admin" && c.Value != "" {
			t.Errorf("a wrong key got a session cookie")
		}
	}
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong key: %d", resp.StatusCode)
	}
	if resp, _ := a.do("GET", "/admin/", nil); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/admin/login") {
		t.Fatalf("overview after a refused login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The key the daemon printed logs in: the dashboard checks the same hash as the API.
	if resp := a.login(d.key); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("right key: %d", resp.StatusCode)
	}
	if resp, page := a.do("GET", "/admin/", nil); resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="overview"`) {
		t.Fatalf("overview: %d", resp.StatusCode)
	}
}

func TestAdminCSRFRefused(t *testing.T) {
	d := startDaemon(t, store.SQLite, nil)
	id := d.oneOff(2200, nil)
	a := d.adminClient()
	a.login(d.key)
	for name, form := range map[string]url.Values{
		"no token":    {"confirm": {"yes"}},
		"wrong token": {"confirm": {"yes"}, "csrf": {"forged"}},
	} {
		if resp, _ := a.do("POST", "/admin/invoices/"+id+"/void", form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("void with %s: %d, want 403", name, resp.StatusCode)
		}
	}
	if st := d.invoiceStatus(id); st != "open" {
		t.Fatalf("invoice %s after forged voids", st)
	}
	a.action(id, "void")
	if st := d.invoiceStatus(id); st != "void" {
		t.Fatalf("invoice %s after a void with the token", st)
	}
}

// TestAdminActions takes each invoice action through the dashboard and
// checks its effect through the API.
func TestAdminActions(t *testing.T) {
	d := startDaemon(t, store.SQLite, nil)
	a := d.adminClient()
	a.login(d.key)

	t.Run("PDF", func(t *testing.T) {
		id := d.oneOff(3300, nil)
		d.voucher(id)
		resp, body := a.do("GET", "/admin/invoices/"+id+"/invoice.pdf", nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(body, "%PDF") {
			t.Fatalf("PDF: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		req, _ := http.NewRequest("GET", d.url+"/v1/invoices/"+id+"/pdf", nil)
		req.Header.Set("Authorization", "Bearer "+d.key)
		api, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		api.Body.Close()
		if sum := resp.Header.Get("X-Content-SHA256"); sum == "" || sum != api.Header.Get("X-Content-SHA256") {
			t.Fatalf("dashboard PDF %q, API PDF %q: not the same document", sum, api.Header.Get("X-Content-SHA256"))
		}
		if resp, _ := d.adminClient().do("GET", "/admin/invoices/"+id+"/invoice.pdf", nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("PDF without a session: %d", resp.StatusCode)
		}
	})

	t.Run("ResendEmail", func(t *testing.T) {
		id := d.oneOff(4400, nil)
		d.voucher(id)
		eventually(t, "invoice e-mail sent", func() bool { return d.adminEventCount("email.sent", id) == 1 })
		a.action(id, "resend_email")
		eventually(t, "invoice e-mail sent again", func() bool { return d.adminEventCount("email.sent", id) == 2 })
		a.action(id, "resend_email")
		eventually(t, "invoice e-mail sent a third time", func() bool { return d.adminEventCount("email.sent", id) == 3 })
		if n := d.adminEventCount("invoice.email_resend_requested", id); n != 2 {
			t.Fatalf("%d resend events, want 2", n)
		}
	})

	t.Run("ReissueVoucherAfterActionRequired", func(t *testing.T) {
		id := d.oneOff(1500, map[string]any{"name": "長い アドレス", "phone": "090-0000-1111", "email": "billing-department-of-a-long-company-name@example-holdings.co.jp"}) // Opn takes at most 50 characters
		eventually(t, "action_required", func() bool {
			return d.must("GET", "/v1/invoices/"+id, nil)["collection_status"] == "action_required"
		})
		// The cause is fixed, then the operator asks for a new voucher.
		cus := d.must("GET", "/v1/invoices/"+id, nil)["customer"].(string)
		d.must("POST", "/v1/customers/"+cus, map[string]any{"email": "keiri@example.co.jp"})
		a.action(id, "reissue_voucher")
		v := d.voucher(id)
		if v["amount"] != 1500.0 {
			t.Fatalf("reissued voucher: %v", v)
		}
		if n := d.adminEventCount("invoice.voucher_reissue_requested", id); n != 1 {
			t.Fatalf("%d reissue events", n)
		}
		// With a live voucher there is nothing to reissue: the page says so.
		resp := a.action(id, "reissue_voucher")
		if _, page := a.do("GET", resp.Header.Get("Location"), nil); !strings.Contains(page, "flash-error") {
			t.Fatalf("second reissue was not refused:\n%s", page)
		}
	})

	t.Run("FinalizeAndMarkUncollectible", func(t *testing.T) {
		cus := d.must("POST", "/v1/customers", map[string]any{"name": "下書き", "email": "draft@example.com", "phone": "0312345678"})
		in := d.must("POST", "/v1/invoices", map[string]any{"customer": cus["id"],
			"lines": []any{map[string]any{"description": "x", "unit_amount": 1000, "tax_rate": "exempt"}}})
		id := in["id"].(string)
		a.action(id, "finalize")
		if st := d.invoiceStatus(id); st != "open" {
			t.Fatalf("after finalize: %s", st)
		}
		a.action(id, "mark_uncollectible")
		if st := d.invoiceStatus(id); st != "uncollectible" {
			t.Fatalf("after mark uncollectible: %s", st)
		}
	})

	t.Run("Export", func(t *testing.T) {
		resp, body := a.do("GET", "/admin/exports/download?kind=invoices&format=csv&from=2027-01-01&to=2027-01-31", nil)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
			!strings.HasPrefix(body, "invoice_id,number,") || !strings.Contains(resp.Header.Get("Content-Disposition"), "invoices-csv-20270101-20270131.csv") {
			t.Fatalf("export: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Disposition"), body)
		}
		if resp, page := a.do("GET", "/admin/exports/download?kind=invoices&format=csv&from=2027-02-01&to=2027-01-01", nil); resp.StatusCode != http.StatusBadRequest ||
			!strings.Contains(page, `id="export-error"`) {
			t.Fatalf("bad range: %d", resp.StatusCode)
		}
	})
}

// TestAdminInBrowser drives the dashboard in headless chromium: log in with
// the API key, find a customer by kana, open the invoice, issue a credit
// note and see it listed, void the invoice and see the invoice.voided event
// on the page, in Japanese and in English.
func TestAdminInBrowser(t *testing.T) {
	ctx := headless(t) // skips without chromium, unless BILLING_TEST_BROWSER=require
	d := startDaemon(t, store.SQLite, nil)
	d.oneOff(1100, nil) // 山田 太郎: must not match the search
	id := d.oneOff(5500, map[string]any{"name": "佐藤 花子", "kana_name": "サトウ ハナコ", "email": "hanako@example.com", "phone": "080-1111-2222"})
	d.voucher(id)
	number := d.must("GET", "/v1/invoices/"+id, nil)["number"].(string)

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			var html string
			html, _ = chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
			t.Fatalf("%s: %v\npage:\n%s", what, err, html)
		}
	}
	step("log in",
		// Japanese whatever the browser's language; then the dashboard sends
		// the browser to the login page.
		chromedp.Navigate(d.url+"/admin/lang/ja?next=/admin/"),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), d.key),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("overview")))
	step("search by kana",
		chromedp.Click(chromedp.CSS(`nav a[href="/admin/customers"]`)),
		chromedp.WaitVisible(chromedp.ID("q")),
		chromedp.SetValue(chromedp.ID("q"), "さとう"),
		chromedp.Click(chromedp.ID("search")),
		chromedp.WaitVisible(chromedp.CSS(`#customers[data-query="さとう"]`))) // the results, not the page before
	found := browse(t, ctx, chromedp.Text(chromedp.ID("customers")))
	if !strings.Contains(found, "佐藤 花子") || strings.Contains(found, "山田") {
		t.Fatalf("search for さとう found:\n%s", found)
	}
	step("open the customer and the invoice",
		chromedp.Click(chromedp.CSS(".customer-link")),
		chromedp.WaitVisible(chromedp.ID("customer-name")),
		chromedp.Click(chromedp.CSS("#invoices .invoice-link")),
		chromedp.WaitVisible(chromedp.ID("invoice-status")))
	if shown := browse(t, ctx, chromedp.Text(chromedp.ID("invoice-number"))); shown != number {
		t.Fatalf("invoice page shows %q, want %q", shown, number)
	}
	step("issue a credit note",
		chromedp.Click(chromedp.ID("cn-by-amount")),
		chromedp.SendKeys(chromedp.ID("cn-amount"), "500"),
		chromedp.SetValue(chromedp.ID("cn-reason"), "order_change"),
		chromedp.Click(chromedp.ID("confirm-credit-note")),
		chromedp.Click(chromedp.ID("action-credit-note")),
		chromedp.WaitVisible(chromedp.ID("credit-notes")))
	if listed := browse(t, ctx, chromedp.Text(chromedp.ID("credit-notes"))); !strings.Contains(listed, "CN-2027-000001") || !strings.Contains(listed, "注文の変更") {
		t.Fatalf("credit notes after issuing one:\n%s", listed)
	}
	if rest := d.must("GET", "/v1/invoices/"+id, nil)["amount_remaining"]; rest != 5000.0 {
		t.Fatalf("amount remaining %v after a credit note of ¥500 from the browser", rest)
	}
	step("reload the invoice without the message", // so that the next step waits for its own
		chromedp.Navigate(d.url+"/admin/invoices/"+id),
		chromedp.WaitVisible(chromedp.ID("invoice-status")),
		chromedp.WaitNotPresent(chromedp.ID("flash")))
	step("void",
		chromedp.Click(chromedp.ID("confirm-void")),
		chromedp.Click(chromedp.ID("action-void")),
		chromedp.WaitVisible(chromedp.ID("flash")))
	status := browse(t, ctx, chromedp.Text(chromedp.ID("invoice-status")))
	events := browse(t, ctx, chromedp.Text(chromedp.ID("events")))
	if strings.TrimSpace(status) != "無効" || !strings.Contains(events, "invoice.voided") {
		t.Fatalf("after voiding: status %q, events:\n%s", status, events)
	}
	if st := d.invoiceStatus(id); st != "void" {
		t.Fatalf("invoice %s after the void in the browser", st)
	}
	step("switch to English",
		chromedp.Click(chromedp.ID("lang-en")),
		chromedp.WaitVisible(chromedp.CSS(`html[lang="en"] #invoice-status`)))
	if status := browse(t, ctx, chromedp.Text(chromedp.ID("invoice-status"))); strings.TrimSpace(status) != "Void" {
		t.Fatalf("English status %q", status)
	}
}

var adminCreditNoteLink = regexp.MustCompile(`href="(/admin/credit_notes/(cn_[0-9a-z]+)/pdf)"`)

// creditNote posts the invoice page's credit note form (with the session's
// token and confirmation unless form sets them) and returns the page it
// leads back to.
func (a *adminClient) creditNote(id string, form url.Values) string {
	a.d.t.Helper()
	if form.Get("csrf") == "" {
		form.Set("csrf", a.csrf)
	}
	resp, _ := a.do("POST", "/admin/invoices/"+id+"/credit_note", form)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/invoices/"+id {
		a.d.t.Fatalf("credit note on %s: %d to %q", id, resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page := a.do("GET", resp.Header.Get("Location"), nil)
	return page
}

// TestAdminCreditNote issues credit notes from the invoice page, as staff
// would: part of an open invoice by an amount typed with full-width digits
// and a separator, then all that is left (by amount, after a credit by
// amount), which settles it; on another invoice all of it at once (by
// line). Each is listed on the page with its PDF, the same document the API
// serves, and is what POST /v1/credit_notes would have issued.
func TestAdminCreditNote(t *testing.T) {
	each(t, func(t *testing.T, dialect string) {
		d := startDaemon(t, dialect, nil)
		a := d.adminClient()
		a.login(d.key)
		in := d.finalizedWith(map[string]any{"description": "Pro プラン", "unit_amount": 1000, "quantity": 3},
			map[string]any{"description": "初期設定", "unit_amount": 500})
		id := in["id"].(string)
		d.voucher(id) // ¥3,850: 3,500 + 10 % tax
		_, page := a.do("GET", "/admin/invoices/"+id, nil)
		if !strings.Contains(page, `id="credit-note-form"`) || !strings.Contains(page, `id="credit-left">3,850円<`) || !strings.Contains(page, `id="cn-by-amount"`) {
			t.Fatalf("invoice page without the credit note form for ¥3,850:\n%s", page)
		}

		// Refused: not confirmed, no choice of amount, an amount that is not
		// one, more than is due, "all" with an amount typed too; nothing is
		// issued.
		for _, c := range []struct {
			name string
			form url.Values
			want string
		}{
			{"unconfirmed", url.Values{"mode": {"amount"}, "amount": {"100"}}, "確認しました"},
			{"no mode", url.Values{"confirm": {"yes"}, "amount": {"100"}}, "flash-error"},
			{"not an amount", url.Values{"confirm": {"yes"}, "mode": {"amount"}, "amount": {"千円"}}, "flash-error"},
			{"too much", url.Values{"confirm": {"yes"}, "mode": {"amount"}, "amount": {"5000"}}, "flash-error"},
			{"all, with an amount typed", url.Values{"confirm": {"yes"}, "mode": {"full"}, "amount": {"100"}}, "flash-error"},
		} {
			if page := a.creditNote(id, c.form); !strings.Contains(page, c.want) || !strings.Contains(page, "flash-error") {
				t.Errorf("%s: the page does not say it was refused:\n%s", c.name, page)
			}
		}
		if n := len(d.must("GET", "/v1/credit_notes?invoice="+id, nil)["data"].([]any)); n != 0 {
			t.Fatalf("%d credit notes after refused forms", n)
		}

		// Part of it by amount: the amount due goes down.
		page = a.creditNote(id, url.Values{"confirm": {"yes"}, "mode": {"amount"}, "amount": {"１,１００"}, "reason": {"order_change"},
			"outcome": {""}, "memo": {"値引き"}})
		if !strings.Contains(page, "flash-ok") || !strings.Contains(page, "CN-2027-000001") || !strings.Contains(page, `id="credit-left">2,750円<`) {
			t.Fatalf("after the first credit note:\n%s", page)
		}
		links := adminCreditNoteLink.FindAllStringSubmatch(page, -1)
		if len(links) != 1 {
			t.Fatalf("%d credit note links on the page", len(links))
		}
		cn := d.must("GET", "/v1/credit_notes/"+links[0][2], nil)
		if cn["invoice"] != id || cn["total"] != 1100.0 || cn["tax"] != 100.0 || cn["reason"] != "order_change" || cn["outcome"] != "reduce_amount_due" || cn["memo"] != "値引き" {
			t.Fatalf("credit note issued from the dashboard: %v", cn)
		}
		if got := d.must("GET", "/v1/invoices/"+id, nil)["amount_remaining"]; got != 2750.0 {
			t.Fatalf("amount remaining %v, want 2750", got)
		}
		// Its PDF, through the session: the document the API serves.
		resp, body := a.do("GET", links[0][1], nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(body, "%PDF") {
			t.Fatalf("credit note PDF: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		req, _ := http.NewRequest("GET", d.url+"/v1/credit_notes/"+links[0][2]+"/pdf", nil)
		req.Header.Set("Authorization", "Bearer "+d.key)
		apiPDF, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		apiPDF.Body.Close()
		if sum := resp.Header.Get("X-Content-SHA256"); sum == "" || sum != apiPDF.Header.Get("X-Content-SHA256") {
			t.Fatalf("dashboard PDF %q, API PDF %q: not the same document", sum, apiPDF.Header.Get("X-Content-SHA256"))
		}
		if resp, _ := d.adminClient().do("GET", links[0][1], nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("credit note PDF without a session: %d", resp.StatusCode)
		}

		// All that is left: the invoice is settled by credit; nothing more
		// to credit, so no form.
		page = a.creditNote(id, url.Values{"confirm": {"yes"}, "mode": {"full"}, "reason": {"product_unsatisfactory"}})
		if !strings.Contains(page, "CN-2027-000002") || strings.Contains(page, `id="credit-note-form"`) || len(adminCreditNoteLink.FindAllString(page, -1)) != 2 {
			t.Fatalf("after crediting the rest:\n%s", page)
		}
		if got := d.must("GET", "/v1/invoices/"+id, nil); got["status"] != "paid" || got["amount_remaining"] != 0.0 || got["pre_payment_credit_notes_amount"] != 3850.0 {
			t.Fatalf("invoice after crediting all: %s, remaining %v, credited %v", got["status"], got["amount_remaining"], got["pre_payment_credit_notes_amount"])
		}

		// A fresh invoice credited in full at once, to the customer's
		// balance: line by line, the tax of the rate exactly.
		other := d.finalizedWith(map[string]any{"description": "Pro プラン", "unit_amount": 1980, "quantity": 2},
			map[string]any{"description": "オプション", "unit_amount": 333})
		oid := other["id"].(string)
		d.voucher(oid)
		page = a.creditNote(oid, url.Values{"confirm": {"yes"}, "mode": {"full"}, "outcome": {"customer_balance"}})
		if !strings.Contains(page, "CN-2027-000003") {
			t.Fatalf("after crediting a whole invoice:\n%s", page)
		}
		cns := d.must("GET", "/v1/credit_notes?invoice="+oid, nil)["data"].([]any)
		if len(cns) != 1 {
			t.Fatalf("%d credit notes", len(cns))
		}
		full := cns[0].(map[string]any)
		if full["total"] != other["total"] || full["tax"] != other["tax"] || full["outcome"] != "customer_balance" || len(full["lines"].([]any)) != 2 {
			t.Fatalf("full credit note %v of invoice total %v tax %v", full, other["total"], other["tax"])
		}
		d.checkCreditInvariant()
	})
}

// TestAdminOverviewShowsFailedWebhooks lets one endpoint refuse one
// invoice's event while it takes the others (so that delivery is given up
// on after three days), and another endpoint fail throughout (so it is
// disabled); the overview lists both.
func TestAdminOverviewShowsFailedWebhooks(t *testing.T) {
	each(t, func(t *testing.T, dialect string) {
		d := startDaemon(t, dialect, map[string]string{"BILLING_WEBHOOK_ALLOW_PRIVATE": "true"})
		var refuse atomic.Value // the invoice whose events the picky receiver refuses
		refuse.Store("-")
		picky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if strings.Contains(string(body), refuse.Load().(string)) {
				http.Error(w, "not this one", http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}))
		t.Cleanup(picky.Close)
		dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		}))
		t.Cleanup(dead.Close)
		pid := d.must("POST", "/v1/webhook_endpoints", map[string]any{"url": picky.URL + "/picky", "events": []string{"invoice.finalized", "customer.created"}})["id"].(string)
		did := d.must("POST", "/v1/webhook_endpoints", map[string]any{"url": dead.URL + "/dead", "events": []string{"invoice.finalized"}})["id"].(string)

		cus := d.must("POST", "/v1/customers", map[string]any{"name": "山田 太郎", "email": "taro@example.com", "phone": "090-1234-5678"})
		in := d.must("POST", "/v1/invoices", map[string]any{"customer": cus["id"], "days_until_due": 10,
			"lines": []any{map[string]any{"description": "サポート", "unit_amount": 1100, "tax_rate": "exempt"}}})
		id := in["id"].(string)
		refuse.Store(id)
		d.must("POST", "/v1/invoices/"+id+"/finalize", nil)
		eventually(t, "first attempts", func() bool {
			ds := d.deliveries(did)
			return len(ds) == 1 && ds[0].(map[string]any)["attempt_count"] == 1.0
		})
		// Three days of retries; each day the picky endpoint takes another
		// event, so it is working and only that one delivery fails.
		for day := range 4 {
			d.must("POST", "/v1/test_clock/advance", map[string]any{"by": "1d"})
			if day == 3 {
				break
			}
			c := d.must("POST", "/v1/customers", map[string]any{"phone": "090-0000-0000", "name": fmt.Sprint("顧客", day), "email": "c@example.com"})
			eventually(t, "customer.created delivered", func() bool {
				for _, x := range d.deliveries(pid) {
					if x := x.(map[string]any); x["object_id"] == c["id"] {
						return x["status"] == "succeeded"
					}
				}
				return false
			})
		}
		var failed map[string]any
		for _, x := range d.deliveries(pid) {
			if x := x.(map[string]any); x["object_id"] == id {
				failed = x
			}
		}
		if failed["status"] != "failed" || d.must("GET", "/v1/webhook_endpoints/"+pid, nil)["status"] != "enabled" {
			t.Fatalf("picky endpoint's delivery of %s after four days: %v", id, failed)
		}
		if ep := d.must("GET", "/v1/webhook_endpoints/"+did, nil); ep["status"] != "disabled" || ep["disabled_reason"] != "failing" {
			t.Fatalf("dead endpoint after four days: %v", ep)
		}

		a := d.adminClient()
		a.login(d.key)
		_, page := a.do("GET", "/admin/", nil)
		failedTable := between(page, `id="failed-webhooks"`, "</table>")
		disabledTable := between(page, `id="disabled-endpoints"`, "</table>")
		for _, want := range []string{picky.URL + "/picky", pid, "invoice.finalized", `href="/admin/invoices/` + id + `"`, "HTTP 500: not this one"} {
			if !strings.Contains(failedTable, want) {
				t.Errorf("failed deliveries lack %q", want)
			}
		}
		for _, want := range []string{dead.URL + "/dead", did, "再試行期間中に一度も配信に成功しなかったため", `<td class="num">1</td>`} {
			if !strings.Contains(disabledTable, want) {
				t.Errorf("disabled endpoints lack %q", want)
			}
		}
		if strings.Contains(disabledTable, pid) {
			t.Errorf("the working endpoint is listed as disabled")
		}
		if t.Failed() {
			t.Logf("overview:\n%s", page)
		}
	})
}

// between returns the part of s from the first from to the next to after
// it, or "".
func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i:]
	if j := strings.Index(s, to); j >= 0 {
		return s[:j]
	}
	return s
}
