package livekit

import (
	"context"
	"testing"
	"time"

	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/livekit/lkclient"
)

func synth(t *testing.T, text string) []byte {
	t.Helper()
	pcm, err := speechtest.Synthesize(context.Background(), text)
	if err != nil {
		t.Fatal(err)
	}
	return pcm
}

func findMsg(ms []lkclient.Received, pred func(lkclient.Received) bool) (lkclient.Received, bool) {
	for _, m := range ms {
		if pred(m) {
			return m, true
		}
	}
	return lkclient.Received{}, false
}

// bargeIn is what one barge-in measured at the participant.
type bargeIn struct {
	// Fence: the participant's first voiced frame of the barge-in ->
	// the fence message received.
	Fence time.Duration
	// LastAfterFence: the last agent audio of the fenced turn received,
	// relative to when the agent sent the fence (<= 0: none after it).
	LastAfterFence time.Duration
	// FramesAfter: audible agent frames of the fenced turn received
	// after the fence was sent.
	FramesAfter int
	// FirstAudio: the end of the first utterance -> its reply's first
	// audio received.
	FirstAudio time.Duration
}

// runBargeIn: the participant asks a question, and while the reply plays
// it speaks again. The first turn must be fenced and abort with barge_in;
// the second must commit with its reply played.
func runBargeIn(t *testing.T, c *lkclient.Client) bargeIn {
	t.Helper()
	ctx := context.Background()
	if _, err := c.WaitFor(ctx, 30*time.Second, hasType("ready")); err != nil {
		t.Fatalf("agent session not ready: %v", err)
	}
	c.Say(synth(t, "what is the weather like"))
	ms, err := c.WaitFor(ctx, 60*time.Second, hasType("audio_start"))
	if err != nil {
		t.Fatalf("no reply audio: %v", err)
	}
	firstEnd := c.VoiceEnd()
	as1, _ := findMsg(ms, func(m lkclient.Received) bool { return m.Type == "audio_start" })
	first := as1.Turn
	// Let some of the reply be heard (about 0.6 s), then talk over it.
	var firstAudio time.Duration
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if f, ok := firstVoiced(c.Frames(), firstEnd); ok {
			firstAudio = f.At.Sub(firstEnd)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audible reply within 10 s of its audio_start: %s", lkclient.Summary(c.Messages()))
		}
	}
	time.Sleep(600 * time.Millisecond)
	c.Say(synth(t, "hello there"))
	ms, err = c.WaitFor(ctx, 90*time.Second, func(ms []lkclient.Received) bool {
		_, ok := findMsg(ms, func(m lkclient.Received) bool { return m.Type == "turn" && m.State == "commit" && m.Turn != first })
		return ok
	})
	if err != nil {
		t.Fatalf("no second commit: %v", err)
	}
	fence, ok := findMsg(ms, func(m lkclient.Received) bool { return m.Type == "fence" && m.Turn == first })
	if !ok || fence.Reason != "barge_in" {
		t.Fatalf("no barge_in fence for turn %s: %s", first, lkclient.Summary(ms))
	}
	if ab, ok := findMsg(ms, func(m lkclient.Received) bool { return m.Type == "turn" && m.Turn == first && m.State == "abort" }); !ok || ab.Reason != "barge_in" {
		t.Fatalf("turn %s did not abort with barge_in: %s", first, lkclient.Summary(ms))
	}
	if _, ok := findMsg(ms, func(m lkclient.Received) bool { return m.Type == "turn" && m.Turn == first && m.State == "commit" }); ok {
		t.Fatalf("fenced turn %s committed: %s", first, lkclient.Summary(ms))
	}
	as2, ok := findMsg(ms, func(m lkclient.Received) bool { return m.Type == "audio_start" && m.Turn != first })
	if !ok {
		t.Fatalf("second turn played nothing: %s", lkclient.Summary(ms))
	}
	fenceSent := time.Unix(0, fence.SentUnixNano)
	nextSent := time.Unix(0, as2.SentUnixNano)
	var b bargeIn
	b.Fence = fence.At.Sub(c.VoiceStart())
	b.FirstAudio = firstAudio
	last := time.Time{}
	// Only audible frames count: the SFU itself sends Opus silence
	// frames on a track (at its start, and when it pauses).
	for _, f := range c.Frames() {
		if f.At.Before(nextSent) && lkclient.Voiced(f.PCM) {
			last = f.At
			if f.At.After(fenceSent) {
				b.FramesAfter++
			}
		}
	}
	b.LastAfterFence = last.Sub(fenceSent)
	return b
}

// TestBargeInOverWebRTC: the participant talks over the agent; the agent
// fences its turn, and the participant receives no audio of that turn
// later than one frame (20 ms) plus the network's delay after the fence.
func TestBargeInOverWebRTC(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	w := startWorker(t, "barge")
	room := "barge-1"
	if err := dispatch(ctx, room, "barge"); err != nil {
		t.Fatal(err)
	}
	c := join(t, room, "bob", lkclient.Options{})
	b := runBargeIn(t, c)
	t.Logf("barge-in over WebRTC: fence received %s after the participant's speech start; last frame of the fenced turn %s after the fence was sent (%d frames after it); first audio %s",
		b.Fence.Round(time.Millisecond), b.LastAfterFence.Round(100*time.Microsecond), b.FramesAfter, b.FirstAudio.Round(time.Millisecond))
	// One frame may be in flight when the fence falls (the writer admits
	// each frame against the gate before encoding it); more than that,
	// plus a generous allowance for this loaded machine's network path,
	// would be audio the fence failed to stop.
	if b.FramesAfter > 1 && b.LastAfterFence > 20*time.Millisecond+100*time.Millisecond {
		t.Errorf("%d frames of the fenced turn arrived after the fence, the last %s after it", b.FramesAfter, b.LastAfterFence)
	}
	c.Close()
	if _, err := w.WaitOutput(30*time.Second, "livekit session closed"); err != nil {
		t.Error(err)
	}
	_ = w.Stop(30 * time.Second)
	recs, err := testenv.ReadTimeline(w.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Fatal(err)
	}
}

// firstVoiced is the first audible agent frame received after t.
func firstVoiced(fs []lkclient.Frame, after time.Time) (lkclient.Frame, bool) {
	for _, f := range fs {
		if f.At.After(after) && lkclient.Voiced(f.PCM) {
			return f, true
		}
	}
	return lkclient.Frame{}, false
}
