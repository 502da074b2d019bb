package mail

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// Sender delivers messages. Send may be called from several goroutines.
type Sender interface {
	Send(ctx context.Context, m *Message) error
}

// Error is a failed delivery. Temporary errors (no connection, timeouts,
// 4xx replies) are worth retrying with backoff; permanent ones (5xx replies,
// a message that is not valid) are not.
type Error struct {
	Code      int  // the SMTP reply code, 0 if the server gave none
	Temporary bool // retrying later may succeed
	Err       error
}

// Error implements error.
func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// IsTemporary reports whether err, returned by a Sender, is worth retrying.
// Errors that are not an *Error are taken as temporary: a queue worker
// should only give up on a message it knows cannot be sent.
func IsTemporary(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Temporary
	}
	return err != nil
}

// NewSender returns an SMTP sender for smtpURL or, when it is empty, an
// Outbox writing into outboxDir, which it creates.
func NewSender(smtpURL, outboxDir string) (Sender, error) {
	if smtpURL != "" {
		return NewSMTP(smtpURL)
	}
	if outboxDir == "" {
		return nil, errors.New("mail: neither an SMTP URL nor an outbox folder is set")
	}
	if err := os.MkdirAll(outboxDir, 0o750); err != nil {
		return nil, fmt.Errorf("mail: outbox: %w", err)
	}
	return &Outbox{Dir: outboxDir}, nil
}

// SMTP sends messages to an SMTP server (a relay or a provider's submission
// service). A connection that delivered a message is kept for the next one
// for a few seconds (at most maxIdle of them), as mail clients do; Close
// ends them.
type SMTP struct {
	// TLSConfig is used for STARTTLS and implicit TLS; nil means the system's
	// roots and the URL's host name. Set it before the first Send.
	TLSConfig *tls.Config
	// IdleTime is how long a connection is kept for the next message
	// (default 5 s, well within servers' idle timeouts: RFC 5321 says 5
	// minutes). Set it before the first Send.
	IdleTime time.Duration

	host, user, pass string
	port             int
	implicitTLS      bool
	policy           gomail.TLSPolicy
	timeout          time.Duration
	helo             string

	mu      sync.Mutex
	idle    []*conn     // most recently used last
	reaper  *time.Timer // ends idle connections past IdleTime
	closing sync.WaitGroup
}

// conn is a connection to the server and the go-mail client that dialed
// it (AUTH keeps state per connection).
type conn struct {
	client *gomail.Client
	smtp   *smtp.Client
	since  time.Time // idle since
}

const (
	maxIdle     = 4               // connections kept between messages
	quitTimeout = 2 * time.Second // for the QUIT of a connection being ended
)

// NewSMTP returns a sender for an SMTP URL:
//
//	smtp://[user:password@]host[:port][?starttls=auto|required][&timeout=30s]
//	smtps://[user:password@]host[:port][?timeout=30s]
//
// smtp:// connects in plain text on port 587 by default and upgrades with
// STARTTLS when the server offers it; starttls=required refuses to send
// without it. smtps:// uses implicit TLS, on port 465 by default. With a user
// (percent-encoded in the URL), it authenticates with PLAIN, or LOGIN if the
// server does not offer PLAIN, and only over TLS (or to localhost). timeout
// bounds setting up the connection (TCP, TLS, AUTH) and, again, delivering
// the message (default 30s).
func NewSMTP(rawURL string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL and its password
		}
		return nil, fmt.Errorf("mail: SMTP URL: %w", err)
	}
	s := &SMTP{host: u.Hostname(), policy: gomail.TLSOpportunistic, timeout: 30 * time.Second}
	switch u.Scheme {
	case "smtp":
		s.port = 587
	case "smtps":
		s.port, s.implicitTLS = 465, true
	default:
		return nil, fmt.Errorf("mail: SMTP URL: scheme %q is not smtp or smtps", u.Scheme)
	}
	if s.host == "" {
		return nil, errors.New("mail: SMTP URL has no host")
	}
	if p := u.Port(); p != "" {
		if s.port, err = strconv.Atoi(p); err != nil || s.port <= 0 || s.port > 65535 {
			return nil, fmt.Errorf("mail: SMTP URL: bad port %q", p)
		}
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
	}
	q := u.Query()
	for k := range q {
		if k != "starttls" && k != "timeout" {
			return nil, fmt.Errorf("mail: SMTP URL: unknown option %q", k)
		}
	}
	switch q.Get("starttls") {
	case "", "auto":
	case "required":
		s.policy = gomail.TLSMandatory
	default:
		return nil, fmt.Errorf("mail: SMTP URL: starttls=%q is not auto or required", q.Get("starttls"))
	}
	if t := q.Get("timeout"); t != "" {
		if s.timeout, err = time.ParseDuration(t); err != nil || s.timeout <= 0 {
			return nil, fmt.Errorf("mail: SMTP URL: bad timeout %q", t)
		}
	}
	if s.helo, err = os.Hostname(); err != nil {
		s.helo = "localhost"
	}
	return s, nil
}

