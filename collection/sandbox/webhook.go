package sandbox

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"billingd/billing"
)

// event is Opn's webhook event.
type event struct {
	Object    string    `json:"object"`
	ID        string    `json:"id"`
	Livemode  bool      `json:"livemode"`
	Location  string    `json:"location"`
	Key       string    `json:"key"`
	CreatedAt time.Time `json:"created_at"`
	Data      *charge   `json:"data"`
}

// enqueueLocked queues event key about ch, due at now, and marks it busy for
// the caller to deliver. It returns nil when no WebhookURL is set.
func (s *Server) enqueueLocked(key string, ch *charge, now time.Time) *delivery {
	if s.cfg.WebhookURL == "" {
		return nil
	}
	id := billing.NewID("evnt_test_")
	body, _ := json.Marshal(event{Object: "event", ID: id, Location: "/events/" + id, Key: key, CreatedAt: now, Data: ch})
	d := &delivery{EventID: id, Body: body, NextAt: now, busy: true}
	s.queue = append(s.queue, d)
	return d
}

// deliver POSTs d once, signed when a secret is set, and then drops it or
// schedules a retry counted from now.
func (s *Server) deliver(ctx context.Context, d *delivery, now time.Time) {
	err := s.post(ctx, d.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	d.busy = false
	if err != nil {
		d.Attempts++
		d.LastError = err.Error()
		d.NextAt = now.Add(min(time.Minute<<(d.Attempts-1), maxRetryWait))
		s.cfg.Logger.Warn("sandbox: webhook delivery failed", "event", d.EventID, "attempts", d.Attempts, "err", err)
	}
	if err == nil || d.Attempts >= maxAttempts {
		s.queue = slices.DeleteFunc(s.queue, func(x *delivery) bool { return x == d })
		s.recordLocked(record{Delivered: d.EventID})
	} else {
		s.recordLocked(record{Delivery: d})
	}
}

func (s *Server) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.key != nil {
		// Signed with the time of sending, which the receiver checks against
		// its own clock, even when the event itself is older.
		ts := strconv.FormatInt(s.cfg.Clock.Now().Unix(), 10)
		m := hmac.New(sha256.New, s.key)
		m.Write([]byte(ts + "."))
		m.Write(body)
		req.Header.Set("Omise-Signature-Timestamp", ts)
		req.Header.Set("Omise-Signature", hex.EncodeToString(m.Sum(nil)))
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook endpoint answered %s", resp.Status)
	}
	return nil
}

// Tick does the work due at now: it expires pending charges whose
// expires_at has passed (status expired, failure_code timeout, a
// charge.complete event), then delivers the due events one by one, each
// bounded by WebhookTimeout. Failed deliveries are retried on a later Tick.
// It returns ctx's error if ctx ends.
func (s *Server) Tick(ctx context.Context, now time.Time) error {
	now = now.UTC().Truncate(time.Second)
	s.mu.Lock()
	for _, ch := range s.charges {
		if ch.Status == "pending" && !ch.ExpiresAt.After(now) {
			ch.complete("expired", "timeout", now)
			d := s.enqueueLocked("charge.complete", ch, now)
			if d != nil {
				d.busy = false // delivered below with the other due events
			}
			s.recordLocked(record{Charge: ch, Delivery: d})
		}
	}
	var due []*delivery
	for _, d := range s.queue {
		if !d.busy && !d.NextAt.After(now) {
			d.busy = true
			due = append(due, d)
		}
	}
	s.mu.Unlock()
	for _, d := range due {
		s.deliver(ctx, d, now)
	}
	return ctx.Err()
}

// NextDue returns the earliest instant at which Tick has work: a pending
// charge's expires_at or a delivery's next attempt. It returns false when
// there is none.
func (s *Server) NextDue() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next time.Time
	for _, ch := range s.charges {
		if ch.Status == "pending" && (next.IsZero() || ch.ExpiresAt.Before(next)) {
			next = ch.ExpiresAt
		}
	}
	for _, d := range s.queue {
		if !d.busy && (next.IsZero() || d.NextAt.Before(next)) {
			next = d.NextAt
		}
	}
	return next, !next.IsZero()
}
