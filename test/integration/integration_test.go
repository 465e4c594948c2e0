package integration

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/testenv"
)

// The demo path: a spoken question in, the spoken reply out, decoded back
// to the expected text, with a complete lifecycle in the timeline.
func TestSpokenReplyRoundTrip(t *testing.T) {
	r := newRun(t, "what time is it", testenv.ConfigOptions{})
	r.start(t)
	if code := r.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("rspp exit %d\nstdout:\n%s\nstderr:\n%s", code, &r.stdout, &r.stderr)
	}
	out := r.stdout.String()
	for _, want := range []string{"recognised: what time is it", "reply:      it is time to test", "1 committed, 0 aborted"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	root, _ := testenv.ModuleRoot()
	heard, err := speechtest.Decode(context.Background(), r.out, filepath.Join(root, "examples", "replies.jsgf"))
	if err != nil {
		t.Fatal(err)
	}
	if heard != "it is time to test" {
		t.Fatalf("agent audio decodes as %q, want %q", heard, "it is time to test")
	}
	recs := r.records(t)
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Fatal(err)
	}
	var lifecycle []string
	for _, rec := range recs {
		// The header names no session; recorded inputs, the recording
		// layer's determinism records and the session driver's closing
		// session_stats carry no kernel seq.
		kernelRec := rec.Input == nil && rec.Type != "timeline_header" && rec.Type != "determinism" && rec.Type != "recording_level" && rec.Type != "session_stats"
		if rec.Type == "" || (rec.SessionID == "" && rec.Type != "timeline_header") || (kernelRec && rec.Seq == 0) {
			t.Errorf("timeline line without seq/session_id/type: %+v", rec)
		}
		if strings.HasPrefix(rec.Type, "turn_") {
			if rec.TurnID == "" {
				t.Errorf("%s without turn_id", rec.Type)
			}
			lifecycle = append(lifecycle, rec.Type)
		}
	}
	want := "turn_open turn_active turn_commit turn_close"
	if got := strings.Join(lifecycle, " "); got != want {
		t.Fatalf("lifecycle = %q, want %q", got, want)
	}
	r.assertNothingLeft(t)
}

// SIGKILL of any one provider mid-turn: rspp survives, the turn ends with
// exactly one terminal, a turn_abort naming the node, and rspp exits
// cleanly leaving nothing behind.
func TestProviderSIGKILLMidTurnIsContained(t *testing.T) {
	cases := []struct {
		node, provider string
		opts           testenv.ConfigOptions
		// when is the moment the provider is busy with the turn.
		when func(testenv.Record) bool
	}{
		// STT is open while the user speaks (input paced in real time).
		{"stt", "pocketsphinx", testenv.ConfigOptions{}, hasType("turn_active")},
		// The LLM streams its reply a word every 300 ms once STT is done.
		{"llm", "rules", testenv.ConfigOptions{TokenDelay: 300}, invocationEnded("stt")},
		// TTS streams audio in real time once the LLM is done.
		{"tts", "espeak", testenv.ConfigOptions{TTSRealtime: true}, invocationEnded("llm")},
	}
	for _, c := range cases {
		t.Run(c.node, func(t *testing.T) {
			r := newRun(t, "what is the weather like", c.opts)
			r.start(t, "--realtime")
			r.waitRecord(t, c.node+" busy", c.when)
			if c.node == "tts" {
				time.Sleep(200 * time.Millisecond) // some frames are out
			}
			killProvider(t, c.provider)
			if code := r.wait(t, 60*time.Second); code != 0 {
				t.Fatalf("rspp did not survive: exit %d\nstderr:\n%s", code, &r.stderr)
			}
			recs := r.records(t)
			if err := testenv.CheckTerminals(recs); err != nil {
				t.Fatal(err)
			}
			reasons := abortsNaming(recs, c.node)
			if len(reasons) != 1 {
				t.Fatalf("want one turn_abort naming node %s, got %q\nstdout:\n%s", c.node, reasons, &r.stdout)
			}
			if !strings.Contains(reasons[0], "crash") {
				t.Errorf("abort reason %q does not say it crashed", reasons[0])
			}
			t.Logf("abort reason: %s", reasons[0])
			r.assertNothingLeft(t)
		})
	}
}

// SIGTERM mid-turn: the session closes (the turn aborts as session_close),
// every plugin is stopped, sockets and state dirs are removed, exit 0.
func TestSIGTERMMidTurnLeavesNothing(t *testing.T) {
	r := newRun(t, "tell me a joke", testenv.ConfigOptions{TTSRealtime: true})
	r.start(t, "--realtime")
	r.waitRecord(t, "tts streaming", invocationEnded("llm"))
	if pids := testenv.ProcsUnder(bins.Dir); len(pids) < 4 {
		t.Fatalf("expected rspp and 3 plugins running, found %v", pids)
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM\nstderr:\n%s", code, &r.stderr)
	}
	recs := r.records(t)
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Fatal(err)
	}
	turns := testenv.Turns(recs)
	if len(turns) != 1 || turns[0].Aborts != 1 || !strings.Contains(turns[0].AbortReasons[0], "session_close") {
		t.Fatalf("want the turn aborted by session_close, got %+v", turns)
	}
	r.assertNothingLeft(t)
}

// A normal run leaves nothing behind either (checked in the round trip
// too); here also with a bad input file: exit 2, nothing started.
func TestBadInputStartsNothing(t *testing.T) {
	r := newRun(t, "hello there", testenv.ConfigOptions{})
	r.in = filepath.Join(r.dir, "missing.wav")
	r.start(t)
	if code := r.wait(t, 20*time.Second); code != 2 {
		t.Fatalf("exit %d, want 2\nstderr:\n%s", code, &r.stderr)
	}
	if !strings.Contains(r.stderr.String(), "missing.wav") {
		t.Errorf("error does not name the file: %s", &r.stderr)
	}
	r.assertNothingLeft(t)
}