// Send delivers m. The context can cancel connecting; after that the URL's
// timeout bounds the exchange. A message the server accepted counts as
// sent even if the exchange fails afterwards. A kept connection that turns
// out to be closed before the message went (the server's idle timeout) is
// replaced by a new one.
func (s *SMTP) Send(ctx context.Context, m *Message) error {
	msg, err := m.build()
	if err != nil {
		return err
	}
	for {
		c := s.take()
		kept := c != nil
		if !kept {
			if c, err = s.dial(ctx); err != nil {
				return classify(fmt.Errorf("mail: connecting to %s:%d: %w", s.host, s.port, err))
			}
		}
		err = c.client.SendWithSMTPClient(c.smtp, msg)
		if err == nil {
			s.keep(c)
			return nil
		}
		s.end(c)
		if msg.IsDelivered() {
			return nil
		}
		var se *gomail.SendError
		if kept && errors.As(err, &se) && (se.Reason == gomail.ErrConnCheck || se.Reason == gomail.ErrSMTPMailFrom) {
			s.endIdle(0) // the others have waited as long
			continue
		}
		return classify(fmt.Errorf("mail: sending %s to %s:%d: %w", m.ID, s.host, s.port, err))
	}
}

// dial opens a connection: TCP, TLS, EHLO, AUTH.
func (s *SMTP) dial(ctx context.Context) (*conn, error) {
	tc := &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
	if s.TLSConfig != nil {
		tc = s.TLSConfig.Clone()
		if tc.ServerName == "" {
			tc.ServerName = s.host
		}
	}
	opts := []gomail.Option{
		gomail.WithPort(s.port), gomail.WithTimeout(s.timeout), gomail.WithTLSConfig(tc),
		gomail.WithHELO(s.helo), gomail.WithoutNoop(), gomail.WithoutRset(),
	}
	if s.implicitTLS {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(s.policy))
	}
	if s.user != "" {
		opts = append(opts, gomail.WithSMTPAuthCustom(&plainOrLogin{user: s.user, pass: s.pass, host: s.host}))
	}
	client, err := gomail.NewClient(s.host, opts...)
	if err != nil {
		return nil, err
	}
	sc, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return nil, err
	}
	return &conn{client: client, smtp: sc}, nil
}

// take returns the connection used last, if it has not waited too long.
func (s *SMTP) take() *conn {
	s.endIdle(s.idleTime())
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.idle)
	if n == 0 {
		return nil
	}
	c := s.idle[n-1]
	s.idle = s.idle[:n-1]
	return c
}

// keep puts c back for the next message, or ends it if enough are kept.
func (s *SMTP) keep(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.idle) == maxIdle {
		s.end(c)
		return
	}
	c.since = time.Now()
	s.idle = append(s.idle, c)
	if s.reaper == nil {
		s.reaper = time.AfterFunc(s.idleTime(), s.reap)
	}
}

// reap ends the connections idle for IdleTime, and comes back for the
// others.
func (s *SMTP) reap() {
	s.endIdle(s.idleTime())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reaper = nil
	if len(s.idle) > 0 {
		s.reaper = time.AfterFunc(s.idleTime()-time.Since(s.idle[0].since), s.reap)
	}
}

func (s *SMTP) idleTime() time.Duration {
	if s.IdleTime > 0 {
		return s.IdleTime
	}
	return 5 * time.Second
}

// endIdle ends the connections idle for at least d.
func (s *SMTP) endIdle(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.idle[:0]
	for _, c := range s.idle {
		if time.Since(c.since) >= d {
			s.end(c)
		} else {
			kept = append(kept, c)
		}
	}
	clear(s.idle[len(kept):])
	s.idle = kept
}

