package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"billingd/billing"
	"billingd/billing/outbox"
	"billingd/billing/parallel/paralleltest"
	"billingd/billing/store"
	"billingd/billing/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.DropTemplates()
	os.Exit(code)
}

func TestWorker(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		for range 2 { // the same task twice is one task
			if err := outbox.Enqueue(ctx, db, "mail", "invoice:in_1", "in_1", now); err != nil {
				t.Fatal(err)
			}
		}
		outbox.Enqueue(ctx, db, "mail", "invoice:in_2", "in_2", now)
		outbox.Enqueue(ctx, db, "bad", "x", "in_3", now)
		calls := map[string]int{}
		var mu sync.Mutex
		w := &outbox.Worker{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Handlers: map[string]outbox.Handler{
			"mail": func(ctx context.Context, task *billing.Task, now time.Time) error {
				mu.Lock()
				defer mu.Unlock()
				calls[task.Key]++
				if task.Key == "invoice:in_2" && calls[task.Key] < 3 {
					return errors.New("smtp: connection refused")
				}
				return nil
			},
			"bad": func(ctx context.Context, task *billing.Task, now time.Time) error {
				return outbox.Permanent(errors.New("550 no such user"))
			},
		}}
		if err := w.Run(ctx, now); err != nil {
			t.Fatal(err)
		}
		if calls["invoice:in_1"] != 1 || calls["invoice:in_2"] != 1 {
			t.Fatalf("first pass calls %v", calls)
		}
		// The retry is due after the backoff, not before.
		next, ok, _ := w.Next(ctx, now)
		if !ok || !next.Equal(now.Add(time.Minute)) {
			t.Fatalf("next due %v %v, want %v", next, ok, now.Add(time.Minute))
		}
		w.Run(ctx, now.Add(30*time.Second))
		w.Run(ctx, now.Add(time.Minute))
		w.Run(ctx, now.Add(3*time.Minute))
		if calls["invoice:in_2"] != 3 || calls["invoice:in_1"] != 1 {
			t.Fatalf("calls after retries %v", calls)
		}
		var tasks []billing.Task
		db.NewSelect().Model(&tasks).Order("key").Scan(ctx)
		got := map[string]string{}
		for _, tk := range tasks {
			got[tk.Key] = tk.Status
		}
		want := map[string]string{"invoice:in_1": "done", "invoice:in_2": "done", "x": "failed"}
		if len(got) != 3 || got["invoice:in_1"] != want["invoice:in_1"] || got["invoice:in_2"] != want["invoice:in_2"] || got["x"] != want["x"] {
			t.Fatalf("statuses %v, want %v", got, want)
		}
	})
}

// TestConcurrency: tasks of different objects run at once (four here:
// each handler waits until four have started), those of one object one
// after the other in the order they were due.
func TestConcurrency(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		for i, obj := range []string{"in_a", "in_b", "in_a", "in_c", "in_d", "in_a", "in_e"} {
			if err := outbox.Enqueue(ctx, db, "mail", fmt.Sprintf("%s:%d", obj, i), obj, now.Add(time.Duration(i)*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		var (
			mu    sync.Mutex
			seqA  []string
			watch = paralleltest.New(t, 4)
		)
		w := &outbox.Worker{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Concurrency: 4, Handlers: map[string]outbox.Handler{
			"mail": func(ctx context.Context, task *billing.Task, now time.Time) error {
				if task.ObjectID == "in_a" {
					mu.Lock()
					seqA = append(seqA, task.Key)
					mu.Unlock()
				}
				watch.Enter(task.ObjectID)
				defer watch.Leave(task.ObjectID)
				return nil
			},
		}}
		if err := w.Run(ctx, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if want := []string{"in_a:0", "in_a:2", "in_a:5"}; !slices.Equal(seqA, want) {
			t.Errorf("in_a's tasks ran %v, want %v", seqA, want)
		}
		var done int
		db.NewSelect().Model((*billing.Task)(nil)).ColumnExpr("count(*)").Where("status = 'done'").Scan(ctx, &done)
		if done != 7 {
			t.Errorf("%d tasks done, want 7", done)
		}
	})
}

// TestPanicIsAFailedAttempt: a handler that panics fails its task's
// attempt (retried with backoff, counted) and holds up no other task.
func TestPanicIsAFailedAttempt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range 10 {
			outbox.Enqueue(ctx, db, "mail", fmt.Sprint("invoice:in_", i), fmt.Sprint("in_", i), now.Add(time.Duration(i)*time.Second))
		}
		var mu sync.Mutex
		ran := 0
		w := &outbox.Worker{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Concurrency: 2, Handlers: map[string]outbox.Handler{
			"mail": func(ctx context.Context, task *billing.Task, now time.Time) error {
				if task.ObjectID == "in_0" {
					panic("a PDF fpdf cannot render")
				}
				mu.Lock()
				ran++
				mu.Unlock()
				return nil
			},
		}}
		w.Run(ctx, now.Add(time.Minute))
		if ran != 9 {
			t.Errorf("%d of the 9 other tasks ran", ran)
		}
		var task billing.Task
		if err := db.NewSelect().Model(&task).Where("object_id = 'in_0'").Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if task.Status != outbox.StatusPending || task.Attempts != 1 || !strings.Contains(task.LastError, "panic") || !task.RunAt.Equal(now.Add(2*time.Minute)) {
			t.Errorf("the panicking task: %s, attempt %d, %q, next at %v", task.Status, task.Attempts, task.LastError, task.RunAt)
		}
	})
}

