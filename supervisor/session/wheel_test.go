package session

import (
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

// At closes its channel no earlier than the time asked for; waiters of
// one tick share a channel; a past time is already closed.
func TestWheelAtFiresAtOrAfterItsTime(t *testing.T) {
	w := NewWheel(2*time.Millisecond, 20*time.Millisecond)
	defer w.Close()
	at := time.Now().Add(15 * time.Millisecond)
	a, b := w.At(at), w.At(at)
	if a != b {
		t.Fatal("two waits on one tick got different channels")
	}
	<-a
	if now := time.Now(); now.Before(at) {
		t.Fatalf("fired %v early", at.Sub(now))
	}
	select {
	case <-w.At(time.Now().Add(-time.Second)):
	default:
		t.Fatal("a wait on a past time is not closed")
	}
	late := w.At(time.Now().Add(time.Hour))
	w.Close()
	select {
	case <-late:
	default:
		t.Fatal("Close left a wait pending")
	}
	w.Close() // twice is fine
}

// Sessions are spread over the wheel's phases and leave it when closed.
func TestWheelSpreadsSessionsOverPhases(t *testing.T) {
	w := NewWheel(2*time.Millisecond, 20*time.Millisecond)
	defer w.Close()
	var ss []*Session
	for range 25 {
		s := &Session{wake: make(chan struct{}, 1)}
		w.add(s)
		ss = append(ss, s)
	}
	for i, ph := range w.phases {
		if len(ph) < 2 || len(ph) > 3 {
			t.Fatalf("phase %d has %d of 25 sessions over 10 phases", i, len(ph))
		}
	}
	for _, s := range ss[:10] {
		w.remove(s)
	}
	if n := w.sessions(); n != 15 {
		t.Fatalf("%d sessions after removing 10 of 25", n)
	}
	// Every registered session is ticked within one period.
	for _, s := range ss[10:] {
		select {
		case <-s.wake:
		case <-time.After(10 * time.Second):
			t.Fatal("a session was never ticked")
		}
		if !s.ticked.Load() {
			t.Fatal("woken without a tick flagged")
		}
	}
}

// A session on the wheel (no ticker of its own) still enforces its
// deadlines: a node that never answers times out.
func TestSessionOnWheelTimesOut(t *testing.T) {
	w := NewWheel(2*time.Millisecond, 20*time.Millisecond)
	defer w.Close()
	pools := &fakePools{opens: make(chan openRec, 8)}
	tl := &Collector{}
	s, err := Open(Config{
		Kernel: kernel.SessionConfig{SessionID: "s1", Epoch: 1, VAD: kernel.VADConfig{Disabled: true},
			Graph: kernel.GraphSpec{
				Nodes: []kernel.NodeSpec{{ID: "n", Kind: "custom", Provider: "p", Timeout: 100 * time.Millisecond}},
				Edges: []kernel.EdgeSpec{{From: kernel.Ingress, To: "n"}, {From: "n", To: kernel.Egress}},
			}},
		Pools: pools, Timeline: tl, Tick: 20 * time.Millisecond, Wheel: w,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close("test done")
	if w.sessions() != 1 {
		t.Fatalf("wheel ticks %d sessions, want the one opened", w.sessions())
	}
	if err := s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechStart}); err != nil {
		t.Fatal(err)
	}
	nextOpen(t, pools) // never answered
	deadline := time.After(10 * time.Second)
	for {
		found := false
		for _, r := range tl.Records() {
			if r.Type == "turn_abort" || (r.Type == "invocation_fail" && strings.Contains(r.Reason, "timeout")) {
				found = true
			}
		}
		if found {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("no timeout on the wheel: %v", tl.Records())
		case <-time.After(10 * time.Millisecond):
		}
	}
	s.Close("done")
	if w.sessions() != 0 {
		t.Fatalf("closed session still on the wheel")
	}
}