// end ends c in the background: QUIT, briefly, then the socket is closed
// whatever QUIT did (a dropped connection refuses it).
func (s *SMTP) end(c *conn) {
	s.closing.Add(1)
	go func() {
		defer s.closing.Done()
		_ = c.smtp.UpdateDeadline(quitTimeout)
		_ = c.smtp.Quit()
		_ = c.smtp.Close()
	}()
}

// Close ends the connections kept between messages and waits until they
// are closed. Send may still be called afterwards.
func (s *SMTP) Close() error {
	s.endIdle(0)
	s.closing.Wait()
	return nil
}

// classify wraps err in an *Error: permanent for 5xx replies and messages
// go-mail cannot send, temporary for everything else (4xx replies, refused
// or broken connections, timeouts, TLS trouble).
func classify(err error) *Error {
	var se *gomail.SendError
	var te *textproto.Error
	switch {
	case errors.As(err, &se):
		code := se.ErrorCode()
		if code == 0 {
			bad := se.Reason == gomail.ErrGetSender || se.Reason == gomail.ErrGetRcpts || se.Reason == gomail.ErrNoUnencoded
			return &Error{Temporary: !bad, Err: err}
		}
		return &Error{Code: code, Temporary: code < 500, Err: err}
	case errors.As(err, &te):
		return &Error{Code: te.Code, Temporary: te.Code < 500, Err: err}
	}
	return &Error{Temporary: true, Err: err}
}

// plainOrLogin authenticates with PLAIN, or LOGIN when the server offers
// only that. Both refuse to send the password without TLS unless the server
// is localhost. A new one is made for each connection.
type plainOrLogin struct {
	user, pass, host string
	smtp.Auth
}

// Start picks the mechanism from those the server offers.
func (a *plainOrLogin) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !slices.Contains(server.Auth, "PLAIN") && slices.Contains(server.Auth, "LOGIN") {
		a.Auth = smtp.LoginAuth(a.user, a.pass, a.host, false)
	} else {
		a.Auth = smtp.PlainAuth("", a.user, a.pass, a.host, false)
	}
	return a.Auth.Start(server)
}

// Outbox writes each message as an .eml file into Dir instead of sending
// it: the delivery of a development setup, or of one without SMTP. The file
// is <Date in UTC>-<Message-ID>.eml, written atomically, so writing a
// message again replaces its file instead of adding one.
type Outbox struct {
	Dir string
}

// Send writes m into the outbox.
func (o *Outbox) Send(ctx context.Context, m *Message) error {
	if err := ctx.Err(); err != nil {
		return &Error{Temporary: true, Err: err}
	}
	f, err := os.CreateTemp(o.Dir, ".tmp-*.partial") // not *.eml: readers glob for finished files
	if err != nil {
		return &Error{Temporary: true, Err: fmt.Errorf("mail: outbox: %w", err)}
	}
	defer os.Remove(f.Name()) // fails harmlessly once renamed
	if _, err := m.WriteTo(f); err != nil {
		f.Close()
		var e *Error
		if errors.As(err, &e) {
			return err
		}
		return &Error{Temporary: true, Err: fmt.Errorf("mail: outbox: %w", err)}
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(o.Dir, outboxName(m)))
	}
	if err == nil {
		err = syncDir(o.Dir)
	}
	if err != nil {
		return &Error{Temporary: true, Err: fmt.Errorf("mail: outbox: %w", err)}
	}
	return nil
}

// outboxName is the name of m's file in an outbox: the Date in UTC and the
// Message-ID, with any character that is not safe in a file name replaced
// and, then, a hash of the ID added so that distinct IDs keep distinct names.
func outboxName(m *Message) string {
	safe := []byte(m.ID)
	changed := len(safe) > 100
	if changed {
		safe = safe[:100]
	}
	for i, c := range safe {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '@') {
			safe[i], changed = '_', true
		}
	}
	name := m.Date.UTC().Format("20060102T150405Z") + "-" + string(safe)
	if changed {
		sum := sha256.Sum256([]byte(m.ID))
		name += "-" + hex.EncodeToString(sum[:4])
	}
	return name + ".eml"
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
