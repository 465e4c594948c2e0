package pool

import "time"

// Clock is the supervisor's time source. The restart policy, kill grace and
// drain deadlines read it, so tests can drive them with a manual clock.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time                         { return time.Now() }
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
