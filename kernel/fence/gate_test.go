package fence

import (
	"errors"
	"sync"
	"testing"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

func TestGateFencesEveryKindOfOutput(t *testing.T) {
	g := NewGate(2)
	out := []eventabi.Event{
		{Type: eventabi.TypeAudioFrame, TurnID: "t1"},
		{Type: eventabi.TypeTextDelta, TurnID: "t1"},
		{Type: eventabi.TypeOutputAccepted, TurnID: "t1"},
		{Type: eventabi.TypePlaybackStarted, TurnID: "t1"},
	}
	for _, ev := range out {
		if err := g.Admit(&ev); err != nil {
			t.Fatalf("before fence: %v", err)
		}
	}
	g.Fence("t1", "barge_in")
	for _, ev := range out {
		if err := g.Admit(&ev); !errors.Is(err, kernel.ErrFenced) {
			t.Fatalf("after fence %s: %v", ev.Type, err)
		}
	}
	other := eventabi.Event{Type: eventabi.TypeAudioFrame, TurnID: "t2", Epoch: 3}
	if err := g.Admit(&other); err != nil {
		t.Fatal(err)
	}
	g.SetEpoch(4)
	if err := g.Admit(&other); !errors.Is(err, kernel.ErrStaleEpoch) {
		t.Fatalf("stale epoch: %v", err)
	}
	g.Fence("t2", "x")
	g.Fence("t3", "x") // bound 2: t1 forgotten
	if err := g.Admit(&out[0]); err != nil {
		t.Fatal("bounded memory did not forget the oldest fence")
	}
}

func TestGateConcurrentFenceAndAdmit(t *testing.T) {
	g := NewGate(0)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 1000 {
			ev := eventabi.Event{Type: eventabi.TypeAudioFrame, TurnID: "t"}
			_ = g.Admit(&ev)
		}
	}()
	go func() { defer wg.Done(); g.Fence("t", "x") }()
	wg.Wait()
	ev := eventabi.Event{Type: eventabi.TypeAudioFrame, TurnID: "t"}
	if g.Admit(&ev) == nil {
		t.Fatal("admitted after fence")
	}
}

type fakeLease struct{ err error }

func (f *fakeLease) CheckEpoch(uint64) error { return f.err }

// Once the session's lease is lost, the gate lets nothing out.
func TestGateChecksTheLease(t *testing.T) {
	g := NewGate(0)
	l := &fakeLease{}
	g.SetAuthority(l)
	ev := eventabi.Event{TurnID: "t1", Epoch: 3}
	if err := g.Admit(&ev); err != nil {
		t.Fatal(err)
	}
	l.err = kernel.ErrStaleEpoch
	if err := g.Admit(&ev); !errors.Is(err, kernel.ErrStaleEpoch) || g.Stale() != 1 {
		t.Fatalf("lost lease: %v, stale %d", err, g.Stale())
	}
}
