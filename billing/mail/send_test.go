package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	gomail "github.com/wneessen/go-mail"
)

var pdf = []byte("%PDF-1.7\n\x00\x01\x02 binary \r\n bytes\n%%EOF\n")

func testMessage(id string) *Message {
	return &Message{
		ID:      id,
		Date:    time.Date(2027, 1, 1, 9, 0, 0, 0, tokyo),
		From:    Address{Name: "株式会社サンプル", Email: "billing@example.jp"},
		To:      []Address{{Name: "山田 太郎", Email: "taro@example.com"}},
		Subject: "【株式会社サンプル】ご請求書（INV-2027-000123）のお知らせ",
		Text:    "山田 太郎 様\n\nお支払番号：123456789012\n",
		HTML:    "<p>山田 太郎 様</p>",
		Attachments: []Attachment{
			{Name: "請求書_INV-2027-000123.pdf", ContentType: "application/pdf", Data: pdf},
		},
	}
}

// parsed is a message as a mail client reads it.
type parsed struct {
	Header      netmail.Header
	Subject     string
	Text, HTML  string
	Attachments map[string][]byte
}

func parse(t testing.TB, data []byte) parsed {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("net/mail cannot read the message: %v\n%s", err, data)
	}
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	p := parsed{Header: msg.Header, Subject: subject, Attachments: map[string][]byte{}}
	var walk func(h map[string][]string, body io.Reader)
	walk = func(h map[string][]string, body io.Reader) {
		get := func(k string) string {
			if v := h[k]; len(v) > 0 {
				return v[0]
			}
			return ""
		}
		mt, params, err := mime.ParseMediaType(get("Content-Type"))
		if err != nil {
			t.Fatalf("content type %q: %v", get("Content-Type"), err)
		}
		if strings.HasPrefix(mt, "multipart/") {
			r := multipart.NewReader(body, params["boundary"])
			for {
				part, err := r.NextRawPart()
				if err == io.EOF {
					return
				} else if err != nil {
					t.Fatal(err)
				}
				walk(part.Header, part)
			}
		}
		switch strings.ToLower(get("Content-Transfer-Encoding")) {
		case "base64":
			body = base64.NewDecoder(base64.StdEncoding, body)
		case "quoted-printable":
			body = quotedprintable.NewReader(body)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		_, dp, _ := mime.ParseMediaType(get("Content-Disposition"))
		switch {
		case dp["filename"] != "":
			name, err := dec.DecodeHeader(dp["filename"])
			if err != nil {
				t.Fatal(err)
			}
			p.Attachments[name] = b
		case mt == "text/plain":
			p.Text = strings.ReplaceAll(string(b), "\r\n", "\n")
		case mt == "text/html":
			p.HTML = strings.ReplaceAll(string(b), "\r\n", "\n")
		}
	}
	walk(msg.Header, msg.Body)
	return p
}

func checkMessage(t *testing.T, want *Message, data []byte) {
	t.Helper()
	p := parse(t, data)
	if p.Subject != want.Subject {
		t.Errorf("subject %q, want %q", p.Subject, want.Subject)
	}
	to, err := p.Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Name != want.To[0].Name || to[0].Address != want.To[0].Email {
		t.Errorf("To %v (%v), want %v", to, err, want.To)
	}
	from, err := p.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != want.From.Name || from[0].Address != want.From.Email {
		t.Errorf("From %v (%v), want %v", from, err, want.From)
	}
	if got := p.Header.Get("Message-Id"); got != "<"+want.ID+">" {
		t.Errorf("Message-ID %q, want <%s>", got, want.ID)
	}
	if d, err := p.Header.Date(); err != nil || !d.Equal(want.Date) {
		t.Errorf("Date %v (%v), want %v", d, err, want.Date)
	}
	if p.Text != want.Text {
		t.Errorf("text %q, want %q", p.Text, want.Text)
	}
	if p.HTML != want.HTML {
		t.Errorf("HTML %q, want %q", p.HTML, want.HTML)
	}
	a := want.Attachments[0]
	if got, ok := p.Attachments[a.Name]; !ok || !bytes.Equal(got, a.Data) {
		t.Errorf("attachments %q, want %s with %q", p.Attachments, a.Name, a.Data)
	}
}

