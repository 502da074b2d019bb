package sandbox

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
)

// The state file is a journal: one JSON line per change (a charge as it
// now is, a delivery as it now is, or a delivery dropped), appended as the
// change happens, so that a change costs its own size and not the whole
// state's. It is rewritten as one line per charge and delivery when it is
// opened and when it has grown to several times that.

// record is one line of the state file.
type record struct {
	Charge    *charge   `json:"charge,omitempty"`
	Delivery  *delivery `json:"delivery,omitempty"`
	Delivered string    `json:"delivered,omitempty"` // the event id of a delivery dropped

	// The whole state at once: how the file was written before it was a
	// journal.
	Charges    []*charge   `json:"charges,omitempty"`
	Deliveries []*delivery `json:"deliveries,omitempty"`
}

// load replays the state file, if there is one, and opens it for appending
// as a compacted journal. A last line cut short (a crash while writing it)
// is dropped.
func (s *Server) load(path string) error {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var r record
		if err := dec.Decode(&r); err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		} else if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		s.apply(r)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.compactLocked()
}

// apply replays one record into the state.
func (s *Server) apply(r record) {
	for _, ch := range r.Charges {
		s.putCharge(ch)
	}
	s.queue = append(s.queue, r.Deliveries...)
	if r.Charge != nil {
		s.putCharge(r.Charge)
	}
	if d := r.Delivery; d != nil {
		if i := slices.IndexFunc(s.queue, func(x *delivery) bool { return x.EventID == d.EventID }); i >= 0 {
			s.queue[i] = d
		} else {
			s.queue = append(s.queue, d)
		}
	}
	if r.Delivered != "" {
		s.queue = slices.DeleteFunc(s.queue, func(x *delivery) bool { return x.EventID == r.Delivered })
	}
}

func (s *Server) putCharge(ch *charge) {
	if old := s.byID[ch.ID]; old != nil {
		*old = *ch
		return
	}
	s.charges = append(s.charges, ch)
	s.byID[ch.ID] = ch
}

// recordLocked appends records to the state file, if any, and compacts it
// when it has grown to four times the state. A failed write is logged, and
// the next change rewrites the whole file from the state in memory, which
// stays authoritative (a line cut short mid-file would not load).
func (s *Server) recordLocked(rs ...record) {
	if s.journal == nil {
		return
	}
	if s.broken {
		if err := s.compactLocked(); err != nil {
			s.cfg.Logger.Error("sandbox: saving state", "path", s.cfg.StatePath, "err", err)
		}
		return
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			s.cfg.Logger.Error("sandbox: encoding state", "err", err)
			return
		}
	}
	if _, err := s.journal.Write(buf.Bytes()); err != nil {
		s.cfg.Logger.Error("sandbox: saving state", "path", s.cfg.StatePath, "err", err)
		s.broken = true
		return
	}
	if s.lines += len(rs); s.lines > 4*(len(s.charges)+len(s.queue))+100 {
		if err := s.compactLocked(); err != nil {
			s.cfg.Logger.Error("sandbox: compacting state", "path", s.cfg.StatePath, "err", err)
		}
	}
}

// compactLocked rewrites the state file as one line per charge and
// delivery (atomically) and reopens it for appending. Until it succeeds,
// every change tries again.
func (s *Server) compactLocked() error {
	s.broken = true
	path := s.cfg.StatePath
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, ch := range s.charges {
		err = errors.Join(err, enc.Encode(record{Charge: ch}))
	}
	for _, d := range s.queue {
		err = errors.Join(err, enc.Encode(record{Delivery: d}))
	}
	if err = errors.Join(err, w.Flush(), f.Close()); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	j, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if s.journal != nil {
		s.journal.Close()
	}
	s.journal, s.lines, s.broken = j, len(s.charges)+len(s.queue), false
	return nil
}
