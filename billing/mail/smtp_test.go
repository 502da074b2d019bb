package mail

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// received is one message a test server accepted.
type received struct {
	From   string
	To     []string
	Data   []byte
	TLS    bool
	Authed string // the user who authenticated, if any
}

// backend is a go-smtp backend that keeps what it receives. With user set
// it requires AUTH PLAIN (which go-smtp offers only over TLS); with reject
// set it answers RCPT TO with that error.
type backend struct {
	user, pass string
	reject     *smtp.SMTPError
	discard    bool

	mu      sync.Mutex
	msgs    []received
	conns   []*smtp.Conn // one per connection
	logouts int          // connections ended
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.mu.Lock()
	b.conns = append(b.conns, c)
	b.mu.Unlock()
	return &session{b: b, c: c}, nil
}

// connections returns how many connections the server has had.
func (b *backend) connections() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// hangUp closes every connection from the server's side, as a server does
// with connections idle past its timeout.
func (b *backend) hangUp() {
	b.mu.Lock()
	conns := slices.Clone(b.conns)
	b.mu.Unlock()
	for _, c := range conns {
		c.Close() // calls Logout, which locks b.mu
	}
}

func (b *backend) received() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.msgs...)
}

type session struct {
	b *backend
	c *smtp.Conn
	r received
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if s.b.user == "" || user != s.b.user || pass != s.b.pass {
			return smtp.ErrAuthFailed
		}
		s.r.Authed = user
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.b.user != "" && s.r.Authed == "" {
		return smtp.ErrAuthRequired
	}
	s.r.From = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.b.reject != nil {
		return s.b.reject
	}
	s.r.To = append(s.r.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	if s.b.discard {
		_, err := io.Copy(io.Discard, r)
		return err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, s.r.TLS = s.c.TLSConnectionState()
	s.r.Data = data
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, s.r)
	s.b.mu.Unlock()
	return nil
}

func (s *session) Reset() { s.r = received{Authed: s.r.Authed} }
func (s *session) Logout() error {
	s.b.mu.Lock()
	s.b.logouts++
	s.b.mu.Unlock()
	return nil
}

// ended returns how many connections have ended.
func (b *backend) ended() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.logouts
}

// serve starts a go-smtp server for b on 127.0.0.1:0 and returns its
// address; the test's cleanup stops it. With cert, it offers STARTTLS or,
// if implicit, speaks TLS from the start.
func serve(t testing.TB, b *backend, cert *tls.Certificate, implicit bool) (addr string, stop func()) {
	t.Helper()
	srv := smtp.NewServer(b)
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if implicit {
		l = tls.NewListener(l, srv.TLSConfig)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("smtp server: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { l.Close(); srv.Close(); <-done }) } // l too: Serve may not have registered it yet
	t.Cleanup(stop)
	return l.Addr().String(), stop
}

// selfSigned returns a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t testing.TB) (*tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "billingd test SMTP"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
