package kernel

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel/eventabi"
)

func livePlayback(c *SessionConfig) { c.AwaitPlayback = true }

func playbackDone(turn string) eventabi.Event {
	return eventabi.Event{Type: eventabi.TypePlaybackDone, TurnID: turn}
}

// produced drives a turn until every invocation ended OK (tts emitted n
// audio frames) and returns the turn id.
func (h *harness) produced(n int) string {
	h.t.Helper()
	h.utterance(10)
	turn := h.s.ActiveTurn()
	stt, llm, tts := h.inv("stt"), h.inv("llm"), h.inv("tts")
	h.must(h.emitOut(stt, text(eventabi.TypeTranscriptFinal, "hello")))
	h.end(stt, nil, "")
	h.must(h.emitOut(llm, text(eventabi.TypeTextFinal, "hi there")))
	h.end(llm, nil, "")
	for range n {
		h.must(h.emitOut(tts, loud()))
	}
	h.end(tts, nil, "")
	return turn
}

// A live turn does not commit when its invocations end: EgressDone goes
// out behind its last audio, and playback_done commits it.
func TestAwaitPlaybackCommitsOnPlaybackDone(t *testing.T) {
	h := newHarness(t, livePlayback)
	turn := h.produced(5)
	if h.s.ActiveTurn() != turn || len(h.find("turn_commit")) != 0 {
		t.Fatalf("committed before playback: %v", h.recordTypes())
	}
	lastEgress, done := -1, -1
	for i, e := range h.effects {
		switch e := e.(type) {
		case EgressEvent:
			lastEgress = i
		case EgressDone:
			if e.TurnID != turn || done >= 0 {
				t.Fatalf("EgressDone %+v (second: %v)", e, done >= 0)
			}
			done = i
		}
	}
	if done < 0 || done < lastEgress {
		t.Fatalf("EgressDone at %d, last egress at %d", done, lastEgress)
	}
	h.must(h.ingest(playbackDone(turn)))
	if len(h.find("turn_commit")) != 1 || h.s.ActiveTurn() != "" {
		t.Fatalf("no commit after playback_done: %v", h.recordTypes())
	}
	types := h.recordTypes()
	for _, want := range [][2]string{{"speech_end", "playback_done"}, {"playback_done", "turn_commit"}} {
		if i, j := slices.Index(types, want[0]), slices.Index(types, want[1]); i < 0 || j < 0 || i > j {
			t.Fatalf("%s before %s: %v", want[0], want[1], types)
		}
	}
	// A repeated or late playback_done changes nothing.
	h.must(h.ingest(playbackDone(turn)))
	if len(h.find("turn_commit")) != 1 {
		t.Fatal("second commit")
	}
	if err := checkTimeline(h.records(), true); err != nil {
		t.Fatal(err)
	}
}

// Speech while the turn's audio plays is a barge-in: the turn aborts
// (barge_in) and is fenced, exactly one terminal; playback_done for it
// afterwards is refused as post-fence; the new utterance opens its turn.
func TestAwaitPlaybackBargeInDuringPlayback(t *testing.T) {
	h := newHarness(t, livePlayback)
	turn := h.produced(50)
	h.frames(5, loud) // the user talks over the agent
	aborts := h.find("turn_abort")
	if len(aborts) != 1 || aborts[0].TurnID != turn || aborts[0].Reason != "barge_in" {
		t.Fatalf("aborts %+v: %v", aborts, h.recordTypes())
	}
	if count(h.effects, func(f FenceEgress) bool { return f.TurnID == turn }) != 1 {
		t.Fatalf("turn not fenced once: %v", h.recordTypes())
	}
	if err := h.ingest(playbackDone(turn)); !errors.Is(err, ErrFenced) {
		t.Fatalf("playback_done after fence: %v", err)
	}
	if len(h.find("turn_commit")) != 0 {
		t.Fatal("fenced turn committed")
	}
	next := h.s.ActiveTurn()
	if next == "" || next == turn {
		t.Fatalf("barge-in opened no new turn: %v", h.recordTypes())
	}
	if open := h.find("turn_open"); open[len(open)-1].Attrs["barge_in"] != "true" {
		t.Fatalf("new turn not marked barge_in: %+v", open[len(open)-1])
	}
	if err := checkFence(h.effects); err != nil {
		t.Fatal(err)
	}
	h.s.Close("end")
	h.drain()
	if err := checkTimeline(h.records(), true); err != nil {
		t.Fatal(err)
	}
}

// Without AwaitPlayback (the file transport) nothing changes: the turn
// commits when its invocations end, no EgressDone, no speech_end record.
func TestWithoutAwaitPlaybackTurnCommitsAtEnd(t *testing.T) {
	h := newHarness(t, nil)
	h.produced(5)
	if len(h.find("turn_commit")) != 1 || count[EgressDone](h.effects, nil) != 0 || len(h.find("speech_end")) != 0 {
		t.Fatalf("offline session changed: %v", h.recordTypes())
	}
}

