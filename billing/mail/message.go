package mail

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	netmail "net/mail"
	"path"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	gomail "github.com/wneessen/go-mail"
)

// Address is a mailbox: an e-mail address and an optional display name,
// which may be Japanese.
type Address struct {
	Name  string
	Email string
}

// Attachment is a file attached to a message, such as the invoice PDF.
type Attachment struct {
	Name        string // file name shown to the recipient, e.g. 請求書_INV-2027-000123.pdf
	ContentType string // e.g. application/pdf; empty: guessed from the name
	Data        []byte
}

// Message is one e-mail to send. ID and Date are chosen by the caller and
// kept with the queued task, so that every attempt to send the message, and
// every copy written to the outbox, is the same message.
type Message struct {
	ID          string // Message-ID without angle brackets: local@domain, e.g. in_123.invoice@billing.example.jp
	Date        time.Time
	From        Address
	To          []Address
	Subject     string
	Text        string // plain-text body
	HTML        string // HTML body, sent as the alternative to Text; optional
	Attachments []Attachment
}

// messageID is what billingd accepts as a Message-ID: a dot-atom local part
// and a domain, so that it can be neither a header trick nor a path trick.
var messageID = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+/=?^_{|}~.-]+@[A-Za-z0-9.-]+$`)

// build turns m into a go-mail message, after checking the fields that go
// into headers. Names and the subject are cleaned of control characters;
// addresses must be bare addresses.
func (m *Message) build() (*gomail.Msg, error) {
	if !messageID.MatchString(m.ID) {
		return nil, invalid("message ID %q is not local@domain", m.ID)
	}
	if m.Date.IsZero() {
		return nil, invalid("message %s has no date", m.ID)
	}
	if len(m.To) == 0 {
		return nil, invalid("message %s has no recipient", m.ID)
	}
	enc := gomail.EncodingQP
	if !isASCII(m.Text) || !isASCII(m.HTML) {
		enc = gomail.EncodingB64 // a third the size of quoted-printable for Japanese
	}
	msg := gomail.NewMsg(gomail.WithEncoding(enc), gomail.WithCharset(gomail.CharsetUTF8), gomail.WithNoDefaultUserAgent())
	from, err := address(m.From)
	if err != nil {
		return nil, err
	}
	msg.FromMailAddress(from)
	to := make([]*netmail.Address, len(m.To))
	for i, a := range m.To {
		if to[i], err = address(a); err != nil {
			return nil, err
		}
	}
	msg.ToMailAddress(to...)
	msg.SetMessageIDWithValue(m.ID)
	msg.SetDateWithValue(m.Date)
	msg.Subject(clean(m.Subject))
	msg.SetGenHeader("Auto-Submitted", "auto-generated") // RFC 3834: no auto-replies
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	for _, a := range m.Attachments {
		ct := "application/octet-stream"
		if a.ContentType != "" {
			mt, params, err := mime.ParseMediaType(a.ContentType)
			if err != nil {
				return nil, invalid("attachment %q: content type %q: %v", a.Name, a.ContentType, err)
			}
			ct = mime.FormatMediaType(mt, params) // re-formatted: no header tricks
		} else if t := mime.TypeByExtension(path.Ext(a.Name)); t != "" {
			ct = t
		}
		name := clean(a.Name)
		if name == "" {
			return nil, invalid("attachment with no name")
		}
		if err := msg.AttachReader(name, bytes.NewReader(a.Data), gomail.WithFileContentType(gomail.ContentType(ct))); err != nil {
			return nil, err
		}
	}
	return msg, nil
}

// WriteTo writes m in Internet message format (RFC 5322, MIME), as it is
// sent and as it is stored in the outbox. It implements io.WriterTo.
func (m *Message) WriteTo(w io.Writer) (int64, error) {
	msg, err := m.build()
	if err != nil {
		return 0, err
	}
	return msg.WriteTo(w)
}

// address checks a and returns it as a net/mail address, whose String form
// quotes or MIME-encodes the name.
func address(a Address) (*netmail.Address, error) {
	p, err := netmail.ParseAddress(a.Email)
	if err != nil || p.Name != "" || p.Address != a.Email {
		return nil, invalid("e-mail address %q is not a bare address", a.Email)
	}
	return &netmail.Address{Name: clean(a.Name), Address: a.Email}, nil
}

// clean replaces control characters (CR, LF, tab, …) and invalid UTF-8 by
// spaces, so a header value stays on its line whatever the encoder does.
func clean(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// invalid returns the error for a message that can never be sent: a
// permanent one.
func invalid(format string, args ...any) error {
	return &Error{Err: fmt.Errorf("mail: "+format, args...)}
}
