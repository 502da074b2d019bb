package admin

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// Session limits.
const (
	// DefaultSessionTTL is how long a login lasts when Server.SessionTTL is zero.
	DefaultSessionTTL = 12 * time.Hour
	// maxSessions bounds the map; the oldest session is dropped beyond it.
	maxSessions = 10_000
	// loginFailures failed logins from one address within loginWindow
	// refuse further attempts from it until the window has passed.
	loginFailures = 10
	loginWindow   = 10 * time.Minute
)

// session is one logged-in browser.
type session struct {
	id      string
	csrf    string
	expires time.Time
	flash   *flash // shown once, on the next page
}

// flash is a message for the next page: Key is a catalog key, Detail an
// untranslated addition (an error message from a service, an id).
type flash struct {
	Kind   string // ok or error
	Key    string
	Detail string
}

// sessions is the in-memory session store, with the failed-login counters.
type sessions struct {
	mu    sync.Mutex
	m     map[string]*session
	fails map[string]*failures
	ttl   time.Duration
	now   func() time.Time // the wall clock; replaced in tests
}

// failures counts failed logins from one address since start.
type failures struct {
	n     int
	start time.Time
}

func newSessions(ttl time.Duration) *sessions {
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	return &sessions{m: map[string]*session{}, fails: map[string]*failures{}, ttl: ttl, now: time.Now}
}

// token returns 256 random bits, URL-safe.
func token() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session, dropping expired ones (and the oldest one if the
// map is full).
func (s *sessions) create() *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var oldest *session
	for id, x := range s.m {
		if now.After(x.expires) {
			delete(s.m, id)
		} else if oldest == nil || x.expires.Before(oldest.expires) {
			oldest = x
		}
	}
	if len(s.m) >= maxSessions && oldest != nil {
		delete(s.m, oldest.id)
	}
	x := &session{id: token(), csrf: token(), expires: now.Add(s.ttl)}
	s.m[x.id] = x
	return x
}

// get returns the live session with the given id, or nil.
func (s *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.m[id]
	if x == nil {
		return nil
	}
	if s.now().After(x.expires) {
		delete(s.m, id)
		return nil
	}
	return x
}

// end removes a session.
func (s *sessions) end(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

// setFlash keeps a message for the session's next page.
func (s *sessions) setFlash(x *session, f *flash) {
	s.mu.Lock()
	x.flash = f
	s.mu.Unlock()
}

// takeFlash returns and clears the session's message.
func (s *sessions) takeFlash(x *session) *flash {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := x.flash
	x.flash = nil
	return f
}

// throttled reports whether logins from addr are refused for now.
func (s *sessions) throttled(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fails[addr]
	if f == nil {
		return false
	}
	if s.now().Sub(f.start) > loginWindow {
		delete(s.fails, addr)
		return false
	}
	return f.n >= loginFailures
}

// failed counts a failed login from addr.
func (s *sessions) failed(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.fails) > maxSessions { // an address sweep: forget old windows
		for a, f := range s.fails {
			if now.Sub(f.start) > loginWindow {
				delete(s.fails, a)
			}
		}
	}
	f := s.fails[addr]
	if f == nil || now.Sub(f.start) > loginWindow {
		f = &failures{start: now}
		s.fails[addr] = f
	}
	f.n++
}

// succeeded clears the failures of addr.
func (s *sessions) succeeded(addr string) {
	s.mu.Lock()
	delete(s.fails, addr)
	s.mu.Unlock()
}

// equal compares two secrets in constant time.
func equal(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