// TestDoneDespiteCancel: the round's context is canceled while a task runs
// (a shutdown whose grace ran out) and the task's effect happens anyway:
// it is recorded as done, not run again after its lease.
func TestDoneDespiteCancel(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		outbox.Enqueue(ctx, db, "mail", "invoice:in_1", "in_1", now)
		w := &outbox.Worker{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Handlers: map[string]outbox.Handler{
			"mail": func(context.Context, *billing.Task, time.Time) error {
				cancel() // the e-mail went out as the daemon was told to stop
				return nil
			},
		}}
		w.Run(ctx, now)
		var status string
		if err := db.NewSelect().Model((*billing.Task)(nil)).Column("status").Scan(context.Background(), &status); err != nil {
			t.Fatal(err)
		}
		if status != outbox.StatusDone {
			t.Errorf("task %s, want done", status)
		}
	})
}

// TestLeaseOfLateRound: a round reaches the outbox long after the instant
// it was started for, and its first task is slow. The second task's lease
// is taken from the clock, not from the round's stale instant, so another
// worker does not run it meanwhile; and a worker whose claim was taken over
// does not run the task again.
func TestLeaseOfLateRound(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		round := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		clock := round.Add(10 * time.Minute) // the round began ten minutes ago
		outbox.Enqueue(ctx, db, "mail", "a", "in_1", round)
		outbox.Enqueue(ctx, db, "mail", "b", "in_2", round)
		calls := map[string]int{}
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		var other *outbox.Worker
		h := func(ctx context.Context, task *billing.Task, now time.Time) error {
			calls[task.Key]++
			if task.Key == "a" && other != nil {
				// Slow: meanwhile another daemon's worker runs what is due.
				clock = clock.Add(time.Minute)
				if err := other.Run(ctx, clock); err != nil {
					t.Error(err)
				}
			}
			return nil
		}
		clk := billing.ClockFunc(func() time.Time { return clock })
		// One task at a time: the test orders what happens between tasks.
		w := &outbox.Worker{DB: db, Logger: logger, Clock: clk, Concurrency: 1, Handlers: map[string]outbox.Handler{"mail": h}}
		other = &outbox.Worker{DB: db, Logger: logger, Clock: clk, Concurrency: 1, Handlers: map[string]outbox.Handler{"mail": h}}
		if err := w.Run(ctx, round); err != nil {
			t.Fatal(err)
		}
		if calls["a"] != 1 || calls["b"] != 1 {
			t.Fatalf("calls %v, want each task once", calls)
		}

		// A claim taken over by another worker (its lease ran out) is not
		// run by the worker that lost it.
		outbox.Enqueue(ctx, db, "mail", "c", "in_3", clock)
		outbox.Enqueue(ctx, db, "mail", "d", "in_4", clock)
		w2 := &outbox.Worker{DB: db, Logger: logger, Clock: clk, Concurrency: 1, Handlers: map[string]outbox.Handler{"mail": func(ctx context.Context, task *billing.Task, now time.Time) error {
			calls[task.Key]++
			if task.Key == "c" { // another worker claims d meanwhile
				if _, err := db.NewUpdate().Model((*billing.Task)(nil)).Set("attempts = attempts + 1").Where("key = 'd'").Exec(ctx); err != nil {
					t.Error(err)
				}
			}
			return nil
		}}}
		if err := w2.Run(ctx, clock); err != nil {
			t.Fatal(err)
		}
		if calls["c"] != 1 || calls["d"] != 0 {
			t.Fatalf("calls %v, want c once and d not by the worker that lost it", calls)
		}
	})
}
