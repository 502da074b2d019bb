package scheduler_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"billingd/billing"
	"billingd/billing/scheduler"
	"billingd/billing/store"
	"billingd/billing/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.DropTemplates()
	os.Exit(code)
}

var logger = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestRunNowIsARound: work started outside the schedule (a kick) runs as a
// round: never at the same time as another round, and a panic in it is
// recovered and reported, not fatal.
func TestRunNowIsARound(t *testing.T) {
	var running, overlaps, calls atomic.Int32
	job := func(ctx context.Context, now time.Time) error {
		if running.Add(1) > 1 {
			overlaps.Add(1)
		}
		defer running.Add(-1)
		calls.Add(1)
		time.Sleep(2 * time.Millisecond)
		return nil
	}
	s := &scheduler.Scheduler{Logger: logger, Jobs: []scheduler.Job{
		{Name: "outbox", Run: job},
		{Name: "billing_run", Run: job},
		{Name: "boom", Run: func(context.Context, time.Time) error { panic("boom") }},
	}}
	clock := billing.ClockFunc(time.Now)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				s.RunNow(context.Background(), clock, "outbox")
			} else {
				s.RunDue(context.Background(), time.Now())
			}
		}()
	}
	wg.Wait()
	if overlaps.Load() != 0 {
		t.Fatalf("%d overlapping runs", overlaps.Load())
	}
	if n := calls.Load(); n != 10+10*2 {
		t.Fatalf("%d job runs, want 30 (kicks run only the named job)", n)
	}
	if err := s.RunNow(context.Background(), clock, "boom"); err == nil {
		t.Fatal("a panicking job reported no error")
	}
}

// TestConcurrentAdvancesMoveForward: two advances at once never move the
// test clock backwards; each job sees its stops in time order.
func TestConcurrentAdvancesMoveForward(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	start := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	clock, err := scheduler.LoadTestClock(ctx, db, start)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []time.Time
	s := &scheduler.Scheduler{Logger: logger, Jobs: []scheduler.Job{{
		Name: "daily",
		Run: func(ctx context.Context, now time.Time) error {
			mu.Lock()
			seen = append(seen, now)
			mu.Unlock()
			return nil
		},
		Next: func(ctx context.Context, after time.Time) (time.Time, bool, error) {
			return after.Truncate(24 * time.Hour).Add(24 * time.Hour), true, nil
		},
	}}}
	var wg sync.WaitGroup
	for _, to := range []time.Time{start.AddDate(0, 2, 0), start.AddDate(0, 1, 0)} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := clock.Advance(ctx, s, to); err != nil && billing.ErrorCode(err) != billing.EINVALID {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i := 1; i < len(seen); i++ {
		if seen[i].Before(seen[i-1]) {
			t.Fatalf("the clock went back from %v to %v", seen[i-1], seen[i])
		}
	}
	if !clock.Now().Equal(start.AddDate(0, 2, 0)) {
		t.Fatalf("clock at %v", clock.Now())
	}
}
