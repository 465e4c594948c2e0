package transports

import (
	"context"
	"errors"
	"testing"

	"github.com/rspp/rspp/kernel/eventabi"
)

// A direct feed hands every frame to its deliverer in order and sends
// nothing on Inbound, which closes when the producer returns; input
// ending normally leaves Err nil.
func TestFeedDirectDeliversInOrder(t *testing.T) {
	f := NewFeed()
	var got []uint64
	f.Direct(func(ev eventabi.Event) error {
		got = append(got, ev.Sequence)
		return nil
	})
	f.Start(context.Background(), func(ctx context.Context, emit func(eventabi.Event) error) error {
		for i := range 5 {
			if err := emit(eventabi.Event{Sequence: uint64(i + 1)}); err != nil {
				return err
			}
		}
		return nil
	})
	for ev := range f.Inbound() {
		t.Fatalf("a direct feed sent %+v on Inbound", ev)
	}
	f.Close("done")
	if len(got) != 5 || got[0] != 1 || got[4] != 5 {
		t.Fatalf("delivered %v, want 1..5 in order", got)
	}
	if err := f.Err(); err != nil {
		t.Fatalf("Err after a normal end: %v", err)
	}
}

// A deliverer's error ends the producer: emit returns it (errors.Is
// still finds it) and it does not become Err; the deliverer's Refuse does.
func TestFeedDirectRefusalEndsTheProducer(t *testing.T) {
	f := NewFeed()
	bad := errors.New("bad frame")
	refused := errors.New("refused: bad frame")
	n := 0
	f.Direct(func(ev eventabi.Event) error {
		if n++; n == 3 {
			f.Refuse(refused)
			return bad
		}
		return nil
	})
	var emitErr error
	sent := 0
	f.Start(context.Background(), func(ctx context.Context, emit func(eventabi.Event) error) error {
		for {
			if emitErr = emit(eventabi.Event{}); emitErr != nil {
				return emitErr
			}
			sent++
		}
	})
	for range f.Inbound() {
	}
	f.Close("done")
	if sent != 2 || !errors.Is(emitErr, bad) {
		t.Fatalf("producer sent %d frames, emit said %v; want 2 then the deliverer's error", sent, emitErr)
	}
	if err := f.Err(); !errors.Is(err, refused) {
		t.Fatalf("Err = %v, want the Refuse reason", err)
	}
}

// Direct after Start changes nothing: frames keep going on Inbound.
func TestFeedDirectAfterStartIsIgnored(t *testing.T) {
	f := NewFeed()
	release := make(chan struct{})
	f.Start(context.Background(), func(ctx context.Context, emit func(eventabi.Event) error) error {
		<-release
		return emit(eventabi.Event{Sequence: 7})
	})
	f.Direct(func(eventabi.Event) error { t.Error("deliverer set after Start was called"); return nil })
	close(release)
	ev, ok := <-f.Inbound()
	if !ok || ev.Sequence != 7 {
		t.Fatalf("Inbound gave %+v, %v; want the frame", ev, ok)
	}
	f.Close("done")
}
