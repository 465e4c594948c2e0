package providers

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/session"
	"github.com/rspp/rspp/test/testenv"
)

// turnAudio keeps each turn's agent audio apart, so each reply can be
// decoded on its own.
type turnAudio struct {
	mu  sync.Mutex
	pcm map[string][]byte
}

func (o *turnAudio) Send(ev eventabi.Event) error {
	if ev.Audio != nil {
		o.mu.Lock()
		o.pcm[ev.TurnID] = append(o.pcm[ev.TurnID], ev.Audio.PCM...)
		o.mu.Unlock()
	}
	return nil
}

func (o *turnAudio) Fence(string, string) {}

// scriptDir is a directory the plugins' unprivileged uids can execute
// from, removed when the test ends.
func scriptDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rspp-broken-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

var phrases = []struct{ said, reply string }{
	{"what time is it", "it is time to test"},
	{"hello there", "hello how can i help you"},
	{"tell me a joke", "the computer went to sleep"},
}

// speakTurns runs one session of the pipeline in p through an in-process
// runtime, one turn per phrase, and checks every reply decodes from that
// turn's own audio. It returns the timeline.
func speakTurns(t *testing.T, p pipeline) []testenv.Record {
	t.Helper()
	path := writeConfig(t, t.TempDir(), p)
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
	out := &turnAudio{pcm: map[string][]byte{}}
	tl := &session.Collector{}
	sess, err := rt.OpenSession(supervisor.SessionOptions{ID: "switch-1", Output: out, Timeline: tl})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close("test_end")
	grammar := filepath.Join(testenv.MustModuleRoot(t), "examples", "replies.jsgf")
	var turns []string
	for _, ph := range phrases {
		pcm, err := speechtest.Synthesize(ctx, ph.said)
		if err != nil {
			t.Fatal(err)
		}
		feed(t, sess, pcm, 75)
		turn := sess.ActiveTurn()
		select {
		case <-sess.Idle():
		case <-time.After(60 * time.Second):
			t.Fatalf("turn for %q never ended; timeline %+v", ph.said, tl.Records())
		}
		if turn == "" {
			t.Fatalf("no turn opened for %q", ph.said)
		}
		turns = append(turns, turn)
	}
	sess.Close("test_end")
	recs := tl.Records()
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Fatal(err)
	}
	for i, turn := range turns {
		out.mu.Lock()
		pcm := out.pcm[turn]
		out.mu.Unlock()
		heard, err := speechtest.DecodePCM(ctx, pcm, grammar)
		if err != nil {
			t.Fatal(err)
		}
		if heard != phrases[i].reply {
			t.Errorf("turn %s (%q): reply decodes as %q, want %q", turn, phrases[i].said, heard, phrases[i].reply)
		}
	}
	for _, o := range testenv.Turns(recs) {
		if o.Commits != 1 {
			t.Errorf("turn %s did not commit: %+v", o.Turn, o)
		}
	}
	return recs
}

// espeak's plugin is killed on every start (its binary kills itself): the
// runtime still starts, and every turn binds flite instead, the timeline
// naming the switch and why (circuit open: failed to start).
func TestEspeakKilledOnEveryStartEveryTurnSpokenByFlite(t *testing.T) {
	speechtest.Require(t)
	requireFlite(t)
	broken := writeScript(t, scriptDir(t), "espeak", "kill -9 $$\n")
	recs := speakTurns(t, pipeline{TTS: "[espeak, flite]", Espeak: broken})
	opens := ofType(recs, "turn_open")
	switches := ofType(recs, "provider_switch")
	if len(opens) != len(phrases) || len(switches) != len(phrases) {
		t.Fatalf("%d turns, %d provider_switch records, want %d each", len(opens), len(switches), len(phrases))
	}
	for i, o := range opens {
		if !strings.HasPrefix(o.Attrs["binding.tts"], "flite@") || !strings.HasPrefix(o.Attrs["providers.tts"], "espeak@!down,flite@") {
			t.Errorf("turn_open %d attrs %v", i, o.Attrs)
		}
		sw := switches[i]
		if sw.TurnID != o.TurnID || sw.NodeID != "tts" || sw.Attrs["policy"] != "switch" || sw.Attrs["why"] != "circuit_open" ||
			!strings.HasPrefix(sw.Attrs["to"], "flite@") || !strings.Contains(sw.Reason, "espeak: failed to start") {
			t.Errorf("provider_switch %d: %+v", i, sw)
		}
	}
	t.Logf("switch: %s", switches[0].Reason)
}

