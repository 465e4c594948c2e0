package providers

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/providers/openai/openaitest"
	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/session"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/wav"
)

const testKey = "sk-rspp-test-0123456789-secret"

// The example pipeline with the openai provider as its LLM, against a
// local OpenAI-compatible server that streams at a realistic pace and
// wants a key: the reply is spoken (the output decodes to it), the server
// got the key from the variable the config names, and the key appears
// nowhere in the timeline or the output.
func TestOpenAIPipelineSpeaksTheReply(t *testing.T) {
	speechtest.Require(t)
	s := replyServer(t)
	s.Key = testKey
	dir := t.TempDir()
	cfg := writeConfig(t, dir, pipeline{LLM: "openai", BaseURL: s.BaseURL, KeyEnv: "RSPP_TEST_OPENAI_KEY"})
	in := utterances(t, dir, "what time is it")
	stdout, stderr, code := rsppRun(t, dir, cfg, in, "RSPP_TEST_OPENAI_KEY="+testKey)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "reply:      it is time to test") || !strings.Contains(stdout, "1 committed, 0 aborted") {
		t.Fatalf("stdout:\n%s", stdout)
	}
	heard := decodeFile(t, filepath.Join(dir, "out.wav"))
	if heard != "it is time to test" {
		t.Fatalf("agent audio decodes as %q", heard)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Auth != "Bearer "+testKey || reqs[0].Messages[0].Role != "system" || reqs[0].Messages[1].Content != "what time is it" {
		t.Fatalf("requests %+v", reqs)
	}
	recs := timeline(t, dir)
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "timeline.jsonl"))
	for what, text := range map[string]string{"timeline": string(raw), "stdout": stdout, "stderr": stderr} {
		if strings.Contains(text, testKey) {
			t.Errorf("the API key shows in the %s", what)
		}
	}
	if open := ofType(recs, "turn_open"); len(open) != 1 || !strings.HasPrefix(open[0].Attrs["binding.llm"], "openai@") {
		t.Errorf("turn_open %+v", open)
	}
}

// Each fault of the endpoint ends in its documented outcome (see
// providers/openai/README.md): 429 with Retry-After and 500 are retried
// and the reply is spoken; a stream that stalls after text, or carries a
// malformed chunk, fails the llm invocation typed (upstream_timeout,
// upstream_error) and the turn aborts naming the node; a wrong key fails
// as auth without a retry.
func TestOpenAIFaultOutcomes(t *testing.T) {
	speechtest.Require(t)
	for _, tc := range []struct {
		name     string
		fault    openaitest.Fault
		key      string
		spoken   bool
		code     string // the invocation_fail code when not spoken
		requests int
	}{
		{name: "429 Retry-After", fault: openaitest.Fault{Kind: openaitest.Status, Status: 429, RetryAfter: 400 * time.Millisecond}, spoken: true, requests: 2},
		{name: "500", fault: openaitest.Fault{Kind: openaitest.Status, Status: 500}, spoken: true, requests: 2},
		{name: "stalled stream", fault: openaitest.Fault{Kind: openaitest.Stall, After: 2}, code: "upstream_timeout", requests: 1},
		{name: "malformed chunk", fault: openaitest.Fault{Kind: openaitest.Malformed, After: 2}, code: "upstream_error", requests: 1},
		{name: "wrong key", key: "sk-wrong", code: "auth", requests: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := replyServer(t)
			s.Key = testKey
			s.Script(tc.fault)
			dir := t.TempDir()
			cfg := writeConfig(t, dir, pipeline{LLM: "openai", BaseURL: s.BaseURL, KeyEnv: "RSPP_TEST_OPENAI_KEY", StallTimeout: "500ms"})
			in := utterances(t, dir, "what time is it")
			key := testKey
			if tc.key != "" {
				key = tc.key
			}
			stdout, stderr, code := rsppRun(t, dir, cfg, in, "RSPP_TEST_OPENAI_KEY="+key)
			if code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			if got := len(s.Requests()); got != tc.requests {
				t.Errorf("%d requests, want %d", got, tc.requests)
			}
			recs := timeline(t, dir)
			if err := testenv.CheckTerminals(recs); err != nil {
				t.Fatal(err)
			}
			if tc.spoken {
				if heard := decodeFile(t, filepath.Join(dir, "out.wav")); heard != "it is time to test" || !strings.Contains(stdout, "1 committed") {
					t.Fatalf("agent audio decodes as %q\nstdout:\n%s", heard, stdout)
				}
				return
			}
			fails := ofType(recs, "invocation_fail")
			if len(fails) != 1 || fails[0].NodeID != "llm" || fails[0].Attrs["code"] != tc.code {
				t.Fatalf("invocation_fail %+v, want one of llm with code %s", fails, tc.code)
			}
			turns := testenv.Turns(recs)
			if len(turns) != 1 || turns[0].Aborts != 1 || !strings.Contains(turns[0].AbortReasons[0], "node llm") {
				t.Fatalf("turns %+v", turns)
			}
			t.Logf("abort: %s", turns[0].AbortReasons[0])
		})
	}
}

