package pool

import (
	"errors"
	"testing"
	"time"
)

// manualClock is a Clock that moves only when told.
type manualClock struct{ now time.Time }

func (c *manualClock) Now() time.Time                       { return c.now }
func (c *manualClock) After(time.Duration) <-chan time.Time { return make(chan time.Time) }

func TestRestartPolicyIntensityBackoffAndCircuit(t *testing.T) {
	clk := &manualClock{now: time.Unix(1000, 0)}
	pol := RestartPolicy{Intensity: 3, Period: 10 * time.Second, BackoffBase: 100 * time.Millisecond,
		BackoffMax: 250 * time.Millisecond, Jitter: 0.1, Cooldown: 5 * time.Second}
	tr := NewRestartTracker(pol, clk, 7)
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 250 * time.Millisecond}
	for i, base := range want {
		d, err := tr.Crashed()
		if err != nil {
			t.Fatalf("restart %d: %v", i, err)
		}
		if lo, hi := time.Duration(float64(base)*0.9), time.Duration(float64(base)*1.1); d < lo || d > hi {
			t.Fatalf("restart %d: backoff %v, want %v +-10%%", i, d, base)
		}
		clk.now = clk.now.Add(time.Second)
	}
	if _, err := tr.Crashed(); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("4th crash within the period: %v, want ErrCircuitOpen", err)
	}
	if !tr.Open() || !tr.HalfOpenAt().Equal(clk.now.Add(5*time.Second)) {
		t.Fatalf("circuit open %v, half-open at %v", tr.Open(), tr.HalfOpenAt())
	}
	tr.HalfOpenResult(errors.New("still broken"))
	if !tr.Open() {
		t.Fatal("failed half-open start closed the circuit")
	}
	tr.HalfOpenResult(nil)
	if tr.Open() {
		t.Fatal("successful half-open start left the circuit open")
	}
	if d, err := tr.Crashed(); err != nil || d > 110*time.Millisecond {
		t.Fatalf("after close: %v %v, want a fresh first backoff", d, err)
	}
}

func TestRestartPolicyForgetsCrashesOutsidePeriod(t *testing.T) {
	clk := &manualClock{now: time.Unix(0, 0)}
	tr := NewRestartTracker(RestartPolicy{Intensity: 2, Period: time.Second}, clk, 1)
	for i := range 10 {
		if _, err := tr.Crashed(); err != nil {
			t.Fatalf("crash %d spaced past the period opened the circuit: %v", i, err)
		}
		clk.now = clk.now.Add(600 * time.Millisecond)
	}
}

func TestRestartPolicyIsDeterministic(t *testing.T) {
	run := func() []time.Duration {
		clk := &manualClock{now: time.Unix(0, 0)}
		tr := NewRestartTracker(RestartPolicy{Intensity: 4, Jitter: 0.5}, clk, 42)
		var out []time.Duration
		for range 4 {
			d, _ := tr.Crashed()
			out = append(out, d)
		}
		return out
	}
	a, b := run(), run()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different backoffs: %v vs %v", a, b)
		}
	}
}
