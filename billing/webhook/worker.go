package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/store"
)

// lease is how long a claimed delivery is hidden from other workers (a
// crashed daemon's deliveries are retried after it).
const lease = 5 * time.Minute

// Backoff returns the wait before the next attempt of a delivery whose
// retry window started elapsed ago: as long again, at least a minute and at
// most twelve hours. Attempts come 1, 2, 4, 8 … minutes after the first,
// then every twelve hours; about 17 in three days.
func Backoff(elapsed time.Duration) time.Duration {
	return min(max(elapsed, time.Minute), 12*time.Hour)
}

func newClient(timeout time.Duration, conns int, allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		dialer.Control = refusePrivate
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy: nil, DialContext: dialer.DialContext, TLSHandshakeTimeout: timeout,
			MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute, ForceAttemptHTTP2: true,
		},
		// A redirect is an answer, not a success: the endpoint's URL is wrong.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Run delivers the deliveries due at now, at most Concurrency at a time,
// outside any transaction. It returns once nothing more is due or after
// Wait; deliveries still in flight then finish in the background (Close
// waits for them).
func (s *Service) Run(ctx context.Context, now time.Time) error {
	s.init()
	deadline := time.Now().Add(s.Wait)
	for {
		s.mu.Lock()
		free, closed := s.Concurrency-len(s.inflight), s.closed
		s.mu.Unlock()
		if free <= 0 || closed {
			return nil
		}
		// Leases and signatures take the clock's instant, not the job's: a
		// round that ran long would start the lease already expired and sign
		// with a timestamp receivers refuse as too old. (What is due, and
		// the attempts' times, stay the job's.)
		at := billing.NotBefore(s.Clock, now)
		jobs, err := s.claim(ctx, now, at, free)
		if err != nil || len(jobs) == 0 {
			return err
		}
		var batch sync.WaitGroup
		for _, j := range jobs {
			batch.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer batch.Done()
				s.deliver(context.WithoutCancel(ctx), j, now, at)
			}()
		}
		done := make(chan struct{})
		go func() { batch.Wait(); close(done) }()
		select {
		case <-done: // claim again: the next events of the same objects are due now
		case <-time.After(time.Until(deadline)):
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// Close stops new deliveries and waits for those in flight.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
}

// job is a claimed delivery with what it needs.
type job struct {
	d  *Delivery
	ev *billing.Event
	ep *Endpoint
}

// claim leases up to limit due deliveries of enabled endpoints, none behind
// a pending delivery of an earlier event about the same object to the same
// endpoint, and marks them in flight.
func (s *Service) claim(ctx context.Context, now, leaseFrom time.Time, limit int) ([]job, error) {
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	s.mu.Lock()
	skip := make([]string, 0, len(s.inflight))
	for id := range s.inflight {
		skip = append(skip, id)
	}
	s.mu.Unlock()
	now = now.UTC()
	var jobs []job
	err := s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var ds []*Delivery
		q := tx.NewSelect().Model(&ds).
			Join("JOIN webhook_endpoints AS e ON e.id = d.endpoint_id").
			Where("d.status = ?", StatusPending).Where("d.next_attempt_at <= ?", now).Where("e.disabled_at IS NULL").
			Where(`NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = d.endpoint_id
				AND p.object_id = d.object_id AND p.status = ? AND p.id < d.id)`, StatusPending).
			OrderExpr("d.next_attempt_at, d.id").Limit(int64(limit))
		if len(skip) > 0 {
			q = q.Where("d.id NOT IN (?)", bun.In(skip))
		}
		if s.DB.Engine == store.Postgres {
			q = q.For("UPDATE OF d SKIP LOCKED")
		}
		if err := q.Scan(ctx); err != nil || len(ds) == 0 {
			return err
		}
		ids, evIDs, epIDs := make([]string, len(ds)), make([]string, len(ds)), make([]string, len(ds))
		for i, d := range ds {
			ids[i], evIDs[i], epIDs[i] = d.ID, d.EventID, d.EndpointID
		}
		if _, err := tx.NewUpdate().Model((*Delivery)(nil)).Set("next_attempt_at = ?", leaseFrom.UTC().Add(lease)).
			Where("id IN (?)", bun.In(ids)).Exec(ctx); err != nil {
			return err
		}
		var evs []*billing.Event
		if err := tx.NewSelect().Model(&evs).Where("id IN (?)", bun.In(evIDs)).Scan(ctx); err != nil {
			return err
		}
		var eps []*Endpoint
		if err := tx.NewSelect().Model(&eps).Where("id IN (?)", bun.In(epIDs)).Scan(ctx); err != nil {
			return err
		}
		evByID, epByID := map[string]*billing.Event{}, map[string]*Endpoint{}
		for _, ev := range evs {
			evByID[ev.ID] = ev
		}
		for _, ep := range eps {
			epByID[ep.ID] = ep
		}
		jobs = jobs[:0]
		for _, d := range ds {
			jobs = append(jobs, job{d: d, ev: evByID[d.EventID], ep: epByID[d.EndpointID]})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	for _, j := range jobs {
		s.inflight[j.d.ID] = true
	}
	s.mu.Unlock()
	return jobs, nil
}

// payload is the JSON body of a delivery.
type payload struct {
	ID      string    `json:"id"`
	Object  string    `json:"object"`
	Type    string    `json:"type"`
	Created time.Time `json:"created"`
	Data    struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
}

// Payload returns the request body that delivers ev.
func Payload(ev *billing.Event) ([]byte, error) {
	p := payload{ID: ev.ID, Object: "event", Type: ev.Type, Created: ev.CreatedAt.UTC()}
	p.Data.Object = ev.Data
	return json.Marshal(p)
}

// deliver makes one attempt of j at now, signed at signAt, and records it.
func (s *Service) deliver(ctx context.Context, j job, now, signAt time.Time) {
	defer func() {
		s.mu.Lock()
		delete(s.inflight, j.d.ID)
		s.mu.Unlock()
	}()
	start := time.Now()
	code, err := s.post(ctx, j, signAt)
	a := &Attempt{ID: billing.NewID(PrefixAttempt), DeliveryID: j.d.ID, AttemptedAt: now.UTC(), DurationMS: time.Since(start).Milliseconds()}
	if code != 0 {
		a.ResponseCode = &code
	}
	if err != nil {
		a.Error = err.Error()
	}
	rctx, cancel := context.WithTimeout(ctx, store.QueryTimeout)
	defer cancel()
	if rerr := s.record(rctx, j, a, err == nil, now.UTC()); rerr != nil {
		s.Logger.Error("webhook: recording a delivery attempt", "delivery", j.d.ID, "err", rerr)
	}
}

// post sends j's event to its endpoint, signed at now, and returns the
// status code (0 if no response came) and an error unless the answer was
// 2xx.
func (s *Service) post(ctx context.Context, j job, now time.Time) (int, error) {
	if j.ev == nil || j.ep == nil {
		return 0, errors.New("the event or endpoint is gone")
	}
	body, err := Payload(j.ev)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.ep.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "billingd-webhooks/1")
	req.Header.Set(SignatureHeader, Sign(body, j.ep.Secret, now))
	resp, err := s.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck // lets the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(bytes.ToValidUTF8(snippet, nil))))
	}
	return resp.StatusCode, nil
}

