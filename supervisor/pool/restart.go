package pool

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rspp/rspp/kernel"
)

// ErrCircuitOpen: a provider crashed more often than its restart intensity
// allows; it is marked unavailable instead of being restarted in a loop. It
// unwraps to kernel.ErrNodeUnavailable.
var ErrCircuitOpen = fmt.Errorf("provider circuit open: %w", kernel.ErrNodeUnavailable)

// RestartPolicy is OTP-style restart intensity: at most Intensity restarts
// within Period. Each restart waits a backoff that doubles with the number
// of restarts already in the period, capped at BackoffMax, spread by
// +-Jitter. Past the intensity the circuit opens; after Cooldown one
// half-open start is tried (0: stay open until an upgrade or reload).
type RestartPolicy struct {
	Intensity   int
	Period      time.Duration
	BackoffBase time.Duration
	BackoffMax  time.Duration
	Jitter      float64 // 0..1, fraction of the backoff
	Cooldown    time.Duration
}

// DefaultRestartPolicy: 5 restarts in 30 s, 20 ms doubling to 2 s, 20 %
// jitter; an open circuit tries one half-open start after 10 s.
var DefaultRestartPolicy = RestartPolicy{
	Intensity: 5, Period: 30 * time.Second, BackoffBase: 20 * time.Millisecond,
	BackoffMax: 2 * time.Second, Jitter: 0.2, Cooldown: 10 * time.Second,
}

func (p RestartPolicy) WithDefaults() RestartPolicy {
	d := DefaultRestartPolicy
	if p.Intensity > 0 {
		d.Intensity = p.Intensity
	}
	if p.Period > 0 {
		d.Period = p.Period
	}
	if p.BackoffBase > 0 {
		d.BackoffBase = p.BackoffBase
	}
	if p.BackoffMax > 0 {
		d.BackoffMax = p.BackoffMax
	}
	if p.Jitter > 0 {
		d.Jitter = min(p.Jitter, 1)
	}
	if p.Cooldown != 0 {
		d.Cooldown = max(p.Cooldown, 0)
	}
	return d
}

// RestartTracker applies a RestartPolicy to the crashes of one pool. It is
// deterministic given its clock and random source. Not safe for concurrent
// use: the pool's supervise loop owns it.
type RestartTracker struct {
	p       RestartPolicy
	clock   Clock
	rnd     *rand.Rand
	history []time.Time // restarts within the period, oldest first
	openAt  time.Time   // zero while the circuit is closed
}

func NewRestartTracker(p RestartPolicy, clock Clock, seed uint64) *RestartTracker {
	return &RestartTracker{p: p.WithDefaults(), clock: clock, rnd: rand.New(rand.NewPCG(seed, 0x5eed))}
}

// Crashed records that an instance died and a replacement is wanted. It
// returns how long to wait before starting it, or ErrCircuitOpen when the
// intensity is exceeded (the circuit is then open).
func (r *RestartTracker) Crashed() (time.Duration, error) {
	now := r.clock.Now()
	if !r.openAt.IsZero() {
		return 0, ErrCircuitOpen
	}
	cut := now.Add(-r.p.Period)
	i := 0
	for i < len(r.history) && !r.history[i].After(cut) {
		i++
	}
	r.history = r.history[i:]
	if len(r.history) >= r.p.Intensity {
		r.openAt = now
		return 0, fmt.Errorf("%w: %d restarts within %s", ErrCircuitOpen, len(r.history), r.p.Period)
	}
	n := len(r.history)
	r.history = append(r.history, now)
	d := r.p.BackoffBase << min(n, 30)
	if d <= 0 || d > r.p.BackoffMax {
		d = r.p.BackoffMax
	}
	if r.p.Jitter > 0 {
		d = time.Duration(float64(d) * (1 + r.p.Jitter*(2*r.rnd.Float64()-1)))
	}
	return d, nil
}

// Open says whether the circuit is open.
func (r *RestartTracker) Open() bool { return !r.openAt.IsZero() }

// HalfOpenAt is when a half-open start may be tried (zero: never, the
// cooldown is off, or the circuit is closed).
func (r *RestartTracker) HalfOpenAt() time.Time {
	if r.openAt.IsZero() || r.p.Cooldown <= 0 {
		return time.Time{}
	}
	return r.openAt.Add(r.p.Cooldown)
}

// HalfOpenResult closes the circuit after a successful half-open start
// (forgetting the restart history) or keeps it open for another cooldown.
func (r *RestartTracker) HalfOpenResult(err error) {
	if err == nil {
		r.openAt, r.history = time.Time{}, nil
		return
	}
	r.openAt = r.clock.Now()
}

// QuietSince says whether no restart was recorded within the period
// before now: the tracker then holds nothing a new one would not.
func (r *RestartTracker) QuietSince(now time.Time) bool {
	return len(r.history) == 0 || !r.history[len(r.history)-1].After(now.Add(-r.p.Period))
}
