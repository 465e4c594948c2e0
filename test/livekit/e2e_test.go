package livekit

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/livekit/lkclient"
)

func hasTurn(state string) func([]lkclient.Received) bool {
	return func(ms []lkclient.Received) bool {
		return slices.ContainsFunc(ms, func(m lkclient.Received) bool { return m.Type == "turn" && m.State == state })
	}
}

func hasType(typ string) func([]lkclient.Received) bool {
	return func(ms []lkclient.Received) bool {
		return slices.ContainsFunc(ms, func(m lkclient.Received) bool { return m.Type == typ })
	}
}

// agentPCM is the agent audio received, concatenated.
func agentPCM(fs []lkclient.Frame) []byte {
	var b []byte
	for _, f := range fs {
		b = append(b, f.PCM...)
	}
	return b
}

// checkTerminals: every turn of the timeline has exactly one terminal.
func checkTerminals(t *testing.T, timeline string) int {
	t.Helper()
	recs, err := testenv.ReadTimeline(timeline)
	if err != nil {
		t.Fatal(err)
	}
	turns := testenv.Turns(recs)
	for _, tu := range turns {
		if tu.Commits+tu.Aborts != 1 {
			t.Errorf("session %s turn %s: %d commits, %d aborts (want exactly one terminal)", tu.Session, tu.Turn, tu.Commits, tu.Aborts)
		}
	}
	return len(turns)
}

// TestAgentHearsAndReplies: a participant joins a room the agent was
// dispatched to, says a phrase of the demo grammar over WebRTC, and hears
// the agent's spoken reply, which pocketsphinx decodes to the expected
// text; the timeline has one terminal per turn.
func TestAgentHearsAndReplies(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	w := startWorker(t, "e2e")
	room := "e2e-hello"
	if err := dispatch(ctx, room, "e2e"); err != nil {
		t.Fatal(err)
	}
	c := join(t, room, "alice", lkclient.Options{})
	if _, err := c.WaitFor(ctx, 30*time.Second, hasType("ready")); err != nil {
		t.Fatalf("agent session not ready: %v", err)
	}
	pcm, err := speechtest.Synthesize(ctx, "what time is it")
	if err != nil {
		t.Fatal(err)
	}
	c.Say(pcm)
	ms, err := c.WaitFor(ctx, 60*time.Second, hasTurn("commit"))
	if err != nil {
		t.Fatalf("no committed turn: %v", err)
	}
	voiceEnd := c.VoiceEnd()
	frames := c.Frames()
	if len(frames) == 0 {
		t.Fatalf("no agent audio received; messages: %s", lkclient.Summary(ms))
	}
	first, ok := firstVoiced(frames, voiceEnd)
	if !ok {
		t.Fatalf("no audible agent audio after the end of speech; messages: %s", lkclient.Summary(ms))
	}
	t.Logf("agent audio: %d frames (%.2f s); first audible audio %s after the end of speech", len(frames),
		float64(len(agentPCM(frames)))/32000, first.At.Sub(voiceEnd).Round(time.Millisecond))
	root := testenv.MustModuleRoot(t)
	got, err := speechtest.DecodePCM(ctx, agentPCM(frames), filepath.Join(root, "examples", "replies.jsgf"))
	if err != nil {
		t.Fatal(err)
	}
	if got != "it is time to test" {
		t.Errorf("agent said %q, want %q; messages: %s", got, "it is time to test", lkclient.Summary(ms))
	}
	if !slices.ContainsFunc(ms, func(m lkclient.Received) bool { return m.Type == "transcript" && m.Text == "what time is it" }) {
		t.Errorf("no transcript %q among messages: %s", "what time is it", lkclient.Summary(ms))
	}
	c.Close()
	if _, err := w.WaitOutput(30*time.Second, "livekit session closed"); err != nil {
		t.Error(err)
	}
	_ = w.Stop(30 * time.Second)
	if n := checkTerminals(t, w.Timeline); n < 1 {
		t.Errorf("timeline has %d turns, want >= 1", n)
	}
}
