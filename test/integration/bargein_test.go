package integration

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/session"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/wav"
)

// recordingOutput is a transport that logs, in order, every frame it is
// handed and every fence, so the test can check what reached the output
// after the fence. It never refuses anything itself: the guarantee under
// test is the runtime's, not this sink's.
type recordingOutput struct {
	mu   sync.Mutex
	log  []outEntry
	feed chan struct{}
}

type outEntry struct {
	fence bool
	turn  string
}

func (o *recordingOutput) Send(ev eventabi.Event) error {
	if ev.Audio == nil {
		return nil
	}
	o.mu.Lock()
	o.log = append(o.log, outEntry{turn: ev.TurnID})
	o.mu.Unlock()
	select {
	case o.feed <- struct{}{}:
	default:
	}
	return nil
}

func (o *recordingOutput) Fence(turn, _ string) {
	o.mu.Lock()
	o.log = append(o.log, outEntry{fence: true, turn: turn})
	o.mu.Unlock()
}

func (o *recordingOutput) framesOf(turn string) (before, after int, fenced bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range o.log {
		switch {
		case e.fence && e.turn == turn:
			fenced = true
		case !e.fence && e.turn == turn && fenced:
			after++
		case !e.fence && e.turn == turn:
			before++
		}
	}
	return
}

// Barge-in through real plugin subprocesses: while the agent's reply is
// streaming out (espeak paced in real time), the user speaks again. The
// agent's turn must abort as barge_in, be fenced, and not one more frame of
// it may reach the output; the new utterance gets its own, committed turn.
func TestBargeInFencesAgentAudio(t *testing.T) {
	speechtest.Require(t)
	dir := t.TempDir()
	state, err := os.MkdirTemp("", "rs")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(state)
	path, err := testenv.WriteConfig(dir, bins, testenv.ConfigOptions{StateDir: state, TTSRealtime: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt, err := supervisor.Start(ctx, cfg, supervisor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()

	first, err := speechtest.Synthesize(ctx, "tell me a joke")
	if err != nil {
		t.Fatal(err)
	}
	second, err := speechtest.Synthesize(ctx, "hello there")
	if err != nil {
		t.Fatal(err)
	}
	out := &recordingOutput{feed: make(chan struct{}, 1)}
	tl := &session.Collector{}
	sess, err := rt.OpenSession(supervisor.SessionOptions{ID: "barge-1", Output: out, Timeline: tl})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close("test_end")

	f := &feeder{sess: sess, t: t}
	f.play(first)
	// Silence, in real time, until the agent has been speaking for a while.
	deadline := time.Now().Add(20 * time.Second)
	for {
		turn := sess.ActiveTurn()
		if before, _, _ := out.framesOf(turn); turn != "" && before >= 15 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent never started speaking; timeline: %+v", tl.Records())
		}
		f.silence(1)
	}
	agentTurn := sess.ActiveTurn()
	f.play(second) // barge-in
	f.silence(60)  // 1.2 s: end of the second utterance is detected
	select {
	case <-sess.Idle():
	case <-time.After(30 * time.Second):
		t.Fatal("second turn never finished")
	}
	sess.Close("test_end")

	before, after, fenced := out.framesOf(agentTurn)
	t.Logf("agent turn %s: %d frames out before the fence, %d after", agentTurn, before, after)
	if !fenced {
		t.Fatalf("agent turn %s was never fenced", agentTurn)
	}
	if after != 0 {
		t.Fatalf("%d frames of the cancelled turn reached the output after the fence", after)
	}
	recs := tl.Records()
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Fatal(err)
	}
	turns := testenv.Turns(recs)
	if len(turns) != 2 {
		t.Fatalf("want 2 turns (the interrupted one and the barge-in), got %+v", turns)
	}
	if turns[0].Turn != agentTurn || turns[0].Aborts != 1 || turns[0].AbortReasons[0] != "barge_in" {
		t.Fatalf("agent turn not aborted as barge_in: %+v", turns[0])
	}
	if turns[1].Commits != 1 {
		t.Fatalf("barge-in turn did not commit: %+v", turns[1])
	}
	if b, _, _ := out.framesOf(turns[1].Turn); b == 0 {
		t.Fatal("the barge-in turn produced no audio")
	}
}

// feeder paces 20 ms frames in real time, as a microphone would.
type feeder struct {
	sess  *session.Session
	t     *testing.T
	media int64
	next  time.Time
}

func (f *feeder) frame(pcm []byte) {
	if f.next.IsZero() {
		f.next = time.Now()
	}
	if d := time.Until(f.next); d > 0 {
		time.Sleep(d)
	}
	f.next = f.next.Add(20 * time.Millisecond)
	err := f.sess.Ingest(eventabi.Event{Type: eventabi.TypeAudioFrame, Lane: eventabi.LaneData, SchemaVersion: eventabi.SchemaVersion,
		MediaNanos: f.media, Audio: &eventabi.Audio{PCM: pcm, SampleRate: 16000, Channels: 1}})
	if err != nil {
		f.t.Fatalf("ingest: %v", err)
	}
	f.media += int64(20 * time.Millisecond)
}

func (f *feeder) play(pcm []byte) {
	for _, fr := range wav.Frames(pcm) {
		f.frame(fr)
	}
}

func (f *feeder) silence(frames int) {
	for range frames {
		f.frame(make([]byte, wav.FrameBytes))
	}
}
