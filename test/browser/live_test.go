package browser

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/wav"
)

var (
	binsOnce sync.Once
	bins     testenv.Bins
	binsErr  error
	binsDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binsDir != "" {
		if left := testenv.ProcsUnder(binsDir); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "processes left behind: %v\n", left)
			code = 1
		}
		os.RemoveAll(binsDir)
	}
	os.Exit(code)
}

// realBins builds rspp and the providers once, for the tests that need them.
func realBins(t *testing.T) testenv.Bins {
	t.Helper()
	binsOnce.Do(func() {
		binsDir, binsErr = os.MkdirTemp("", "rspp-browser-bin-")
		if binsErr == nil {
			bins, binsErr = testenv.Build(binsDir)
		}
	})
	if binsErr != nil {
		t.Fatalf("building binaries: %v", binsErr)
	}
	return bins
}

// segment is a piece of the fake microphone's WAV: a phrase spoken by
// espeak-ng, or silence.
type segment struct {
	say     string
	silence time.Duration
}

// micWAV writes the fake microphone's input: the segments in order, at
// 48 kHz mono s16 (the form checked to work with Chromium's
// --use-file-for-fake-audio-capture). Chromium loops the file, so it
// should end in a silence longer than the test.
func micWAV(t *testing.T, dir string, segs ...segment) string {
	t.Helper()
	var pcm []byte
	for _, s := range segs {
		if s.say != "" {
			b, err := speechtest.Synthesize(context.Background(), s.say)
			if err != nil {
				t.Fatal(err)
			}
			pcm = append(pcm, b...)
		}
		pcm = append(pcm, make([]byte, int(s.silence.Seconds()*16000)*2)...)
	}
	in := filepath.Join(dir, "mic16k.wav")
	if err := wav.WriteFile(in, pcm); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "mic.wav")
	if msg, err := exec.Command("sox", "-D", in, "-r", "48000", "-c", "1", "-b", "16", out).CombinedOutput(); err != nil {
		t.Fatalf("sox: %v: %s", err, msg)
	}
	return out
}

// startServe starts `rspp serve --listen 127.0.0.1:0` on the config and
// waits until it serves the page; it is stopped (SIGINT, then killed after
// 30 s) and reaped when the test ends.
func startServe(t *testing.T, rspp, cfg, dir string) *testenv.Serve {
	t.Helper()
	s, err := testenv.StartServe(rspp, cfg, dir, "--listen", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(30 * time.Second); err != nil {
			t.Error(err)
		}
	})
	t.Logf("rspp serve at %s", s.URL())
	return s
}

// liveSetup is the shared part of the live tests: binaries, a config of the
// example pipeline (pocketsphinx, rules, espeak as plugin processes), the
// server and a browser whose microphone speaks mic.
type liveSetup struct {
	dir  string
	srv  *testenv.Serve
	ctx  context.Context
	root string
}

