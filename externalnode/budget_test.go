package externalnode

import (
	"errors"
	"testing"
	"time"
)

// At one instant an invocation may spend BudgetBurst's worth of its rate,
// and not one event more; the rate then refills it.
func TestBudgetBurstIsAFifthOfASecond(t *testing.T) {
	s := newBudgetState("tts", OutputBudget{EventsPerSecond: 1000, BytesPerSecond: 1 << 30})
	now := time.Unix(1000, 0)
	n := 0
	for ; n < 2000; n++ {
		if err := s.admit(now, 100, 0); err != nil {
			var be *BudgetError
			if !errors.As(err, &be) || be.Budget != BudgetEventsPerSecond {
				t.Fatalf("event %d: %v, want an events_per_s BudgetError", n, err)
			}
			break
		}
	}
	if want := int(1000 * BudgetBurst.Seconds()); n != want {
		t.Fatalf("admitted %d events at once, want %d (BudgetBurst of 1000/s)", n, want)
	}
	s = newBudgetState("tts", OutputBudget{EventsPerSecond: 1000, BytesPerSecond: 1 << 30})
	for i := range 200 {
		if err := s.admit(now, 100, 0); err != nil {
			t.Fatalf("event %d of the burst: %v", i, err)
		}
	}
	if err := s.admit(now.Add(10*time.Millisecond), 100, 0); err != nil {
		t.Fatalf("10 ms later (10 events refilled): %v", err)
	}
}

// The bytes burst always holds one event of max_event_bytes, however low
// the rate.
func TestBudgetBurstHoldsOneMaxSizeEvent(t *testing.T) {
	s := newBudgetState("llm", OutputBudget{BytesPerSecond: 1 << 20, MaxEventBytes: 1 << 20})
	if err := s.admit(time.Unix(1000, 0), 1<<20, 0); err != nil {
		t.Fatalf("one max-size event at 1 MiB/s: %v", err)
	}
}
