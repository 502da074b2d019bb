package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"billingd/billing"
	"billingd/billing/export"
	"billingd/billing/store"
	"billingd/invoice"
	"billingd/templates"
)

// Documents gives the stored PDF of an invoice ("invoice" or "receipt"),
// rendering and storing it on first use; delivery.Service implements it.
type Documents interface {
	Document(ctx context.Context, invoiceID, kind string) (*billing.Document, error)
}

// Server serves the admin dashboard. Set the fields (DB, Clock, Invoices and
// Documents are required), then Mount it on the daemon's mux.
type Server struct {
	// DB is read directly for the pages (lists and sums); changes go through
	// Invoices or are recorded with an event in one transaction.
	DB       *store.DB
	Clock    billing.Clock
	Settings billing.Settings
	// Invoices finalizes, voids and marks invoices uncollectible, and
	// issues credit notes.
	Invoices *invoice.Service
	// Documents serves the stored PDFs.
	Documents Documents
	// Export brings the options the daemon's configuration fixes (time zone,
	// accounts); the form chooses kind, format and range.
	Export export.Options
	// APIKeyHash is the hex SHA-256 of the operator API key (what
	// api.HashKey returns); the key logs in.
	APIKeyHash string
	// Password, if set (BILLING_ADMIN_PASSWORD), also logs in.
	Password string
	// Kick, if set, is called after every action so the collector and the
	// outbox act on it at once.
	Kick func()
	// Logger records internal errors.
	Logger *slog.Logger
	// SecureCookies marks the cookies Secure on every request, for a daemon
	// behind a TLS-terminating proxy; without it they are Secure when the
	// request itself came over TLS.
	SecureCookies bool
	// SessionTTL is how long a login lasts (DefaultSessionTTL if zero).
	SessionTTL time.Duration

	once     sync.Once
	sessions *sessions
}

// Cookie names. The session and login cookies are limited to /admin/.
const (
	sessionCookie = "billingd_admin"
	loginCookie   = "billingd_admin_login"
	langCookie    = "billingd_admin_lang"
)

// pages holds one template set per page: the layout, the shared parts and
// the page's own "content".
var pages = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range []string{"login", "error", "overview", "customers", "customer", "invoices", "invoice", "exports"} {
		out[name] = template.Must(template.New(name).ParseFS(templates.FS,
			"admin/layout.html", "admin/parts.html", "admin/"+name+".html"))
	}
	return out
}()

// style is the stylesheet, served at /admin/style.css.
var style = func() []byte {
	b, err := fs.ReadFile(templates.FS, "admin/style.css")
	if err != nil {
		panic(err)
	}
	return b
}()

// Mount adds the dashboard's routes, all under /admin/, to mux.
func (s *Server) Mount(mux *http.ServeMux) {
	s.once.Do(func() {
		s.sessions = newSessions(s.SessionTTL)
		if s.Logger == nil {
			s.Logger = slog.Default()
		}
	})
	mux.HandleFunc("GET /admin/style.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Write(style) //nolint:errcheck
	})
	mux.HandleFunc("GET /admin/login", s.loginPage)
	mux.HandleFunc("POST /admin/login", s.login)
	mux.HandleFunc("GET /admin/lang/{lang}", s.setLang)
	mux.Handle("POST /admin/logout", s.auth(s.logout))
	mux.Handle("GET /admin/{$}", s.auth(s.overview))
	mux.Handle("GET /admin/customers", s.auth(s.customers))
	mux.Handle("GET /admin/customers/{id}", s.auth(s.customer))
	mux.Handle("GET /admin/invoices", s.auth(s.invoices))
	mux.Handle("GET /admin/invoices/{id}", s.auth(s.invoice))
	mux.Handle("GET /admin/invoices/{id}/{file}", s.auth(s.document))
	mux.Handle("POST /admin/invoices/{id}/{action}", s.auth(s.invoiceAction))
	mux.Handle("GET /admin/credit_notes/{id}/pdf", s.auth(s.creditNoteDocument))
	mux.Handle("GET /admin/exports", s.auth(s.exports))
	mux.Handle("GET /admin/exports/download", s.auth(s.download))
	mux.Handle("/admin/", s.auth(func(w http.ResponseWriter, r *http.Request, x *session) {
		s.fail(w, r, x, billing.Errorf(billing.ENOTFOUND, "No such page: %s", r.URL.Path))
	}))
}

// handler is a dashboard handler; x is the logged-in session.
type handler func(w http.ResponseWriter, r *http.Request, x *session)

// auth serves h to logged-in sessions only. A GET without a session is
// sent to the login page (and back afterwards); a POST must also carry the
// session's CSRF token in its form.
func (s *Server) auth(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var x *session
		if c, err := r.Cookie(sessionCookie); err == nil {
			x = s.sessions.get(c.Value)
		}
		if x == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/admin/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.render(w, r, nil, http.StatusUnauthorized, "error", "Logged out", errorData{"Logged out", s.text(r, "session_expired")})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !equal(r.PostFormValue("csrf"), x.csrf) {
				s.render(w, r, x, http.StatusForbidden, "error", "Forbidden", errorData{"Forbidden", s.text(r, "csrf_failed")})
				return
			}
		}
		h(w, r, x)
	})
}

// cookie returns a cookie for the dashboard with the attributes every
// dashboard cookie has.
func (s *Server) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/admin/", MaxAge: maxAge, HttpOnly: true,
		Secure: r.TLS != nil || s.SecureCookies, SameSite: http.SameSiteLaxMode}
}

