package sandbox

import (
	"os"
	"path/filepath"
	"testing"
)

// TestJournalRecoversFromFailedWrite: a write to the state file fails
// after leaving a line cut short in it; the next change rewrites the file
// from memory, and it loads with every charge.
func TestJournalRecoversFromFailedWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sandbox.json")
	s, err := New(Config{SecretKey: "skey_test", StatePath: path})
	if err != nil {
		t.Fatal(err)
	}
	add := func(id string) {
		ch := &charge{ID: id}
		s.putCharge(ch)
		s.recordLocked(record{Charge: ch})
	}
	s.mu.Lock()
	add("chrg_test_1")
	if _, err := s.journal.Write([]byte(`{"charge":{"id":"chrg_te`)); err != nil { // the failing write's part
		t.Fatal(err)
	}
	readOnly, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.journal.Close()
	s.journal = readOnly // writes fail from now on
	add("chrg_test_2")
	if !s.broken {
		t.Fatal("a failed write went unnoticed")
	}
	add("chrg_test_3")
	s.mu.Unlock()
	s.Close()

	again, err := New(Config{SecretKey: "skey_test", StatePath: path})
	if err != nil {
		t.Fatalf("loading after a failed write: %v", err)
	}
	defer again.Close()
	if len(again.charges) != 3 {
		t.Errorf("%d charges after restart, want 3", len(again.charges))
	}
}