// plainSMTP serves b without TLS and returns a sender to it, closed when
// the test ends.
func plainSMTP(t testing.TB, b *backend) *SMTP {
	t.Helper()
	addr, _ := serve(t, b, nil, false)
	s, err := NewSMTP("smtp://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSMTP(t *testing.T) {
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		b := &backend{}
		s := plainSMTP(t, b)
		m := testMessage("in_1.invoice@billingd.test")
		if err := s.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
		got := b.received()
		if len(got) != 1 {
			t.Fatalf("server received %d messages, want 1", len(got))
		}
		if got[0].From != "billing@example.jp" || len(got[0].To) != 1 || got[0].To[0] != "taro@example.com" {
			t.Errorf("envelope from %q to %q", got[0].From, got[0].To)
		}
		checkMessage(t, m, got[0].Data)
	})

	t.Run("StartTLSAuthPlain", func(t *testing.T) {
		cert, pool := selfSigned(t)
		b := &backend{user: "billing@example.jp", pass: "p@ss:wörd/1"}
		addr, _ := serve(t, b, cert, false)
		s, err := NewSMTP("smtp://billing%40example.jp:p%40ss%3Aw%C3%B6rd%2F1@" + addr + "?starttls=required&timeout=5s")
		if err != nil {
			t.Fatal(err)
		}
		s.TLSConfig = &tls.Config{RootCAs: pool}
		m := testMessage("in_2.invoice@billingd.test")
		if err := s.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
		got := b.received()
		if len(got) != 1 || !got[0].TLS || got[0].Authed != b.user {
			t.Fatalf("received %+v, want one message over TLS from %s", got, b.user)
		}
		checkMessage(t, m, got[0].Data)
	})

	t.Run("ImplicitTLS", func(t *testing.T) {
		cert, pool := selfSigned(t)
		b := &backend{user: "u", pass: "p"}
		addr, _ := serve(t, b, cert, true)
		s, err := NewSMTP("smtps://u:p@" + addr)
		if err != nil {
			t.Fatal(err)
		}
		s.TLSConfig = &tls.Config{RootCAs: pool}
		if err := s.Send(ctx, testMessage("in_3.invoice@billingd.test")); err != nil {
			t.Fatal(err)
		}
		if got := b.received(); len(got) != 1 || !got[0].TLS || got[0].Authed != "u" {
			t.Fatalf("received %+v, want one message over TLS from u", got)
		}
	})

	t.Run("ErrUntrustedCertificate", func(t *testing.T) {
		cert, _ := selfSigned(t)
		addr, _ := serve(t, &backend{}, cert, false)
		s, _ := NewSMTP("smtp://" + addr)
		if err := s.Send(ctx, testMessage("x@billingd.test")); err == nil {
			t.Fatal("sent to a server whose certificate is not trusted")
		}
	})

	t.Run("ErrStartTLSRequired", func(t *testing.T) {
		b := &backend{}
		addr, _ := serve(t, b, nil, false)
		s, _ := NewSMTP("smtp://" + addr + "?starttls=required")
		err := s.Send(ctx, testMessage("x@billingd.test"))
		if err == nil || len(b.received()) != 0 {
			t.Fatalf("sent without STARTTLS: %v", err)
		}
	})

	t.Run("ErrOutage", func(t *testing.T) {
		addr, stop := serve(t, &backend{}, nil, false)
		stop()
		s, _ := NewSMTP("smtp://" + addr + "?timeout=2s")
		err := s.Send(ctx, testMessage("x@billingd.test"))
		if err == nil || !IsTemporary(err) {
			t.Fatalf("error %v, want a temporary one", err)
		}
	})

	for _, tc := range []struct {
		name      string
		code      int
		temporary bool
	}{
		{"ErrTemporary4xx", 451, true},
		{"ErrPermanent5xx", 550, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &backend{reject: &smtp.SMTPError{Code: tc.code, EnhancedCode: smtp.EnhancedCode{tc.code / 100, 1, 1}, Message: "no"}}
			s := plainSMTP(t, b)
			err := s.Send(ctx, testMessage("x@billingd.test"))
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.code || IsTemporary(err) != tc.temporary {
				t.Fatalf("error %#v, want code %d temporary %v", err, tc.code, tc.temporary)
			}
		})
	}
}

