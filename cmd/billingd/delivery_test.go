package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"billingd/billing/store"
	"billingd/billing/store/storetest"
)

// inbox is a real SMTP server (emersion/go-smtp) on 127.0.0.1 that keeps
// what it receives.
type inbox struct {
	mu   sync.Mutex
	msgs []*mail.Message
	raw  [][]byte
	srv  *smtp.Server
	addr string
}

type inboxSession struct{ in *inbox }

func (b *inbox) NewSession(*smtp.Conn) (smtp.Session, error) { return inboxSession{b}, nil }
func (s inboxSession) Mail(string, *smtp.MailOptions) error  { return nil }
func (s inboxSession) Rcpt(string, *smtp.RcptOptions) error  { return nil }
func (s inboxSession) Reset()                                {}
func (s inboxSession) Logout() error                         { return nil }
func (s inboxSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	s.in.mu.Lock()
	s.in.msgs, s.in.raw = append(s.in.msgs, m), append(s.in.raw, raw)
	s.in.mu.Unlock()
	return nil
}

// startInbox listens on addr ("127.0.0.1:0" for any port).
func startInbox(t testing.TB, addr string) *inbox {
	t.Helper()
	in := &inbox{}
	in.listen(t, addr)
	return in
}

func (in *inbox) listen(t testing.TB, addr string) {
	in.srv = smtp.NewServer(in)
	in.srv.Domain, in.srv.AllowInsecureAuth = "localhost", true
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	in.addr = l.Addr().String()
	go in.srv.Serve(l) //nolint:errcheck
	t.Cleanup(func() { in.srv.Close() })
}

func (in *inbox) messages() []*mail.Message {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]*mail.Message(nil), in.msgs...)
}

