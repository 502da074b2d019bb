// Package outbox carries out side effects (e-mails, outbound webhooks) that
// a state change records as task rows in its own transaction: a crash
// between the change and the effect loses nothing, and a task's unique
// (kind, key) means a retried change never enqueues it twice. A Worker,
// scheduled like any job, runs due tasks with retries and backoff.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/parallel"
	"billingd/billing/store"
)

// Task statuses.
const (
	StatusPending = "pending"
	StatusDone    = "done"
	StatusFailed  = "failed"
)

// Enqueue records a task in tx, to run at runAt. A task with the same kind
// and key already recorded is left as it is.
func Enqueue(ctx context.Context, tx bun.IDB, kind, key, objectID string, runAt time.Time) error {
	t := &billing.Task{ID: billing.NewID(billing.PrefixTask), Kind: kind, Key: key, ObjectID: objectID,
		RunAt: runAt.UTC(), Status: StatusPending, CreatedAt: runAt.UTC()}
	_, err := tx.NewInsert().Model(t).On("CONFLICT (kind, key) DO NOTHING").Exec(ctx)
	return store.Translate(err)
}

// Handler carries out one task. Returning an error wrapped by Permanent ends
// the task as failed; any other error retries it later.
type Handler func(ctx context.Context, t *billing.Task, now time.Time) error

type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// Permanent marks err as not worth retrying.
func Permanent(err error) error { return permanent{err} }

// Worker runs due tasks.
type Worker struct {
	DB       *store.DB
	Logger   *slog.Logger
	Handlers map[string]Handler
	// MaxAttempts ends a task as failed after that many tries (default 12:
	// with the backoff below, about a day and a half).
	MaxAttempts int
	// OnFailed, if set, is called when a task fails for good.
	OnFailed func(ctx context.Context, t *billing.Task, err error)
	// Clock, if set, dates leases (see billing.NotBefore): a round of jobs
	// may reach the outbox long after the instant it was started for.
	Clock billing.Clock
	// Concurrency is how many tasks run at once (default
	// parallel.DefaultN): most of a task's time is waiting for an SMTP
	// server. Tasks of one object (an
	// invoice's e-mails) run one after the other, in order.
	Concurrency int
}

// lease is how long a claimed task is hidden from other workers.
const lease = 5 * time.Minute

// Backoff returns the wait before retry n (1-based): 1, 2, 4 … minutes, at
// most six hours.
func Backoff(n int) time.Duration {
	return min(time.Minute<<min(n-1, 9), 6*time.Hour)
}

// Run carries out every task due at now.
func (w *Worker) Run(ctx context.Context, now time.Time) error {
	var errs []error
	for {
		tasks, err := w.claim(ctx, now)
		if err != nil || len(tasks) == 0 {
			return errors.Join(append(errs, err)...)
		}
		errs = append(errs, w.runBatch(ctx, tasks, now))
	}
}

// runBatch runs claimed tasks, those of different objects at once. A task
// that cannot be recorded (a storage error) holds up no other: each is
// reported and the batch goes on.
func (w *Worker) runBatch(ctx context.Context, tasks []*billing.Task, now time.Time) error {
	var mu sync.Mutex
	var errs []error
	err := parallel.Groups(w.Concurrency, tasks, func(t *billing.Task) string { return t.ObjectID }, func(t *billing.Task) error {
		if err := w.runOne(ctx, t, now); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}

// call runs h, a panic in it being a failed attempt like any error: it is
// recorded, retried with backoff and counted.
func call(ctx context.Context, h Handler, t *billing.Task, now time.Time) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return h(ctx, t, now)
}

// leaseEnd is when a lease taken now ends, dated from the clock.
func (w *Worker) leaseEnd(now time.Time) time.Time {
	return billing.NotBefore(w.Clock, now).UTC().Add(lease)
}

// claim leases up to 20 due tasks.
func (w *Worker) claim(ctx context.Context, now time.Time) ([]*billing.Task, error) {
	var tasks []*billing.Task
	err := w.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		q := tx.NewSelect().Model(&tasks).Where("status = ?", StatusPending).Where("run_at <= ?", now.UTC()).
			Order("run_at", "id").Limit(20)
		if w.DB.Engine == store.Postgres {
			q = q.For("UPDATE SKIP LOCKED")
		}
		if err := q.Scan(ctx); err != nil || len(tasks) == 0 {
			return err
		}
		for _, t := range tasks {
			t.Attempts++
			t.RunAt = w.leaseEnd(now)
		}
		_, err := tx.NewUpdate().Model(&tasks).Column("attempts", "run_at").Bulk().Exec(ctx)
		return err
	})
	return tasks, err
}

func (w *Worker) runOne(ctx context.Context, t *billing.Task, now time.Time) error {
	// The batch's earlier tasks may have taken most of the lease (an SMTP
	// server that times out): renew it, unless another worker has claimed
	// the task since (its attempt count moved on).
	res, err := w.DB.NewUpdate().Model(t).Set("run_at = ?", w.leaseEnd(now)).WherePK().
		Where("status = ?", StatusPending).Where("attempts = ?", t.Attempts).Exec(ctx)
	if err != nil {
		return store.Translate(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return nil
	}
	h := w.Handlers[t.Kind]
	if h == nil {
		err = Permanent(fmt.Errorf("no handler for task kind %q", t.Kind))
	} else {
		err = call(ctx, h, t, now)
	}
	now = now.UTC()
	max := w.MaxAttempts
	if max == 0 {
		max = 12
	}
	var p permanent
	switch {
	case err == nil:
		t.Status, t.DoneAt, t.LastError = StatusDone, &now, ""
	case errors.As(err, &p) || t.Attempts >= max:
		t.Status, t.DoneAt, t.LastError = StatusFailed, &now, err.Error()
		w.Logger.Error("task failed for good", "kind", t.Kind, "key", t.Key, "attempts", t.Attempts, "err", err)
		if w.OnFailed != nil {
			w.OnFailed(ctx, t, err)
		}
	default:
		t.RunAt, t.LastError = now.Add(Backoff(t.Attempts)), err.Error()
		w.Logger.Warn("task failed; will retry", "kind", t.Kind, "key", t.Key, "attempt", t.Attempts, "retry_at", t.RunAt, "err", err)
	}
	// Recorded even if ctx was canceled meanwhile (a shutdown's grace ran
	// out): the effect has happened, and a task not marked done would run
	// again after its lease (a second e-mail).
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), store.QueryTimeout)
	defer cancel()
	_, uerr := w.DB.NewUpdate().Model(t).Column("status", "done_at", "last_error", "run_at").WherePK().
		Where("attempts = ?", t.Attempts).Exec(rctx)
	return store.Translate(uerr)
}

// Next returns the earliest run_at after after of a pending task.
func (w *Worker) Next(ctx context.Context, after time.Time) (time.Time, bool, error) {
	var ts []time.Time
	err := w.DB.NewSelect().Model((*billing.Task)(nil)).Column("run_at").Where("status = ?", StatusPending).
		Where("run_at > ?", after.UTC()).Order("run_at").Limit(1).Scan(ctx, &ts)
	if err != nil || len(ts) == 0 {
		return time.Time{}, false, store.Translate(err)
	}
	return ts[0], true, nil
}
