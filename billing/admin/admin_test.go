package admin

import (
	"crypto/tls"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"billingd/billing"
	"billingd/billing/store"
	"billingd/billing/store/storetest"
	"billingd/billing/webhook"
	"billingd/invoice"
	"billingd/templates"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.DropTemplates()
	os.Exit(code)
}

const (
	testKey      = "sk_test_admin_key"
	testPassword = "correct horse battery staple"
)

// clock is a test clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// env is a dashboard on a real migrated database, served over HTTP.
type env struct {
	t     *testing.T
	s     *Server
	db    *store.DB
	clock *clock
	url   string
	mux   *http.ServeMux
}

func newEnv(t *testing.T, db *store.DB) *env {
	t.Helper()
	c := &clock{t: time.Date(2027, 1, 15, 10, 0, 0, 0, time.UTC)}
	settings := billing.DefaultSettings()
	s := &Server{DB: db, Clock: c, Settings: settings, Invoices: &invoice.Service{DB: db, Clock: c, Settings: settings},
		APIKeyHash: hashKey(testKey), Password: testPassword, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	mux := http.NewServeMux()
	s.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{t: t, s: s, db: db, clock: c, url: srv.URL, mux: mux}
}

// browser is an HTTP client with cookies that does not follow redirects,
// so tests see each answer.
type browser struct {
	t    *testing.T
	e    *env
	c    *http.Client
	lang string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, e: e, lang: "ja", c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// do sends a request; form, if not nil, is posted.
func (b *browser) do(method, path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.e.url+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept-Language", b.lang)
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf returns the CSRF token of a page's forms.
func csrfOf(t *testing.T, html string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no csrf field in page:\n%s", html)
	}
	return m[1]
}

// login logs in with secret and returns the answer to the POST.
func (b *browser) login(secret string) *http.Response {
	b.t.Helper()
	_, page := b.do("GET", "/admin/login?next=/admin/customers", nil)
	resp, _ := b.do("POST", "/admin/login", url.Values{"csrf": {csrfOf(b.t, page)}, "key": {secret}, "next": {"/admin/customers"}})
	return resp
}

func cookieNamed(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestAdminLogin(t *testing.T) {
	e := newEnv(t, storetest.Open(t, store.SQLite))
	b := e.browser()
	if resp, _ := b.do("GET", "/admin/", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/login?next=%2Fadmin%2F" {
		t.Fatalf("anonymous overview: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	t.Run("ErrWrongSecret", func(t *testing.T) {
		resp := b.login("sk_wrong")
		if resp.StatusCode != http.StatusUnauthorized || cookieNamed(resp, sessionCookie) != nil {
			t.Fatalf("wrong key: %d, cookies %v", resp.StatusCode, resp.Cookies())
		}
	})
	t.Run("ErrNoLoginToken", func(t *testing.T) {
		// A form posted from another site cannot echo the login cookie.
		resp, _ := e.browser().do("POST", "/admin/login", url.Values{"key": {testKey}})
		if resp.StatusCode != http.StatusForbidden || cookieNamed(resp, sessionCookie) != nil {
			t.Fatalf("login without the login token: %d", resp.StatusCode)
		}
	})
	for name, secret := range map[string]string{"APIKey": testKey, "Password": testPassword} {
		t.Run(name, func(t *testing.T) {
			b := e.browser()
			resp := b.login(secret)
			c := cookieNamed(resp, sessionCookie)
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/customers" || c == nil {
				t.Fatalf("login: %d to %q, cookies %v", resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || c.Path != "/admin/" {
				t.Errorf("session cookie over plain HTTP: %+v", c)
			}
			if resp, body := b.do("GET", "/admin/", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="overview"`) {
				t.Fatalf("overview after login: %d", resp.StatusCode)
			}
			// Logging out ends the session on the server, not just in the browser.
			_, page := b.do("GET", "/admin/", nil)
			b.do("POST", "/admin/logout", url.Values{"csrf": {csrfOf(t, page)}})
			if resp, _ := b.do("GET", "/admin/", nil); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("overview after logout: %d", resp.StatusCode)
			}
		})
	}
	t.Run("ErrThrottled", func(t *testing.T) {
		b := e.browser()
		for range loginFailures {
			b.login("sk_guess")
		}
		if resp := b.login(testKey); resp.StatusCode != http.StatusTooManyRequests || cookieNamed(resp, sessionCookie) != nil {
			t.Fatalf("right key after %d failures: %d", loginFailures, resp.StatusCode)
		}
		e.s.sessions.now = func() time.Time { return time.Now().Add(loginWindow + time.Minute) }
		defer func() { e.s.sessions.now = time.Now }()
		if resp := b.login(testKey); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("right key after the window: %d", resp.StatusCode)
		}
	})
}

func TestAdminCookiesSecureOverTLS(t *testing.T) {
	e := newEnv(t, storetest.Open(t, store.SQLite))
	serve := func(req *http.Request) *http.Response {
		req.TLS = &tls.ConnectionState{}
		rec := httptest.NewRecorder()
		e.mux.ServeHTTP(rec, req)
		return rec.Result()
	}
	resp := serve(httptest.NewRequest("GET", "/admin/login", nil))
	lc := cookieNamed(resp, loginCookie)
	body, _ := io.ReadAll(resp.Body)
	if lc == nil || !lc.Secure {
		t.Fatalf("login cookie over TLS: %+v", lc)
	}
	req := httptest.NewRequest("POST", "/admin/login", strings.NewReader(url.Values{"csrf": {csrfOf(t, string(body))}, "key": {testKey}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(lc)
	c := cookieNamed(serve(req), sessionCookie)
	if c == nil || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie over TLS: %+v", c)
	}
}

func TestAdminCSRF(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	e := newEnv(t, db)
	in := e.openInvoice(1000)
	b := e.browser()
	b.login(testKey)
	_, page := b.do("GET", "/admin/invoices/"+in.ID, nil)
	tok := csrfOf(t, page)
	for name, form := range map[string]url.Values{
		"ErrNoToken":    {"confirm": {"yes"}},
		"ErrWrongToken": {"confirm": {"yes"}, "csrf": {tok + "x"}},
	} {
		t.Run(name, func(t *testing.T) {
			if resp, _ := b.do("POST", "/admin/invoices/"+in.ID+"/void", form); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("void without a valid token: %d", resp.StatusCode)
			}
		})
	}
	// Another session's token is no good either.
	other := e.browser()
	other.login(testPassword)
	if resp, _ := other.do("POST", "/admin/invoices/"+in.ID+"/void", url.Values{"confirm": {"yes"}, "csrf": {tok}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("void with another session's token: %d", resp.StatusCode)
	}
	if got, _ := e.s.Invoices.Get(t.Context(), in.ID); got.Status != billing.InvoiceOpen {
		t.Fatalf("invoice %s after refused voids", got.Status)
	}
	t.Run("ErrNotConfirmed", func(t *testing.T) {
		resp, _ := b.do("POST", "/admin/invoices/"+in.ID+"/void", url.Values{"csrf": {tok}})
		_, page := b.do("GET", resp.Header.Get("Location"), nil)
		if !strings.Contains(page, catalog["ja"]["confirm_needed"]) {
			t.Fatalf("no confirmation message:\n%s", page)
		}
	})
	t.Run("OK", func(t *testing.T) {
		resp, _ := b.do("POST", "/admin/invoices/"+in.ID+"/void", url.Values{"csrf": {tok}, "confirm": {"yes"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("void: %d", resp.StatusCode)
		}
		_, page := b.do("GET", resp.Header.Get("Location"), nil)
		if !strings.Contains(page, catalog["ja"]["done.void"]) || !strings.Contains(page, "invoice.voided") {
			t.Fatalf("invoice page after void:\n%s", page)
		}
	})
}

func TestAdminSessionExpires(t *testing.T) {
	e := newEnv(t, storetest.Open(t, store.SQLite))
	b := e.browser()
	b.login(testKey)
	e.s.sessions.now = func() time.Time { return time.Now().Add(DefaultSessionTTL + time.Minute) }
	defer func() { e.s.sessions.now = time.Now }()
	if resp, _ := b.do("GET", "/admin/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("overview after the session expired: %d", resp.StatusCode)
	}
}

// openInvoice creates a customer and a finalized one-off invoice.
func (e *env) openInvoice(amount int64) *billing.Invoice {
	e.t.Helper()
	c := e.customer("山田 太郎", "ヤマダ タロウ", "taro@example.com")
	one := int64(1)
	in, err := e.s.Invoices.CreateDraft(e.t.Context(), invoice.DraftParams{Customer: c.ID,
		Lines: []invoice.LineParams{{Description: "サポート", Quantity: &one, UnitAmount: &amount, TaxRate: billing.TaxExempt}}})
	if err == nil {
		in, err = e.s.Invoices.Finalize(e.t.Context(), in.ID)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return in
}

func (e *env) customer(name, kana, email string) *billing.Customer {
	e.t.Helper()
	c := &billing.Customer{ID: billing.NewID(billing.PrefixCustomer), Name: name, KanaName: kana, Email: email, Language: "ja",
		Metadata: map[string]string{}, CreatedAt: e.clock.Now()}
	if _, err := e.db.NewInsert().Model(c).Exec(e.t.Context()); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func TestAdminCustomerSearch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		taro := e.customer("山田 太郎", "ヤマダ タロウ", "taro@example.com")
		hanako := e.customer("佐藤花子", "サトウ　ハナコ", "Hanako@Example.jp")
		odd := e.customer("100%_Club", "", "club@example.com")
		for _, c := range []struct {
			query string
			want  []string
		}{
			{"山田", []string{taro.ID}},
			{"山田太郎", []string{taro.ID}},    // spaces are ignored
			{"佐藤 花子", []string{hanako.ID}}, // on both sides
			{"やまだ", []string{taro.ID}},     // hiragana finds katakana
			{"ﾔﾏﾀﾞ", []string{taro.ID}},    // half-width kana
			{"サトウハナコ", []string{hanako.ID}},
			{"hanako@example", []string{hanako.ID}}, // e-mail, any case
			{"ＴＡＲＯ", []string{taro.ID}},             // full-width letters
			{"%", []string{odd.ID}},                 // wildcards are literal
			{"_", []string{odd.ID}},
			{odd.ID, []string{odd.ID}},
			{"example", []string{taro.ID, hanako.ID, odd.ID}},
			{"鈴木", nil},
		} {
			var got []*billing.Customer
			if err := searchCustomers(db.NewSelect().Model(&got), c.query).Scan(t.Context()); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, g := range got {
				ids = append(ids, g.ID)
			}
			slices.Sort(ids)
			slices.Sort(c.want)
			if !slices.Equal(ids, c.want) {
				t.Errorf("search %q: %v, want %v", c.query, ids, c.want)
			}
		}
		b := e.browser()
		b.login(testKey)
		_, page := b.do("GET", "/admin/customers?q="+url.QueryEscape("やまだ"), nil)
		if !strings.Contains(page, "/admin/customers/"+taro.ID) || strings.Contains(page, hanako.ID) {
			t.Fatalf("search page:\n%s", page)
		}
		_, page = b.do("GET", "/admin/customers/"+taro.ID, nil)
		if !strings.Contains(page, `id="customer-name">山田 太郎`) {
			t.Fatalf("customer page:\n%s", page)
		}
	})
}

func TestAdminOverview(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		ctx := t.Context()
		a := e.openInvoice(1000) // due in 30 days
		e.clock.add(-40 * 24 * time.Hour)
		old := e.openInvoice(2000) // finalized in December, overdue in January
		e.clock.add(40 * 24 * time.Hour)
		// A payment this month and a collection the provider refused.
		now := e.clock.Now()
		v := &billing.Voucher{ID: billing.NewID(billing.PrefixCharge), InvoiceID: a.ID, Provider: "sandbox", ProviderID: "chrg_1",
			Status: "successful", Amount: 300, PaidAt: &now, CreatedAt: now, UpdatedAt: now}
		if _, err := db.NewInsert().Model(v).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		soon := now.Add(2 * 24 * time.Hour)
		live := &billing.Voucher{ID: billing.NewID(billing.PrefixCharge), InvoiceID: a.ID, Provider: "sandbox", ProviderID: "chrg_2",
			Status: "pending", Amount: 700, ExpiresAt: &soon, CreatedAt: now, UpdatedAt: now}
		if _, err := db.NewInsert().Model(live).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		failed := &billing.Task{ID: billing.NewID(billing.PrefixTask), Kind: "email", Key: "invoice:" + a.ID, ObjectID: a.ID,
			RunAt: now, Status: "failed", Attempts: 12, LastError: "550 mailbox unavailable", DoneAt: &now, CreatedAt: now}
		if _, err := db.NewInsert().Model(failed).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		// A webhook delivery given up on at a working endpoint, and an
		// endpoint disabled because it kept failing, with one delivery waiting.
		code := 500
		working := &webhook.Endpoint{ID: billing.NewID(webhook.PrefixEndpoint), URL: "https://app.example.com/billing", Events: []string{"*"}, Secret: "whsec_x", CreatedAt: now}
		failing := &webhook.Endpoint{ID: billing.NewID(webhook.PrefixEndpoint), URL: "https://down.example.com/hook", Events: []string{"*"}, Secret: "whsec_y",
			DisabledAt: &now, DisabledReason: webhook.ReasonFailing, FailingSince: &now, CreatedAt: now}
		if _, err := db.NewInsert().Model(&[]*webhook.Endpoint{working, failing}).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		gaveUp := &webhook.Delivery{ID: "wd_1", EndpointID: working.ID, EventID: "evt_1", EventType: "invoice.finalized", ObjectID: a.ID, Status: webhook.StatusFailed,
			AttemptCount: 17, NextAttemptAt: now, RetryFrom: now, LastAttemptAt: &now, LastResponseCode: &code, LastError: "HTTP 500: upstream exploded", CreatedAt: now}
		waiting := &webhook.Delivery{ID: "wd_2", EndpointID: failing.ID, EventID: "evt_2", EventType: "invoice.paid", ObjectID: a.ID, Status: webhook.StatusPending,
			NextAttemptAt: now, RetryFrom: now, CreatedAt: now}
		if _, err := db.NewInsert().Model(&[]*webhook.Delivery{gaveUp, waiting}).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := db.NewUpdate().Model((*billing.Invoice)(nil)).Set("collection_status = 'action_required'").
			Set("collection_error = 'phone is required'").Where("id = ?", old.ID).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		b := e.browser()
		b.lang = "en"
		b.login(testKey)
		_, page := b.do("GET", "/admin/", nil)
		for _, want := range []string{
			"January 2027",
			`id="issued">¥1,000<`,
			`id="open">¥3,000<`,
			`id="overdue">¥2,000<`,
			`id="paid">¥300<`,
			"phone is required",
			`<td class="num">¥700</td>`, // the voucher expiring in two days
			*a.Number,
			"550 mailbox unavailable",
			`id="failed-webhooks"`,
			"https://app.example.com/billing",
			"HTTP 500: upstream exploded",
			`href="/admin/invoices/` + a.ID + `"`,
			`id="disabled-endpoints"`,
			"https://down.example.com/hook",
			catalog["en"]["endpoint.failing"],
			`<td class="num">1</td>`, // the delivery waiting for the disabled endpoint
		} {
			if !strings.Contains(page, want) {
				t.Errorf("overview lacks %q", want)
			}
		}
		if t.Failed() {
			t.Log(page)
		}
	})
}

func TestAdminLanguage(t *testing.T) {
	e := newEnv(t, storetest.Open(t, store.SQLite))
	for _, c := range []struct{ accept, cookie, want string }{
		{"", "", "ログイン"},
		{"en-US,en;q=0.9", "", "Log in"},
		{"ja,en;q=0.5", "", "ログイン"},
		{"fr", "", "ログイン"},
		{"en", "ja", "ログイン"},
		{"ja", "en", "Log in"},
	} {
		req := httptest.NewRequest("GET", "/admin/login", nil)
		req.Header.Set("Accept-Language", c.accept)
		if c.cookie != "" {
			req.AddCookie(&http.Cookie{Name: langCookie, Value: c.cookie})
		}
		rec := httptest.NewRecorder()
		e.mux.ServeHTTP(rec, req)
		if !strings.Contains(rec.Body.String(), "<h1>"+c.want+"</h1>") {
			t.Errorf("Accept-Language %q, cookie %q: want %q", c.accept, c.cookie, c.want)
		}
	}
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, httptest.NewRequest("GET", "/admin/lang/en?next=//evil.example/admin/", nil))
	if loc := rec.Header().Get("Location"); loc != "/admin/" || cookieNamed(rec.Result(), langCookie).Value != "en" {
		t.Fatalf("language switch: to %q, cookies %v", loc, rec.Result().Cookies())
	}
}

func TestAdminLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/admin/customers?q=a":  "/admin/customers?q=a",
		"":                      "/admin/",
		"/v1/customers":         "/admin/",
		"//evil.example/admin/": "/admin/",
		"https://evil.example":  "/admin/",
		"/admin/\\evil":         "/admin/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// keyUse finds the catalog keys templates ask for.
var keyUse = regexp.MustCompile(`\.T "([^"]+)"`)

// TestAdminCatalogComplete checks that every text the dashboard shows exists in
// Japanese, and every short key (status.open, login_hint) in English too;
// English keys written as English text show as themselves.
func TestAdminCatalogComplete(t *testing.T) {
	keys := map[string]bool{}
	err := fs.WalkDir(templates.FS, "admin", func(path string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(path, ".html") {
			return err
		}
		b, err := fs.ReadFile(templates.FS, path)
		for _, m := range keyUse.FindAllStringSubmatch(string(b), -1) {
			keys[m[1]] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Keys built in code: titles, error headings, messages, values.
	for _, k := range []string{"Customer", "Invoice", "Logged out", "Forbidden", "Not found", "Invalid request", "Not possible now",
		"Try again", "Something went wrong", "login_failed", "login_expired", "login_throttled", "session_expired", "csrf_failed",
		"internal_error", "confirm_needed", "action_failed", "(draft)", "resend.invoice", "resend.receipt"} {
		keys[k] = true
	}
	for _, a := range []string{"finalize", "void", "mark_uncollectible", "reissue_voucher", "resend_email", "credit_note"} {
		keys["done."+a] = true
	}
	for _, r := range creditNoteReasons {
		keys["reason."+string(r)] = true
	}
	for _, o := range creditNoteOutcomes {
		keys["outcome."+string(o)] = true
	}
	for _, r := range []string{webhook.ReasonOperator, webhook.ReasonFailing} {
		keys["endpoint."+r] = true
	}
	for _, s := range invoiceStatuses {
		keys["status."+string(s)] = true
	}
	for _, s := range []string{billing.CollectionNone, billing.CollectionPending, billing.CollectionActive, billing.CollectionActionRequired, billing.CollectionCanceling} {
		keys["collection."+s] = true
	}
	for _, s := range []string{"pending", "successful", "failed", "expired", "canceled"} {
		keys["voucher."+s] = true
	}
	for _, s := range []billing.SubscriptionStatus{billing.SubscriptionActive, billing.SubscriptionPastDue, billing.SubscriptionCanceled} {
		keys["sub."+string(s)] = true
	}
	for _, s := range []string{"carry_over", "applied_to_invoice", "excess_payment", "task.pending", "task.done", "task.failed"} {
		if !strings.HasPrefix(s, "task.") {
			s = "txn." + s
		}
		keys[s] = true
	}
	for _, k := range []string{"invoices", "payments", "balance", "journal"} {
		keys["kind."+k] = true
	}
	for _, f := range []string{"csv", "yayoi", "freee", "moneyforward"} {
		keys["format."+f] = true
	}
	short := regexp.MustCompile(`^[a-z][a-z_]*[._][a-z_.]+$`)
	for k := range keys {
		if _, ok := catalog["ja"][k]; !ok {
			t.Errorf("no Japanese for %q", k)
		}
		if _, ok := catalog["en"][k]; !ok && short.MatchString(k) {
			t.Errorf("no English for %q", k)
		}
	}
	for k := range catalog["en"] {
		if _, ok := catalog["ja"][k]; !ok {
			t.Errorf("English %q has no Japanese", k)
		}
	}
}
