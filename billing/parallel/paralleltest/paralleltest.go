// Package paralleltest checks, in tests, that work meant to run at once
// does: so many calls at the same time, never two of one key.
package paralleltest

import (
	"sync"
	"testing"
	"time"
)

// Watch watches calls that should run n at a time.
type Watch struct {
	t       testing.TB
	n       int
	mu      sync.Mutex
	started int
	all     chan struct{}
	running map[string]bool
}

// New returns a Watch for n calls at once.
func New(t testing.TB, n int) *Watch {
	return &Watch{t: t, n: n, all: make(chan struct{}), running: map[string]bool{}}
}

// Enter starts a call for key. It fails the test if a call for key is
// running, and waits until n calls have started (at most 10 s, then fails
// the test): a caller that runs calls one at a time never gets past it.
func (w *Watch) Enter(key string) {
	w.mu.Lock()
	if w.running[key] {
		w.t.Errorf("two calls for %s at once", key)
	}
	w.running[key] = true
	if w.started++; w.started == w.n {
		close(w.all)
	}
	w.mu.Unlock()
	select {
	case <-w.all:
	case <-time.After(10 * time.Second):
		w.t.Errorf("%d calls never ran at once", w.n)
	}
}

// Leave ends the call for key.
func (w *Watch) Leave(key string) {
	w.mu.Lock()
	w.running[key] = false
	w.mu.Unlock()
}