// A cancel of the turn while the reply streams (the kernel's cancel of
// the llm invocation, carried to the plugin on the control path) closes
// the upstream HTTP stream: the server sees its client go away. The time
// from the cancel to the server seeing it is printed (a figure, not an
// assert: the machine is shared; make bench has it too).
func TestOpenAICancelClosesUpstream(t *testing.T) {
	speechtest.Require(t)
	s := replyServer(t)
	s.TokenDelay = 200 * time.Millisecond
	s.Reply = func(string) string { return strings.Repeat("and then some more words ", 40) }
	dir := t.TempDir()
	path := writeConfig(t, dir, pipeline{LLM: "openai", BaseURL: s.BaseURL})
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
	var mu sync.Mutex
	deltas := 0
	streaming := make(chan struct{})
	tl := &session.Collector{}
	sess, err := rt.OpenSession(supervisor.SessionOptions{ID: "cancel-1", Timeline: tl, Output: discard{},
		Observe: func(node string, ev eventabi.Event) {
			if node != "llm" || ev.Type != eventabi.TypeTextDelta {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if deltas++; deltas == 3 {
				close(streaming)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close("test_end")
	pcm, err := speechtest.Synthesize(ctx, "what time is it")
	if err != nil {
		t.Fatal(err)
	}
	feed(t, sess, pcm, 75)
	select {
	case <-streaming:
	case <-time.After(30 * time.Second):
		t.Fatalf("the reply never streamed; timeline %+v", tl.Records())
	}
	turn := sess.ActiveTurn()
	cancelAt := time.Now()
	if err := sess.Ingest(eventabi.Event{Type: eventabi.TypeCancel, Lane: eventabi.LaneControl, SchemaVersion: eventabi.SchemaVersion,
		Control: &eventabi.Control{Scope: "turn", Reason: "test_cancel"}, TurnID: turn}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-s.Closed():
		took := c.At.Sub(cancelAt)
		t.Logf("cancel -> upstream stream closed, seen by the server: %s (after %d of 200 tokens)", took, c.Tokens)
		if took > 2*time.Second {
			t.Errorf("the close took %s", took) // generous: a stuck close, not a slow machine
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server never saw the stream close after the cancel")
	}
	select {
	case <-sess.Idle():
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled turn never ended")
	}
	recs := tl.Records()
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Fatal(err)
	}
	if turns := testenv.Turns(recs); len(turns) != 1 || turns[0].Aborts != 1 {
		t.Fatalf("turns %+v", turns)
	}
}

type discard struct{}

func (discard) Send(eventabi.Event) error { return nil }
func (discard) Fence(string, string)      {}

// feed ingests pcm as 20 ms frames, then silence frames (no pacing: the
// kernel's clock is the media time of the frames).
func feed(t *testing.T, sess *session.Session, pcm []byte, silence int) {
	t.Helper()
	var media int64
	frames := wav.Frames(pcm)
	for range silence {
		frames = append(frames, make([]byte, wav.FrameBytes))
	}
	for _, fr := range frames {
		if err := sess.Ingest(eventabi.Event{Type: eventabi.TypeAudioFrame, Lane: eventabi.LaneData, SchemaVersion: eventabi.SchemaVersion,
			MediaNanos: media, Audio: &eventabi.Audio{PCM: fr, SampleRate: 16000, Channels: 1}}); err != nil {
			t.Fatal(err)
		}
		media += int64(20 * time.Millisecond)
	}
}

func decodeFile(t *testing.T, path string) string {
	t.Helper()
	heard, err := speechtest.Decode(context.Background(), path, filepath.Join(testenv.MustModuleRoot(t), "examples", "replies.jsgf"))
	if err != nil {
		t.Fatal(err)
	}
	return heard
}

// The README's example with a real LLM endpoint is a valid config (with
// this run's binaries): provider list, requires and all.
func TestExampleOpenAIConfigLoads(t *testing.T) {
	root := testenv.MustModuleRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "examples", "voice-agent-openai.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(raw), "../bin/providers/", filepath.Join(bins.Dir, "providers")+"/")
	c, err := config.Parse([]byte(text), filepath.Join(root, "examples", "voice-agent-openai.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	g := c.Graph()
	if g.Nodes[1].Provider != "openai" || len(g.Nodes[2].Providers) != 2 || g.Nodes[2].Requires.Language != "en" {
		t.Fatalf("graph %+v", g.Nodes)
	}
}