// espeak's plugin starts, but its engine (espeak-ng) is killed on every
// synthesis: each turn's tts invocation fails typed, and the turn falls
// back to flite, the timeline naming the fallback and why.
func TestEspeakEngineKilledEveryTurnFallsBackToFlite(t *testing.T) {
	speechtest.Require(t)
	requireFlite(t)
	real, err := exec.LookPath("espeak-ng")
	if err != nil {
		t.Skip(err)
	}
	// The voice check at configure time speaks empty text: let that through.
	engine := writeScript(t, scriptDir(t), "espeak-ng", `last=""
for a in "$@"; do last="$a"; done
if [ -z "$last" ]; then exec `+real+` "$@"; fi
kill -9 $$
`)
	recs := speakTurns(t, pipeline{TTS: "[espeak, flite]", EspeakEngine: engine})
	opens := ofType(recs, "turn_open")
	switches := ofType(recs, "provider_switch")
	if len(opens) != len(phrases) || len(switches) != len(phrases) {
		t.Fatalf("%d turns, %d provider_switch records, want %d each", len(opens), len(switches), len(phrases))
	}
	for i, sw := range switches {
		if sw.TurnID != opens[i].TurnID || sw.Attrs["policy"] != "fallback" || sw.Attrs["why"] != "failed" ||
			!strings.HasPrefix(sw.Attrs["from"], "espeak@") || !strings.HasPrefix(sw.Attrs["to"], "flite@") || !strings.Contains(sw.Reason, "espeak-ng") {
			t.Errorf("provider_switch %d: %+v", i, sw)
		}
	}
	t.Logf("fallback: %s", switches[0].Reason)
}

// The plan resolver refuses, at start, a provider whose declared
// capabilities cannot serve its node: flite speaks English only, the node
// requires German. It is a config error naming both (exit 2), and nothing
// is left running.
func TestProviderThatCannotServeTheNodeIsAConfigError(t *testing.T) {
	speechtest.Require(t)
	requireFlite(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, pipeline{TTS: "[espeak, flite]", TTSExtra: ", requires: {language: de}"})
	in := utterances(t, dir, "hello there")
	stdout, stderr, code := rsppRun(t, dir, cfg, in)
	if code != 2 {
		t.Fatalf("exit %d, want 2\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"pipeline.nodes[2].provider", "provider flite", "cannot serve node tts", "requires language de, it serves en"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if left := testenv.ProcsUnder(bins.Dir); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
}

// A provider of a list that failed to start is tried again every restart
// cooldown; once it starts, turns bind it again (no switch).
func TestDownProviderIsRetriedAndBoundAgain(t *testing.T) {
	speechtest.Require(t)
	requireFlite(t)
	dir := scriptDir(t)
	ok := filepath.Join(dir, "ok")
	broken := writeScript(t, dir, "espeak", "if [ -f "+ok+" ]; then exec "+bins.Provider["espeak"]+` "$@"; fi`+"\nkill -9 $$\n")
	path := writeConfig(t, t.TempDir(), pipeline{TTS: "[espeak, flite]", Espeak: broken, EspeakCooldown: "500ms"})
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := supervisor.Start(context.Background(), cfg, supervisor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if b, _ := rt.Binding("espeak"); !strings.Contains(b.Down, "failed to start") {
		t.Fatalf("espeak binding %+v, want down", b)
	}
	if err := os.WriteFile(ok, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, bound := rt.Binding("espeak")
		if bound && b.Down == "" && b.Pool != "" {
			t.Logf("espeak up again: %s@%s (%s)", b.Provider, b.Version, b.Pool)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("espeak never came up: %+v", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	tl := &session.Collector{}
	sess, err := rt.OpenSession(supervisor.SessionOptions{ID: "back-1", Output: discard{}, Timeline: tl})
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := speechtest.Synthesize(context.Background(), "hello there")
	if err != nil {
		t.Fatal(err)
	}
	feed(t, sess, pcm, 75)
	select {
	case <-sess.Idle():
	case <-time.After(30 * time.Second):
		t.Fatal("turn never ended")
	}
	sess.Close("test_end")
	recs := tl.Records()
	open := ofType(recs, "turn_open")
	if len(open) != 1 || !strings.HasPrefix(open[0].Attrs["binding.tts"], "espeak@") || len(ofType(recs, "provider_switch")) != 0 {
		t.Fatalf("turn_open %+v, switches %+v", open, ofType(recs, "provider_switch"))
	}
}
