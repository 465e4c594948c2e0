package session

import (
	"testing"
	"time"
)

// A session that ticked on a wake-up of its own (an input) less than a
// period ago is not woken by the wheel; one that did not is, and the
// wheel's tick counts as its last tick.
func TestWheelSkipsASessionThatTickedOnItsOwn(t *testing.T) {
	w := NewWheel(2*time.Millisecond, 20*time.Millisecond) // 10 slots
	defer w.Close()
	s := &Session{wake: make(chan struct{}, 1), onWheel: true, cfg: Config{Wheel: w}}

	w.cur.Store(100)
	if !s.tickOnWake() {
		t.Fatal("a wake-up long after the last tick did not tick")
	}
	if s.tickOnWake() {
		t.Fatal("a second wake-up at the same index ticked again")
	}
	w.cur.Store(107)
	if s.tickOnWake() {
		t.Fatal("a wake-up 7 of 10 slots after the last tick ticked")
	}

	s.tickDue(109, 10) // 9 slots after the wake-up's tick
	if s.ticked.Load() || len(s.wake) != 0 {
		t.Fatal("the wheel woke a session that ticked 9 slots ago")
	}
	s.tickDue(110, 10)
	if !s.ticked.Load() || len(s.wake) != 1 {
		t.Fatal("the wheel did not wake a session whose last tick is a period old")
	}
	s.ticked.Store(false)
	<-s.wake

	// The wheel's tick is the last tick: a wake-up right after it does
	// not tick again, one a frame's period later (a slot early) does.
	w.cur.Store(112)
	if s.tickOnWake() {
		t.Fatal("a wake-up 2 slots after the wheel's tick ticked")
	}
	w.cur.Store(119)
	if !s.tickOnWake() {
		t.Fatal("a wake-up 9 slots after the wheel's tick did not tick")
	}
}

// A session off the wheel (a ticker of its own) never ticks on wake-ups.
func TestTickOnWakeOnlyOnTheWheel(t *testing.T) {
	s := &Session{wake: make(chan struct{}, 1)}
	if s.tickOnWake() {
		t.Fatal("a session with its own ticker ticked on a wake-up")
	}
}