// A transport that never reports playback_done cannot hold a turn open
// for ever: past the audio's duration plus the grace it aborts, fenced.
func TestAwaitPlaybackTimeout(t *testing.T) {
	h := newHarness(t, func(c *SessionConfig) { c.AwaitPlayback = true; c.PlaybackGrace = time.Second })
	turn := h.produced(50) // 1 s of audio
	h.clk.Advance(1900 * time.Millisecond)
	h.s.Tick()
	h.drain()
	if len(h.find("turn_abort")) != 0 {
		t.Fatalf("aborted before audio + grace: %v", h.recordTypes())
	}
	h.clk.Advance(200 * time.Millisecond)
	h.s.Tick()
	h.drain()
	aborts := h.find("turn_abort")
	if len(aborts) != 1 || aborts[0].TurnID != turn || aborts[0].Reason != "playback_timeout" {
		t.Fatalf("aborts %+v", aborts)
	}
	if count(h.effects, func(f FenceEgress) bool { return f.TurnID == turn }) != 1 {
		t.Fatal("timed-out turn not fenced")
	}
	if err := checkTimeline(h.records(), true); err != nil {
		t.Fatal(err)
	}
}

// Closing the session while the turn waits for playback aborts it once.
func TestAwaitPlaybackSessionCloseAbortsOnce(t *testing.T) {
	h := newHarness(t, livePlayback)
	turn := h.produced(5)
	h.s.Close("connection_lost")
	h.drain()
	aborts := h.find("turn_abort")
	if len(aborts) != 1 || aborts[0].TurnID != turn || aborts[0].Reason != "session_close" {
		t.Fatalf("aborts %+v", aborts)
	}
	if c := h.find("session_close"); len(c) != 1 || c[0].Reason != "connection_lost" {
		t.Fatalf("session_close %+v", c)
	}
	if err := checkTimeline(h.records(), true); err != nil {
		t.Fatal(err)
	}
}

// A turn with no egress audio still waits for the transport's word (the
// transport answers at once when it holds nothing of it).
func TestAwaitPlaybackNoAudio(t *testing.T) {
	h := newHarness(t, livePlayback)
	turn := h.produced(0)
	if count(h.effects, func(d EgressDone) bool { return d.TurnID == turn }) != 1 || len(h.find("turn_commit")) != 0 {
		t.Fatalf("%v", h.recordTypes())
	}
	h.must(h.ingest(playbackDone(turn)))
	if len(h.find("turn_commit")) != 1 {
		t.Fatal("no commit")
	}
}

func smallEgress(c *SessionConfig) {
	c.AwaitPlayback = true
	for i := range c.Graph.Edges {
		if c.Graph.Edges[i].To == Egress {
			c.Graph.Edges[i].Capacity = 4
		}
	}
}

// Live egress is credit-based: what the transport holds unplayed counts
// against the egress edge, so a burst beyond it holds the producer back
// (ErrQueueFull) instead of being shed; played frames give the room back;
// the turn's end (here a fence) frees what it still held.
func TestAwaitPlaybackEgressCredit(t *testing.T) {
	h := newHarness(t, smallEgress)
	h.utterance(10)
	turn := h.s.ActiveTurn()
	tts := h.inv("tts")
	for i := range 4 {
		if err := h.emitOut(tts, loud()); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if err := h.emitOut(tts, loud()); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("5th frame with 4 unplayed: %v", err)
	}
	h.s.OnEgressPlayed(turn, 2)
	for i := range 2 {
		if err := h.emitOut(tts, loud()); err != nil {
			t.Fatalf("after 2 played, frame %d: %v", i, err)
		}
	}
	if err := h.emitOut(tts, loud()); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("full again: %v", err)
	}
	if n := count[EgressEvent](h.effects, nil); n != 6 || h.s.Stats().Shed != 0 {
		t.Fatalf("%d egress events, %d shed", n, h.s.Stats().Shed)
	}
	h.frames(5, loud) // barge-in: the fence frees the turn's credit
	next := h.s.ActiveTurn()
	if next == turn || next == "" {
		t.Fatalf("no new turn: %v", h.recordTypes())
	}
	h.s.OnEgressPlayed(turn, 4) // late report of the fenced turn: ignored
	h.frames(15, quiet)
	tts2 := h.inv("tts")
	for i := range 4 {
		if err := h.emitOut(tts2, loud()); err != nil {
			t.Fatalf("next turn frame %d: %v", i, err)
		}
	}
}

// Without AwaitPlayback the egress edge frees at hand-out, as before.
func TestEgressWithoutAwaitPlaybackNeverHolds(t *testing.T) {
	h := newHarness(t, func(c *SessionConfig) {
		smallEgress(c)
		c.AwaitPlayback = false
	})
	h.utterance(10)
	tts := h.inv("tts")
	for i := range 20 {
		if err := h.emitOut(tts, loud()); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
}
