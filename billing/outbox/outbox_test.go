package outbox_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"billingd/billing"
	"billingd/billing/outbox"
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
		w := &outbox.Worker{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Handlers: map[string]outbox.Handler{
			"mail": func(ctx context.Context, task *billing.Task, now time.Time) error {
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