func newLive(t *testing.T, replies string, mic ...segment) *liveSetup {
	t.Helper()
	requireChromium(t)
	speechtest.Require(t)
	b := realBins(t)
	l := &liveSetup{dir: t.TempDir(), root: testenv.MustModuleRoot(t)}
	// Unix socket paths must stay short: t.TempDir's names are long.
	state, err := os.MkdirTemp("", "rs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	cfg, err := testenv.WriteConfig(l.dir, b, testenv.ConfigOptions{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	if replies != "" {
		// The example pipeline with other replies for the rules provider,
		// in a directory its unprivileged plugin user can read
		// (t.TempDir's are the test user's only).
		rdir, err := os.MkdirTemp("", "rspp-replies-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(rdir) })
		if err := os.Chmod(rdir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(rdir, "replies.yaml")
		if err := os.WriteFile(path, []byte(replies), 0o644); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ex := filepath.Join(l.root, "examples", "replies.yaml")
		if !bytes.Contains(raw, []byte(ex)) {
			t.Fatalf("config %s does not name %s", cfg, ex)
		}
		if err := os.WriteFile(cfg, bytes.ReplaceAll(raw, []byte(ex), []byte(path)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wavPath := micWAV(t, l.dir, mic...)
	l.srv = startServe(t, b.RSPP, cfg, l.dir)
	l.ctx = newBrowser(t, wavPath)
	if err := chromedp.Do(l.ctx, chromedp.Navigate(l.srv.URL()+"/"), chromedp.Click(chromedp.ID("start"))); err != nil {
		t.Fatal(err)
	}
	return l
}

// waitTurns polls the page's turns until cond holds.
func (l *liveSetup) waitTurns(t *testing.T, limit time.Duration, what string, cond func([]pageTurn) bool) []pageTurn {
	t.Helper()
	var turns []pageTurn
	waitFor(t, limit, what, func() bool {
		turns = pageTurns(t, l.ctx)
		return cond(turns)
	}, func() string {
		return fmt.Sprintf("page %+v; turns %s; server output:\n%s", pageState(t, l.ctx), describeTurns(turns), l.srv.Output())
	})
	return turns
}

func describeTurns(turns []pageTurn) string {
	var b strings.Builder
	for _, tr := range turns {
		var states []string
		for _, s := range tr.States {
			states = append(states, s.State+map[bool]string{true: "(" + s.Reason + ")", false: ""}[s.Reason != ""])
		}
		fmt.Fprintf(&b, "[%s %s %q -> %q: %d frames in, %d ms played, fence %v, done %v] ", tr.Turn, strings.Join(states, ","), tr.Transcript, tr.Reply, tr.FramesIn, tr.PlayedSamples/16, tr.Fence != nil, tr.Done)
	}
	return b.String()
}

// decodeReply writes the audio the page played of a turn to the output dir
// and decodes it against the replies grammar.
func (l *liveSetup) decodeReply(t *testing.T, turn, name string) string {
	t.Helper()
	pcm := playedPCM(t, l.ctx, turn)
	path := filepath.Join(outDir(t), name)
	if err := wav.WriteFile(path, pcm); err != nil {
		t.Fatal(err)
	}
	t.Logf("audio the page played of turn %s: %s (%d ms)", turn, path, len(pcm)/32)
	got, err := speechtest.DecodePCM(context.Background(), pcm, filepath.Join(l.root, "examples", "replies.jsgf"))
	if err != nil {
		t.Fatalf("decoding the played audio: %v", err)
	}
	return got
}

// finish saves the page's record of its turns, stops the page and the
// server and checks the server's timeline:
// every turn the page saw ended in exactly one terminal.
func (l *liveSetup) finish(t *testing.T) {
	t.Helper()
	// The page's record of the session, for a person to look at.
	raw := evaluate[[]byte](t, l.ctx, `window.rsppTest.turns()`)
	path := filepath.Join(outDir(t), "turns.json")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("the page's record of its turns: %s", path)
	_ = chromedp.Do(l.ctx, chromedp.Click(chromedp.ID("stop")))
	if err := l.srv.Stop(30 * time.Second); err != nil {
		t.Error(err)
	}
	recs, err := testenv.ReadTimeline(l.srv.Timeline)
	if err != nil {
		t.Fatalf("timeline: %v", err)
	}
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Error(err)
	}
}

// TestLiveTalk: a person (Chromium's fake microphone playing a spoken WAV)
// says "what time is it" to a real `rspp serve --listen` on the example
// pipeline. The page shows what was recognised and the reply, and the
// agent audio the page played decodes, with pocketsphinx, to that reply.
func TestLiveTalk(t *testing.T) {
	l := newLive(t, "", segment{silence: 1500 * time.Millisecond}, segment{say: "what time is it"}, segment{silence: 90 * time.Second})
	turns := l.waitTurns(t, 90*time.Second, "the reply to be played", func(ts []pageTurn) bool {
		for _, tr := range ts {
			if tr.Reply != "" && tr.Done && tr.PlayedSamples > 0 {
				return true
			}
		}
		return false
	})
	var tr *pageTurn
	for i := range turns {
		if turns[i].Reply != "" && turns[i].Done {
			tr = &turns[i]
			break
		}
	}
	time.Sleep(300 * time.Millisecond) // let the page draw
	screenshot(t, l.ctx, "talk.png")
	t.Logf("turns: %s", describeTurns(turns))

	if got := pageText(t, l.ctx, ".transcript"); !strings.Contains(got, "what time is it") {
		t.Errorf("the page shows the transcript %q, want %q", got, "what time is it")
	}
	if got := pageText(t, l.ctx, ".reply"); !strings.Contains(got, "it is time to test") {
		t.Errorf("the page shows the reply %q, want %q", got, "it is time to test")
	}
	if got := l.decodeReply(t, tr.Turn, "agent-played.wav"); got != "it is time to test" {
		t.Errorf("the agent audio the page played decodes as %q, want %q", got, "it is time to test")
	}
	if tr.FirstAudioMS != nil {
		t.Logf("first audio at the client (end of the user's speech -> first agent sample handed to the output): %.0f ms", *tr.FirstAudioMS)
	}
	st := pageState(t, l.ctx)
	if len(st.Errors) != 0 || st.Counts["afterFence"] != 0 || st.Counts["badAudio"] != 0 {
		t.Errorf("page status %+v", st)
	}
	l.finish(t)
}

// longReply is long enough (about 8 s spoken) that the user's second
// utterance lands while it plays, whatever the machine's load.
const bargeReplies = `default: sorry i did not understand
rules:
  - match: tell me a joke
    reply: the computer went to sleep because it had worked all day and all night and it was very tired of all the numbers
  - match: hello there
    reply: hello how can i help you
`

// TestLiveBargeIn: the fake microphone says "tell me a joke", and while
// the agent speaks its (long) reply, says "hello there". The agent's turn
// is fenced: the page played some of it, and not one sample of it after
// the fence; the next turn's reply is played and decodes to "hello how can
// i help you". The client-side barge-in latency is logged.
func TestLiveBargeIn(t *testing.T) {
	l := newLive(t, bargeReplies,
		segment{silence: 1500 * time.Millisecond},
		segment{say: "tell me a joke"},
		segment{silence: 3500 * time.Millisecond},
		segment{say: "hello there"},
		segment{silence: 90 * time.Second})
	turns := l.waitTurns(t, 120*time.Second, "a fenced turn and the next reply played", func(ts []pageTurn) bool {
		fenced, next := false, false
		for _, tr := range ts {
			if tr.Fence != nil && tr.Fence.AppliedAt != nil {
				fenced = true
			}
			if fenced && tr.Fence == nil && tr.Reply == "hello how can i help you" && tr.Done {
				next = true
			}
		}
		return fenced && next
	})
	time.Sleep(300 * time.Millisecond)
	screenshot(t, l.ctx, "barge-in.png")
	t.Logf("turns: %s", describeTurns(turns))

	var fenced, next *pageTurn
	for i := range turns {
		tr := &turns[i]
		if tr.Fence != nil && fenced == nil {
			fenced = tr
		}
		if tr.Fence == nil && tr.Reply == "hello how can i help you" {
			next = tr
		}
	}
	if fenced.PlayedSamples == 0 {
		t.Fatalf("the fenced turn %s played nothing before its fence: the user did not talk over the agent (turns: %s)", fenced.Turn, describeTurns(turns))
	}
	if n := len(fenced.States); n == 0 || fenced.States[n-1].State != "abort" || fenced.States[n-1].Reason != fenced.Fence.Reason {
		t.Errorf("fenced turn %s ends %+v in the page, want an abort for its fence's reason %q", fenced.Turn, fenced.States, fenced.Fence.Reason)
	}
	if fenced.SamplesAfter != 0 {
		t.Errorf("turn %s: %d samples handed to the output after the fence", fenced.Turn, fenced.SamplesAfter)
	}
	if fenced.FramesAfterFence != 0 {
		t.Errorf("turn %s: the server sent %d frames after its fence", fenced.Turn, fenced.FramesAfterFence)
	}
	if got := len(playedPCM(t, l.ctx, fenced.Turn)); got != 2*fenced.PlayedSamples {
		t.Errorf("turn %s: recorded %d bytes of played audio for %d samples", fenced.Turn, got, fenced.PlayedSamples)
	}
	t.Logf("fenced turn %s (%s): played %d ms, fence dropped %d buffered frames; %s", fenced.Turn, fenced.Fence.Reason, fenced.PlayedSamples/16, deref(fenced.Fence.Dropped), lastChunkVsFence(fenced))
	if bi := fenced.BargeIn; bi != nil {
		msg := fmt.Sprintf("barge-in at the client: user speech start -> fence message %.0f ms", bi.ToFenceMS)
		if bi.ToLastSampleMS != nil {
			msg += fmt.Sprintf(", -> last agent sample handed to the output %.0f ms", *bi.ToLastSampleMS)
		}
		t.Log(msg)
	} else {
		t.Errorf("turn %s: the page measured no barge-in (no user speech before the fence)", fenced.Turn)
	}
	if got := pageText(t, l.ctx, ".agent.fenced .note"); !strings.Contains(got, "interrupted") {
		t.Errorf("the page does not mark the interrupted reply: %q", got)
	}
	if got := l.decodeReply(t, next.Turn, "next-reply-played.wav"); got != "hello how can i help you" {
		t.Errorf("the next turn's played audio decodes as %q, want %q", got, "hello how can i help you")
	}
	l.finish(t)
}

func deref(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}