// TestSMTPEndsIdleConnections: a kept connection is ended once it has been
// idle for IdleTime, and Close ends the others.
func TestSMTPEndsIdleConnections(t *testing.T) {
	ctx := context.Background()
	b := &backend{}
	s := plainSMTP(t, b)
	s.IdleTime = 50 * time.Millisecond
	if err := s.Send(ctx, testMessage("in_1.invoice@billingd.test")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle connection to end", func() bool { return b.ended() == 1 })

	s.IdleTime = time.Hour
	if err := s.Send(ctx, testMessage("in_2.invoice@billingd.test")); err != nil {
		t.Fatal(err)
	}
	if b.ended() != 1 {
		t.Fatal("a connection kept for an hour ended at once")
	}
	s.Close()
	waitFor(t, "Close to end the kept connection", func() bool { return b.ended() == 2 })
	if n := b.connections(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestSMTPKeepsConnection: messages one after the other share a
// connection; one the server has closed meanwhile is replaced, and every
// message arrives once.
func TestSMTPKeepsConnection(t *testing.T) {
	ctx := context.Background()
	b := &backend{}
	s := plainSMTP(t, b)
	ids := []string{"in_1.invoice@billingd.test", "in_2.invoice@billingd.test", "in_3.invoice@billingd.test"}
	for _, id := range ids[:2] {
		if err := s.Send(ctx, testMessage(id)); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.connections(); n != 1 {
		t.Errorf("two messages took %d connections, want 1", n)
	}
	b.hangUp()
	if err := s.Send(ctx, testMessage(ids[2])); err != nil {
		t.Fatalf("after the server closed the kept connection: %v", err)
	}
	if n := b.connections(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
	got := b.received()
	if len(got) != len(ids) {
		t.Fatalf("received %d messages, want %d", len(got), len(ids))
	}
	for i, id := range ids {
		if !bytes.Contains(got[i].Data, []byte("Message-ID: <"+id+">")) || len(got[i].To) != 1 {
			t.Errorf("message %d is not %s to one recipient:\n%s", i, id, got[i].Data)
		}
	}
}

func TestNewSMTP(t *testing.T) {
	for _, tc := range []struct {
		url         string
		ok          bool
		port        int
		implicitTLS bool
		user, pass  string
	}{
		{"smtp://mail.example.jp", true, 587, false, "", ""},
		{"smtp://u:p%2Fq@mail.example.jp:2525?starttls=required&timeout=5s", true, 2525, false, "u", "p/q"},
		{"smtps://u:p@mail.example.jp", true, 465, true, "u", "p"},
		{"http://mail.example.jp", false, 0, false, "", ""},
		{"smtp://", false, 0, false, "", ""},
		{"smtp://h:0", false, 0, false, "", ""},
		{"smtp://h?starttls=maybe", false, 0, false, "", ""},
		{"smtp://h?timeout=soon", false, 0, false, "", ""},
		{"smtp://h?tls=off", false, 0, false, "", ""},
		{"smtp://u:secret@h:99999", false, 0, false, "", ""},
		{"smtp://u:secret@h%zz", false, 0, false, "", ""},
	} {
		s, err := NewSMTP(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("%s: error %v", tc.url, err)
			continue
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the password: %v", tc.url, err)
		}
		if tc.ok && (s.port != tc.port || s.implicitTLS != tc.implicitTLS || s.user != tc.user || s.pass != tc.pass) {
			t.Errorf("%s: port %d, implicit TLS %v, user %q, password %q", tc.url, s.port, s.implicitTLS, s.user, s.pass)
		}
	}
}

func TestOutbox(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "outbox")
	s, err := NewSender("", dir)
	if err != nil {
		t.Fatal(err)
	}
	m := testMessage("in_1.invoice@billingd.test")
	for range 2 {
		if err := s.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Send(ctx, testMessage("in/1.invoice@billingd.test")); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, testMessage("in_1.invoice@billingd.test.")); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 3 {
		t.Fatalf("outbox holds %q, want 3 files: one per Message-ID", names)
	}
	data, err := os.ReadFile(filepath.Join(dir, "20270101T000000Z-in_1.invoice@billingd.test.eml"))
	if err != nil {
		t.Fatal(err)
	}
	checkMessage(t, m, data)

	bad := testMessage("no id")
	if err := s.Send(ctx, bad); err == nil || IsTemporary(err) {
		t.Fatalf("invalid message: error %v, want a permanent one", err)
	}
}

// TestHeaderInjection checks that names, subjects and addresses with line
// breaks or address syntax cannot add headers or recipients.
func TestHeaderInjection(t *testing.T) {
	m := testMessage("in_1.invoice@billingd.test")
	m.Subject = "ご請求書\r\nBcc: victim@evil.test\r\n\r\nbody"
	m.From.Name = "Sample\nBcc: from@evil.test"
	m.To = []Address{{Name: "Evil <attacker@evil.test>, other@evil.test,\r\nBcc: to@evil.test", Email: "taro@example.com"}}
	m.Attachments[0].Name = "a.pdf\r\nBcc: file@evil.test"
	var b bytes.Buffer
	if _, err := m.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	p := parse(t, b.Bytes())
	want := map[string]bool{"Auto-Submitted": true, "Content-Type": true, "Date": true, "From": true,
		"Message-Id": true, "Mime-Version": true, "Subject": true, "To": true}
	for k := range p.Header {
		if !want[k] {
			t.Errorf("unexpected header %s: %q", k, p.Header[k])
		}
	}
	if p.Subject != "ご請求書  Bcc: victim@evil.test    body" {
		t.Errorf("subject %q", p.Subject)
	}
	to, err := p.Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != "taro@example.com" {
		t.Errorf("To %v (%v), want only taro@example.com", to, err)
	}
	if strings.Contains(b.String(), "\nBcc:") {
		t.Errorf("a Bcc line in the message:\n%s", b.String())
	}

	for _, email := range []string{"taro@example.com\r\nBcc: x@evil.test", "Taro <taro@example.com>", "a@b.c, d@e.f", ""} {
		m := testMessage("in_1.invoice@billingd.test")
		m.To[0].Email = email
		if _, err := m.WriteTo(io.Discard); err == nil || IsTemporary(err) {
			t.Errorf("address %q: error %v, want a permanent one", email, err)
		}
	}
	for _, id := range []string{"a@b>\r\nBcc: x@evil.test", "<a@b>", "a b@c", "../../etc@passwd/x"} {
		m := testMessage(id)
		if _, err := m.WriteTo(io.Discard); err == nil {
			t.Errorf("Message-ID %q accepted", id)
		}
	}
	m = testMessage("in_1.invoice@billingd.test")
	m.Attachments[0].ContentType = "application/pdf\r\nBcc: x@evil.test"
	if _, err := m.WriteTo(io.Discard); err == nil {
		t.Errorf("content type with a line break accepted")
	}

	// go-mail on its own, without our cleaning, also keeps them on one line.
	t.Run("GoMailAlone", func(t *testing.T) {
		msg := gomail.NewMsg()
		msg.Subject("Hello\r\nBcc: victim@evil.test")
		if err := msg.FromFormat("Sample\r\nBcc: from@evil.test", "billing@example.jp"); err == nil {
			t.Error("go-mail: FromFormat accepted a name with a line break")
		}
		msg.FromMailAddress(&netmail.Address{Name: "Sample\r\nBcc: from@evil.test", Address: "billing@example.jp"})
		msg.ToMailAddress(&netmail.Address{Name: "Evil <attacker@evil.test>,\r\nBcc: to@evil.test", Address: "taro@example.com"})
		msg.SetBodyString(gomail.TypeTextPlain, "hi")
		var b bytes.Buffer
		if _, err := msg.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		p := parse(t, b.Bytes())
		if _, ok := p.Header["Bcc"]; ok || p.Subject != "Hello\r\nBcc: victim@evil.test" {
			t.Errorf("go-mail: Bcc %q, subject %q", p.Header["Bcc"], p.Subject)
		}
		if to, err := p.Header.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != "taro@example.com" {
			t.Errorf("go-mail: To %v (%v)", to, err)
		}
	})
}

// BenchmarkSendSMTP measures e-mails per second to a local go-smtp
// listener: connections kept between messages, a 30 KB attachment, all cores.
func BenchmarkSendSMTP(b *testing.B) {
	s := plainSMTP(b, &backend{discard: true})
	subject, text, html, err := Render(KindInvoice, sampleData("ja"))
	if err != nil {
		b.Fatal(err)
	}
	m := testMessage("in_1.invoice@billingd.test")
	m.Subject, m.Text, m.HTML = subject, text, html
	m.Attachments[0].Data = bytes.Repeat([]byte("%PDF"), 30_000/4)
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Send(context.Background(), m); err != nil {
				panic(fmt.Sprint("send: ", err))
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "mails/s")
}
