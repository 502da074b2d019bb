package billing

import "time"

// Clock tells the time. All code reads the time through a Clock so that
// billing periods can be tested and the daemon can run on a test clock.
type Clock interface {
	Now() time.Time
}

// WallClock is the real clock.
type WallClock struct{}

// Now returns the current wall time.
func (WallClock) Now() time.Time { return time.Now() }

// NotBefore returns c's time, or t if c is behind it (or nil): the instant
// work that was due at t actually starts, for leases and signatures that
// must not be dated in the past when a round of jobs runs late.
func NotBefore(c Clock, t time.Time) time.Time {
	if c != nil {
		if now := c.Now(); now.After(t) {
			return now
		}
	}
	return t
}

// ClockFunc adapts a function to the Clock interface.
type ClockFunc func() time.Time

// Now calls f.
func (f ClockFunc) Now() time.Time { return f() }