// record stores attempt a of j and what follows: success, a retry after the
// backoff, or, past the retry window, giving up on the delivery or (if the
// endpoint has failed for the whole window) disabling the endpoint, whose
// pending deliveries then wait for it to be re-enabled.
func (s *Service) record(ctx context.Context, j job, a *Attempt, ok bool, now time.Time) error {
	return s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(a).Exec(ctx); err != nil {
			return err
		}
		d := j.d
		d.AttemptCount++
		d.LastAttemptAt, d.LastResponseCode, d.LastError = &now, a.ResponseCode, a.Error
		ep := tx.NewUpdate().Model((*Endpoint)(nil)).Where("id = ?", d.EndpointID)
		switch {
		case ok:
			d.Status, d.DeliveredAt, d.LastError = StatusSucceeded, &now, ""
			ep = ep.Set("failing_since = NULL").Where("failing_since IS NOT NULL")
		case now.Sub(d.RetryFrom) < s.Window:
			d.NextAttemptAt = now.Add(Backoff(now.Sub(d.RetryFrom)))
			ep = ep.Set("failing_since = ?", now).Where("failing_since IS NULL")
		default:
			e, err := s.get(ctx, tx, d.EndpointID, true)
			if err != nil {
				return err
			}
			if e.FailingSince == nil {
				e.FailingSince = &now
			}
			if e.DisabledAt == nil && now.Sub(*e.FailingSince) >= s.Window {
				// The endpoint keeps failing: disable it and keep the
				// delivery for when it is re-enabled.
				e.DisabledAt, e.DisabledReason, d.NextAttemptAt = &now, ReasonFailing, now
				s.Logger.Warn("webhook endpoint disabled: no successful delivery within the retry window",
					"endpoint", e.ID, "url", e.URL, "failing_since", e.FailingSince)
				if err := s.disabledEvent(ctx, tx, e, now); err != nil {
					return err
				}
			} else if e.DisabledAt == nil {
				d.Status = StatusFailed // the endpoint works, but not for this event
			} else {
				d.NextAttemptAt = now // disabled meanwhile: kept for re-enabling
			}
			ep = ep.Set("failing_since = ?", e.FailingSince).Set("disabled_at = ?", e.DisabledAt).Set("disabled_reason = ?", e.DisabledReason)
		}
		if _, err := ep.Exec(ctx); err != nil {
			return err
		}
		_, err := tx.NewUpdate().Model(d).WherePK().
			Column("status", "attempts", "next_attempt_at", "last_attempt_at", "last_response_code", "last_error", "delivered_at").Exec(ctx)
		return err
	})
}

// Next returns the earliest instant after after at which a delivery to an
// enabled endpoint is due.
func (s *Service) Next(ctx context.Context, after time.Time) (time.Time, bool, error) {
	var ts []time.Time
	err := s.DB.NewSelect().Model((*Delivery)(nil)).ColumnExpr("d.next_attempt_at").
		Join("JOIN webhook_endpoints AS e ON e.id = d.endpoint_id").
		Where("d.status = ?", StatusPending).Where("d.next_attempt_at > ?", after.UTC()).Where("e.disabled_at IS NULL").
		OrderExpr("d.next_attempt_at").Limit(1).Scan(ctx, &ts)
	if err != nil || len(ts) == 0 {
		return time.Time{}, false, store.Translate(err)
	}
	return ts[0], true, nil
}