// parts returns a message's decoded subject, its text body and its
// attachments by file name.
func parts(t testing.TB, m *mail.Message) (subject, text string, files map[string][]byte) {
	t.Helper()
	dec := new(mime.WordDecoder)
	subject, _ = dec.DecodeHeader(m.Header.Get("Subject"))
	files = map[string][]byte{}
	var walk func(r io.Reader, ct string, enc string)
	walk = func(r io.Reader, ct, enc string) {
		mt, params, _ := mime.ParseMediaType(ct)
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(r, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err != nil {
					return
				}
				walk(p, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"))
				if name := p.FileName(); name != "" {
					_ = name
				}
			}
		}
		body, _ := io.ReadAll(decodeTransfer(r, enc))
		_, cp, _ := mime.ParseMediaType(ct)
		if name := cp["name"]; name != "" {
			name, _ = dec.DecodeHeader(name)
			files[name] = body
		} else if mt == "text/plain" {
			text = string(body)
		}
	}
	walk(m.Body, m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"))
	return subject, text, files
}

func decodeTransfer(r io.Reader, enc string) io.Reader {
	switch strings.ToLower(enc) {
	case "base64":
		return base64Reader(r)
	case "quoted-printable":
		return qpReader(r)
	}
	return r
}

func TestInvoiceEmailWithPDFOverSMTP(t *testing.T) {
	each(t, func(t *testing.T, dialect string) {
		box := startInbox(t, "127.0.0.1:0")
		d := startDaemon(t, dialect, map[string]string{"BILLING_SMTP_URL": "smtp://" + box.addr, "BILLING_MAIL_FROM": "billing@example.com"})
		id := d.oneOff(4400, nil)
		v := d.voucher(id)
		eventually(t, "invoice e-mail", func() bool { return len(box.messages()) == 1 })
		m := box.messages()[0]
		subject, text, files := parts(t, m)
		in := d.must("GET", "/v1/invoices/"+id, nil)
		number := in["number"].(string)
		code := v["payment_codes"].([]any)[0].(map[string]any)["payment_code"].(string)
		if m.Header.Get("To") == "" || !strings.Contains(m.Header.Get("To"), "taro@example.com") || !strings.Contains(subject, number) {
			t.Fatalf("to %q subject %q", m.Header.Get("To"), subject)
		}
		if !strings.Contains(text, code) || !strings.Contains(text, in["hosted_invoice_url"].(string)) || !strings.Contains(text, "4,400") {
			t.Fatalf("body lacks code %s, payment page or amount:\n%s", code, text)
		}
		pdf := files[number+".pdf"]
		if !bytes.HasPrefix(pdf, []byte("%PDF")) {
			t.Fatalf("attachments %v", keys(files))
		}
		// The operator downloads exactly the bytes that were sent.
		resp := d.get("/v1/invoices/" + id + "/pdf")
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sum := sha256.Sum256(pdf)
		if !bytes.Equal(got, pdf) || resp.Header.Get("X-Content-SHA256") != hex.EncodeToString(sum[:]) {
			t.Fatalf("downloaded PDF differs from the one sent (%d vs %d bytes)", len(got), len(pdf))
		}
		// The event is written once the SMTP server has accepted the message,
		// which can be just after the message reaches the inbox.
		sent := func() []any { return d.must("GET", "/v1/events?type=email.sent&object_id="+id, nil)["data"].([]any) }
		eventually(t, "email.sent event", func() bool { return len(sent()) > 0 })
		if evs := sent(); len(evs) != 1 {
			t.Fatalf("%d email.sent events", len(evs))
		}
		// Payment brings a receipt with its PDF.
		d.must("POST", "/sandbox/charges/"+v["provider_id"].(string)+"/mark_as_paid", nil)
		eventually(t, "receipt e-mail", func() bool { return len(box.messages()) == 2 })
		_, _, files = parts(t, box.messages()[1])
		if r := files["receipt-"+number+".pdf"]; !bytes.HasPrefix(r, []byte("%PDF")) {
			t.Fatalf("receipt attachments %v", keys(files))
		}
	})
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func (d *daemon) get(path string) *http.Response {
	d.t.Helper()
	req, _ := http.NewRequest("GET", d.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+d.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	return resp
}

func TestSMTPOutageLosesNothingAndSendsOnce(t *testing.T) {
	// Reserve a port, then leave it closed: the SMTP server is down.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	d := startDaemon(t, store.SQLite, map[string]string{"BILLING_SMTP_URL": "smtp://" + addr})
	id := d.oneOff(3000, nil)
	d.voucher(id)
	eventually(t, "deferred e-mail", func() bool {
		return len(d.must("GET", "/v1/events?type=email.deferred&object_id="+id, nil)["data"].([]any)) >= 1
	})
	box := startInbox(t, addr) // the server comes back
	d.must("POST", "/v1/test_clock/advance", map[string]any{"by": "2m"})
	eventually(t, "e-mail after the outage", func() bool { return len(box.messages()) == 1 })
	d.must("POST", "/v1/test_clock/advance", map[string]any{"by": "1h"})
	if n := len(box.messages()); n != 1 {
		t.Fatalf("%d messages after the outage, want exactly 1", n)
	}
}

func TestOutboxFolderAndReminderAndVoidNotice(t *testing.T) {
	d := startDaemon(t, store.SQLite, nil) // no SMTP: .eml files in <data dir>/outbox
	id := d.oneOff(2000, map[string]any{"name": "Jane Doe", "kana_name": "ジェーン", "email": "jane@example.com", "phone": "0312345678", "language": "en"})
	d.voucher(id)
	dir := filepath.Join(d.m.Config.DataDir, "outbox")
	emls := func() []string {
		files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
		return files
	}
	eventually(t, "invoice e-mail in the outbox", func() bool { return len(emls()) == 1 })
	// Due in 10 days: the reminder goes out 3 days before the deadline.
	d.must("POST", "/v1/test_clock/advance", map[string]any{"by": "6d"})
	if n := len(emls()); n != 1 {
		t.Fatalf("%d e-mails before the reminder window", n)
	}
	d.must("POST", "/v1/test_clock/advance", map[string]any{"by": "2d"})
	eventually(t, "reminder", func() bool { return len(emls()) == 2 })
	d.must("POST", "/v1/invoices/"+id+"/void", nil)
	eventually(t, "void notice", func() bool { return len(emls()) == 3 })
	var subjects []string
	for _, f := range emls() {
		raw, _ := os.ReadFile(f)
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		s, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		subjects = append(subjects, s)
	}
	joined := strings.ToLower(strings.Join(subjects, " | "))
	for _, w := range []string{"invoice", "remind", "void"} {
		if !strings.Contains(joined, w) {
			t.Errorf("subjects %q lack %q", subjects, w)
		}
	}
}

func TestPaymentPage(t *testing.T) {
	d := startDaemon(t, store.SQLite, nil)
	id := d.oneOff(5500, nil)
	v := d.voucher(id)
	url := d.must("GET", "/v1/invoices/"+id, nil)["hosted_invoice_url"].(string)
	page := func() string {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	html := page()
	code := v["payment_codes"].([]any)[0].(map[string]any)["payment_code"].(string)
	for _, want := range []string{code, "5,500", "ローソン", "ファミリーマート", "simulate-paid", "viewport"} {
		if !strings.Contains(html, want) {
			t.Errorf("payment page lacks %q", want)
		}
	}
	resp, err := http.PostForm(url+"/simulate", map[string][]string{"action": {"mark_as_paid"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st := d.invoiceStatus(id); st != "paid" {
		t.Fatalf("after the sandbox's paid button: %s", st)
	}
	if html := page(); !strings.Contains(html, "お支払い済み") || strings.Contains(html, "simulate-paid") {
		t.Errorf("paid page:\n%s", html)
	}
	if resp, _ := http.Get(d.url + "/pay/not-a-real-token-at-all-xxxxxxxx"); resp.StatusCode != 404 {
		t.Errorf("unknown token: %d", resp.StatusCode)
	}
	_ = errors.New
}

// BenchmarkInvoiceDelivery measures invoices e-mailed per second from
// finalization to the customer's inbox, through the whole daemon: the
// finalize request, the voucher issued at the sandbox provider (over HTTP),
// the PDF rendered and stored, the e-mail sent to a real SMTP listener. The
// drafts are made before the timing.
//
//	go test -run '^$' -bench InvoiceDelivery -benchtime 300x ./cmd/billingd
func BenchmarkInvoiceDelivery(b *testing.B) {
	for _, dialect := range storetest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			box := startInbox(b, "127.0.0.1:0")
			d := startDaemon(b, dialect, map[string]string{"BILLING_SMTP_URL": "smtp://" + box.addr, "BILLING_MAIL_FROM": "billing@example.com"})
			cus := d.must("POST", "/v1/customers", map[string]any{"name": "株式会社サンプル商事", "email": "keiri@example.com", "phone": "03-1234-5678"})
			ids := make([]string, b.N)
			for i := range ids {
				in := d.must("POST", "/v1/invoices", map[string]any{"customer": cus["id"], "days_until_due": 10, "lines": []any{
					map[string]any{"description": "スタンダードプラン（月額）", "unit_amount": 9800, "tax_rate": "standard"},
					map[string]any{"description": "ドリップコーヒー詰め合わせ", "unit_amount": 3000, "tax_rate": "reduced"},
				}})
				ids[i] = in["id"].(string)
			}
			b.ResetTimer()
			start := time.Now()
			for _, id := range ids {
				d.must("POST", "/v1/invoices/"+id+"/finalize", nil)
			}
			for len(box.messages()) < b.N {
				if time.Since(start) > 10*time.Minute {
					b.Fatalf("%d of %d e-mails after 10 minutes", len(box.messages()), b.N)
				}
				time.Sleep(5 * time.Millisecond)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "invoices/s")
		})
	}
}
