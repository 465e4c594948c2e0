package session

import (
	"sync"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

// fakePlaybackOutput is a PlaybackOutput that plays nothing: it records
// frames and the EndOfTurn it is handed; the test decides when the turn
// has "played".
type fakePlaybackOutput struct {
	mu     sync.Mutex
	frames int
	ended  chan string
}

func (f *fakePlaybackOutput) Send(eventabi.Event) error {
	f.mu.Lock()
	f.frames++
	f.mu.Unlock()
	return nil
}
func (f *fakePlaybackOutput) Fence(string, string)  {}
func (f *fakePlaybackOutput) EndOfTurn(turn string) { f.ended <- turn }

func openLive(t *testing.T, pools Pools, out Output, tl Timeline) *Session {
	t.Helper()
	s, err := Open(Config{
		Kernel: kernel.SessionConfig{SessionID: "s1", Epoch: 1, VAD: kernel.VADConfig{Disabled: true},
			AwaitPlayback: true,
			Graph: kernel.GraphSpec{
				Nodes: []kernel.NodeSpec{{ID: "n", Kind: "custom", Provider: "p", Timeout: time.Minute}},
				Edges: []kernel.EdgeSpec{{From: kernel.Ingress, To: "n"}, {From: "n", To: kernel.Egress}},
			}},
		Pools: pools, Output: out, Timeline: tl,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close("test done") })
	return s
}

func hasRecord(tl *Collector, typ string) bool {
	for _, r := range tl.Records() {
		if r.Type == typ {
			return true
		}
	}
	return false
}

// The runner hands the kernel's EgressDone to a PlaybackOutput and the
// turn commits only once the output posts playback_done (Post never
// waits on the loop); EgressPlayed gives egress credit back.
func TestRunnerAwaitsPlaybackOutput(t *testing.T) {
	pools := &fakePools{opens: make(chan openRec, 8)}
	tl := &Collector{}
	out := &fakePlaybackOutput{ended: make(chan string, 1)}
	s := openLive(t, pools, out, tl)
	if err := s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechStart}); err != nil {
		t.Fatal(err)
	}
	o := nextOpen(t, pools)
	if err := s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechEnd}); err != nil {
		t.Fatal(err)
	}
	turn := s.ActiveTurn()
	o.h.OnEvent(eventabi.Event{Type: eventabi.TypeAudioFrame, Audio: &eventabi.Audio{PCM: make([]byte, 640), SampleRate: 16000, Channels: 1}})
	o.h.OnEnd(nil)
	var ended string
	select {
	case ended = <-out.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("no EndOfTurn")
	}
	if ended != turn || hasRecord(tl, "turn_commit") || s.ActiveTurn() != turn {
		t.Fatalf("ended %q (turn %q); committed early: %v", ended, turn, hasRecord(tl, "turn_commit"))
	}
	s.EgressPlayed(turn, 1)
	if !s.Post(eventabi.Event{Type: eventabi.TypePlaybackDone, TurnID: turn}) {
		t.Fatal("post refused by an open session")
	}
	select {
	case <-s.Idle():
	case <-time.After(10 * time.Second):
		t.Fatal("turn did not end after playback_done")
	}
	if !hasRecord(tl, "turn_commit") || !hasRecord(tl, "playback_done") {
		t.Fatalf("records: %v", tl.Records())
	}
	// A posted signal the kernel refuses is counted, not lost silently.
	s.Post(eventabi.Event{Type: eventabi.TypePlaybackDone})
	deadline := time.Now().Add(10 * time.Second)
	for s.postRefused.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if s.postRefused.Load() != 1 {
		t.Fatalf("PostRefused %d", s.postRefused.Load())
	}
}

// An Output that cannot play in real time has played everything: the
// runner answers EgressDone itself and the turn commits.
func TestRunnerPlainOutputCommitsLiveTurn(t *testing.T) {
	pools := &fakePools{opens: make(chan openRec, 8)}
	tl := &Collector{}
	s := openLive(t, pools, &fakeOutput{}, tl)
	s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechStart})
	o := nextOpen(t, pools)
	s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechEnd})
	o.h.OnEnd(nil)
	select {
	case <-s.Idle():
	case <-time.After(10 * time.Second):
		t.Fatal("turn did not end")
	}
	if !hasRecord(tl, "turn_commit") {
		t.Fatalf("records: %v", tl.Records())
	}
}

// fakeOutput is a plain Output that keeps nothing.
type fakeOutput struct{}

func (fakeOutput) Send(eventabi.Event) error { return nil }
func (fakeOutput) Fence(string, string)      {}
