// Package scheduler is the one registry of scheduled work. Cron drives it on
// the wall clock; on the test clock, Advance steps through every instant at
// which some job has work, in time order, so advancing a year produces the
// same history as a year of running.
package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"billingd/billing"
	"billingd/billing/metrics"
	"billingd/billing/store"
)

// Job is one kind of scheduled work.
type Job struct {
	// Name labels logs and metrics.
	Name string
	// Run does all of the job's work that is due at now.
	Run func(ctx context.Context, now time.Time) error
	// Next returns the earliest instant strictly after after at which Run
	// will have work; ok is false if none is known.
	Next func(ctx context.Context, after time.Time) (t time.Time, ok bool, err error)
}

// Scheduler runs jobs.
type Scheduler struct {
	Jobs    []Job
	Logger  *slog.Logger
	Metrics *metrics.Metrics

	mu sync.Mutex // one round of jobs at a time
}

// RunDue runs every job once at now, in order. A failing or panicking job is
// logged and counted and does not stop the others; the first error is
// returned.
func (s *Scheduler) RunDue(ctx context.Context, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runJobs(ctx, now)
}

// RunNow runs the named jobs (all, if none is named), in the registry's
// order, at the clock's time once no other round is running: the same
// one-at-a-time, panic-safe rounds as RunDue, for work started outside the
// schedule (a kick after an API write or a webhook).
func (s *Scheduler) RunNow(ctx context.Context, clock billing.Clock, names ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runJobs(ctx, clock.Now(), names...)
}

func (s *Scheduler) runJobs(ctx context.Context, now time.Time, names ...string) error {
	var first error
	for _, j := range s.Jobs {
		if len(names) > 0 && !slices.Contains(names, j.Name) {
			continue
		}
		if err := s.run(ctx, j, now); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Wait returns when no round of jobs is running.
func (s *Scheduler) Wait() {
	s.mu.Lock()
	s.mu.Unlock() //nolint:staticcheck // an empty critical section is the point
}

func (s *Scheduler) run(ctx context.Context, j Job, now time.Time) (err error) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("job %s panicked: %v", j.Name, r)
		}
		if s.Metrics != nil {
			s.Metrics.JobDuration.WithLabelValues(j.Name).Observe(time.Since(start).Seconds())
			if err != nil {
				s.Metrics.JobErrors.WithLabelValues(j.Name).Inc()
			}
		}
		if err != nil {
			s.Logger.Error("scheduled job failed", "job", j.Name, "at", now, "err", err)
		}
	}()
	return j.Run(ctx, now)
}

// Cron runs RunDue at the wall clock's time on every tick of spec, in loc.
// A tick that comes while the previous round still runs is skipped, and
// panics are recovered. Stop the returned cron to stop ticking; its Stop
// returns a context that is done when the running round has finished.
func (s *Scheduler) Cron(ctx context.Context, spec string, loc *time.Location, clock billing.Clock) (*cron.Cron, error) {
	logger := cron.VerbosePrintfLogger(slog.NewLogLogger(s.Logger.Handler(), slog.LevelDebug))
	c := cron.New(cron.WithLocation(loc), cron.WithChain(cron.Recover(logger), cron.SkipIfStillRunning(logger)))
	if _, err := c.AddFunc(spec, func() { _ = s.RunNow(ctx, clock) }); err != nil {
		return nil, fmt.Errorf("BILLING_CRON %q: %w", spec, err)
	}
	return c, nil
}

// ValidateSpec checks a cron spec (five fields, or a descriptor like @hourly).
func ValidateSpec(spec string) error {
	_, err := cron.ParseStandard(spec)
	return err
}

// TestClock is the daemon's clock when BILLING_CLOCK=test: a frozen time
// stored in the database, moved only by Advance.
type TestClock struct {
	DB *store.DB

	mu        sync.Mutex
	now       time.Time
	advancing sync.Mutex // one Advance at a time: the clock only moves forward
}

// testClockKey is the settings row that stores the test clock.
const testClockKey = "test_clock"

// LoadTestClock returns the stored test clock, starting it at start if the
// database has none.
func LoadTestClock(ctx context.Context, db *store.DB, start time.Time) (*TestClock, error) {
	c := &TestClock{DB: db, now: start.UTC().Truncate(time.Second)}
	v, ok, err := store.Setting(ctx, db, testClockKey)
	if err != nil {
		return nil, err
	}
	if ok {
		if c.now, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return nil, fmt.Errorf("stored test clock %q: %w", v, err)
		}
		return c, nil
	}
	return c, store.SetSetting(ctx, db, testClockKey, c.now.Format(time.RFC3339Nano))
}

// Now returns the test clock's time.
func (c *TestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *TestClock) set(ctx context.Context, t time.Time) error {
	if err := store.SetSetting(ctx, c.DB, testClockKey, t.UTC().Format(time.RFC3339Nano)); err != nil {
		return err
	}
	c.mu.Lock()
	c.now = t.UTC()
	c.mu.Unlock()
	return nil
}

// Advance moves the test clock to to, stopping at every instant at which a
// job of s has work and running all jobs there, then runs them at to. It
// returns the number of stops. Moving backwards is refused.
func (c *TestClock) Advance(ctx context.Context, s *Scheduler, to time.Time) (int, error) {
	c.advancing.Lock()
	defer c.advancing.Unlock()
	cur := c.Now()
	if to.Before(cur) {
		return 0, billing.Invalid("to", "the test clock cannot move backwards (now %s)", cur.Format(time.RFC3339))
	}
	stops := 0
	for {
		next, ok := to, false
		for _, j := range s.Jobs {
			if j.Next == nil {
				continue
			}
			t, has, err := j.Next(ctx, cur)
			if err != nil {
				return stops, err
			}
			if has && t.After(cur) && !t.After(next) {
				next, ok = t, true
			}
		}
		if err := c.set(ctx, next); err != nil {
			return stops, err
		}
		stops++
		if err := s.RunDue(ctx, next); err != nil {
			return stops, err
		}
		cur = next
		if !ok || !next.Before(to) {
			return stops, nil
		}
	}
}