// loginData is what the login page shows.
type loginData struct {
	Token string // the double-submit token, also in the login cookie
	Next  string
	Error string // a catalog key
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil && s.sessions.get(c.Value) != nil {
		http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	s.showLogin(w, r, http.StatusOK, "")
}

// showLogin renders the login form with a fresh login token.
func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, status int, errKey string) {
	tok := token()
	http.SetCookie(w, s.cookie(r, loginCookie, tok, 3600))
	next := r.URL.Query().Get("next")
	if r.Method == http.MethodPost {
		next = r.PostFormValue("next")
	}
	s.render(w, r, nil, status, "login", "Log in", loginData{Token: tok, Next: localPath(next), Error: errKey})
}

// login checks the key or password. The form must echo the token of the
// login cookie (a cross-site page cannot read it), so another site cannot
// log the operator's browser into a session of its choosing.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	addr := remoteHost(r)
	c, err := r.Cookie(loginCookie)
	switch {
	case err != nil || !equal(r.PostFormValue("csrf"), c.Value):
		s.showLogin(w, r, http.StatusForbidden, "login_expired")
		return
	case s.sessions.throttled(addr):
		s.showLogin(w, r, http.StatusTooManyRequests, "login_throttled")
		return
	case !s.validCredential(r.PostFormValue("key")):
		s.sessions.failed(addr)
		s.Logger.Warn("admin login refused", "remote", addr)
		s.showLogin(w, r, http.StatusUnauthorized, "login_failed")
		return
	}
	s.sessions.succeeded(addr)
	x := s.sessions.create()
	http.SetCookie(w, s.cookie(r, loginCookie, "", -1))
	http.SetCookie(w, s.cookie(r, sessionCookie, x.id, int(s.sessions.ttl/time.Second)))
	s.Logger.Info("admin login", "remote", addr)
	http.Redirect(w, r, localPath(r.PostFormValue("next")), http.StatusSeeOther)
}

// validCredential reports whether key is the operator API key or the admin
// password. Both sides are hashed first so the comparison takes the same
// time whatever the lengths.
func (s *Server) validCredential(key string) bool {
	if key == "" {
		return false
	}
	ok := s.APIKeyHash != "" && subtle.ConstantTimeCompare([]byte(hashKey(key)), []byte(s.APIKeyHash)) == 1
	if s.Password != "" {
		a, b := sha256.Sum256([]byte(key)), sha256.Sum256([]byte(s.Password))
		ok = subtle.ConstantTimeCompare(a[:], b[:]) == 1 || ok
	}
	return ok
}

// hashKey is api.HashKey (the hex SHA-256 the daemon keeps of the API
// key), repeated here so the dashboard does not import the HTTP API.
func hashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, x *session) {
	s.sessions.end(x.id)
	http.SetCookie(w, s.cookie(r, sessionCookie, "", -1))
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
}

// setLang chooses the dashboard's language and goes back to the page.
func (s *Server) setLang(w http.ResponseWriter, r *http.Request) {
	lang := r.PathValue("lang")
	if _, ok := catalog[lang]; !ok {
		http.NotFound(w, r)
		return
	}
	http.SetCookie(w, s.cookie(r, langCookie, lang, 365*24*3600))
	http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
}

// localPath returns p if it is a path of the dashboard, else /admin/, so a
// next= parameter cannot send the browser to another site.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/admin/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return "/admin/"
	}
	return p
}

// remoteHost is the address a request came from, without the port.
func remoteHost(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

// flashNext keeps a message for the session's next page and redirects to to.
func (s *Server) flashNext(w http.ResponseWriter, r *http.Request, x *session, f *flash, to string) {
	s.sessions.setFlash(x, f)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// errorData is what the error page shows.
type errorData struct {
	Heading string // a catalog key
	Message string
}

// fail shows err as a page: the status follows the error code; internal
// errors are logged and shown without detail.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, x *session, err error) {
	status, heading := http.StatusInternalServerError, "Something went wrong"
	msg := billing.ErrorMessage(err)
	switch billing.ErrorCode(err) {
	case billing.ENOTFOUND:
		status, heading = http.StatusNotFound, "Not found"
	case billing.EINVALID:
		status, heading = http.StatusBadRequest, "Invalid request"
	case billing.ECONFLICT:
		status, heading = http.StatusConflict, "Not possible now"
	case billing.EUNAVAILABLE:
		status, heading = http.StatusServiceUnavailable, "Try again"
	default:
		s.Logger.Error("admin internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = s.text(r, "internal_error")
	}
	s.render(w, r, x, status, "error", heading, errorData{heading, msg})
}

// render executes page name into a buffer and writes it with the headers
// every dashboard page has. x is nil before login.
func (s *Server) render(w http.ResponseWriter, r *http.Request, x *session, status int, name, title string, data any) {
	p := &page{Lang: s.lang(r), Title: title, Path: r.URL.RequestURI(), Data: data, loc: s.location()}
	if x != nil {
		p.LoggedIn, p.CSRF, p.Flash = true, x.csrf, s.sessions.takeFlash(x)
	}
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.Logger.Error("admin template", "page", name, "err", err)
		http.Error(w, "template error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	w.Write(buf.Bytes()) //nolint:errcheck
}

// location is the operator's time zone, in which the dashboard shows times.
func (s *Server) location() *time.Location {
	if s.Settings.Location != nil {
		return s.Settings.Location
	}
	return billing.DefaultSettings().Location
}

// kick asks the workers to act now.
func (s *Server) kick() {
	if s.Kick != nil {
		s.Kick()
	}
}
