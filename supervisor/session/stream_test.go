package session

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

// inputLog is a fake Timeline that keeps the recorded ingest inputs.
type inputLog struct {
	mu     sync.Mutex
	ingest []eventabi.Event
}

func (l *inputLog) Append(rec kernel.TimelineRecord) {
	if rec.Input == nil || rec.Input.Kind != kernel.InputIngest || rec.Input.Event == nil {
		return
	}
	l.mu.Lock()
	l.ingest = append(l.ingest, *rec.Input.Event)
	l.mu.Unlock()
}

func (l *inputLog) media() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int64
	for _, ev := range l.ingest {
		out = append(out, ev.MediaNanos)
	}
	return out
}

func streamFrame(i int) eventabi.Event {
	return eventabi.Event{Type: eventabi.TypeAudioFrame, Lane: eventabi.LaneData, MediaNanos: int64(i) * int64(20*time.Millisecond),
		Audio: &eventabi.Audio{PCM: make([]byte, 640), SampleRate: 16000, Channels: 1}}
}

func openStreamSession(t *testing.T, tl Timeline) *Session {
	t.Helper()
	s, err := Open(Config{
		Kernel: kernel.SessionConfig{SessionID: "s1", Epoch: 1, VAD: kernel.VADConfig{Disabled: true},
			Graph: kernel.GraphSpec{
				Nodes: []kernel.NodeSpec{{ID: "n", Kind: "custom", Provider: "p"}},
				Edges: []kernel.EdgeSpec{{From: kernel.Ingress, To: "n"}, {From: "n", To: kernel.Egress}},
			}},
		Pools: &fakePools{opens: make(chan openRec, 8)}, Timeline: tl,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A stream's frames reach the kernel in order. A frame the kernel refuses
// is reported by the next Ingest, which does not queue its own frame, and
// nothing after it reaches the kernel; Flush reports the last verdict.
func TestStreamKeepsOrderAndStopsAtARefusal(t *testing.T) {
	tl := &inputLog{}
	s := openStreamSession(t, tl)
	defer s.Close("test done")
	st := s.Stream()
	for i := range 3 {
		if err := st.Ingest(streamFrame(i)); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if err := st.Flush(); err != nil {
		t.Fatalf("flush after good frames: %v", err)
	}
	bad := streamFrame(3)
	bad.Audio.SampleRate = 0
	if err := st.Ingest(bad); err != nil {
		t.Fatalf("the refused frame's own Ingest: %v (its verdict comes with the next)", err)
	}
	err := st.Ingest(streamFrame(4))
	if !errors.Is(err, eventabi.ErrInvalidEvent) {
		t.Fatalf("Ingest after a bad frame = %v, want its ErrInvalidEvent", err)
	}
	if err := st.Flush(); err != nil {
		t.Fatalf("flush with nothing pending: %v", err)
	}
	s.Close("done")
	got := tl.media()
	if len(got) != 4 {
		t.Fatalf("kernel took %d frames (%v), want the 3 good and the bad one", len(got), got)
	}
	for i, m := range got {
		if want := int64(i) * int64(20*time.Millisecond); m != want {
			t.Fatalf("frame %d reached the kernel as media %d, want %d (order)", i, m, want)
		}
	}
}

// Flush reports the verdict on the last frame; on a closed session
// Ingest reports ErrClosed.
func TestStreamFlushAndClosed(t *testing.T) {
	s := openStreamSession(t, &inputLog{})
	st := s.Stream()
	bad := streamFrame(0)
	bad.Audio = nil
	if err := st.Ingest(bad); err != nil {
		t.Fatal(err)
	}
	var ve *eventabi.ValidationError
	if err := st.Flush(); !errors.As(err, &ve) || ve.Field != "audio" {
		t.Fatalf("Flush = %v, want the last frame's validation error (field audio)", err)
	}
	s.Close("done")
	if err := st.Ingest(streamFrame(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ingest on a closed session = %v, want ErrClosed", err)
	}
}
