package synth_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/providers/espeak/synth"
	"github.com/rspp/rspp/providers/internal/tool"
	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/transports/wav"
)

func configured(t *testing.T, cfg map[string]any) *synth.Node {
	t.Helper()
	raw, _ := json.Marshal(cfg)
	n := synth.New("test")
	if err := n.Configure(context.Background(), externalnode.Config{NodeID: "tts", Raw: raw}); err != nil {
		t.Fatal(err)
	}
	return n
}

func textFinal(s string) eventabi.Event {
	return eventabi.Event{Type: eventabi.TypeTextFinal, Text: &eventabi.Text{Text: s, Final: true}}
}

func TestInfo(t *testing.T) {
	info := synth.New("1.51.0").Info()
	if info.Name != "espeak" || info.Kind != "tts" || info.Version != "1.51.0" {
		t.Fatalf("%+v", info)
	}
}

func TestConfigureErrors(t *testing.T) {
	speechtest.Require(t)
	tests := []struct {
		name  string
		raw   string
		check func(error) bool
	}{
		{"unknown field", `{"speed": 3}`, func(err error) bool { return err != nil }},
		{"missing binary", `{"binary": "rspp-no-espeak"}`, func(err error) bool {
			var me *tool.MissingError
			return errors.As(err, &me) && me.Tool == "rspp-no-espeak"
		}},
		{"bad rate", `{"rate": 5}`, func(err error) bool {
			var ce *tool.ConfigError
			return errors.As(err, &ce) && ce.Field == "rate"
		}},
		{"bad voice", `{"voice": "nosuchvoice"}`, func(err error) bool {
			var ce *tool.ConfigError
			return errors.As(err, &ce) && ce.Field == "voice"
		}},
	}
	for _, tc := range tests {
		err := synth.New("t").Configure(context.Background(), externalnode.Config{NodeID: "tts", Raw: []byte(tc.raw)})
		if !tc.check(err) {
			t.Errorf("%s: got %v", tc.name, err)
		}
	}
}

func TestInvokeBeforeConfigure(t *testing.T) {
	_, err := speechtest.Invoke(context.Background(), synth.New("t"), nil)
	if !errors.Is(err, synth.ErrNotConfigured) {
		t.Fatalf("got %v", err)
	}
}

// TestSpeechRoundTrip: text -> TTS node frames -> WAV -> pocketsphinx with
// the replies grammar -> the same text.
func TestSpeechRoundTrip(t *testing.T) {
	speechtest.Require(t)
	n := configured(t, nil)
	ctx := context.Background()
	const text = "it is time to test"
	start := time.Now()
	// Deltas only: the node must concatenate them.
	evs, err := speechtest.Invoke(ctx, n, []eventabi.Event{
		{Type: eventabi.TypeTextDelta, Text: &eventabi.Text{Text: "it is "}},
		{Type: eventabi.TypeTextDelta, Text: &eventabi.Text{Text: "time to test"}},
	})
	synthTime := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "out.wav")
	w, err := wav.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		if ev.Type != eventabi.TypeAudioFrame || ev.Audio == nil || len(ev.Audio.PCM) != wav.FrameBytes ||
			ev.Audio.SampleRate != 16000 || ev.Audio.Channels != 1 || ev.SessionID != "sess-1" {
			t.Fatalf("event %d: %v", i, ev.String())
		}
		w.Write(ev.Audio.PCM)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	got, err := speechtest.Decode(ctx, path, "../../../examples/replies.jsgf")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("synthesis %v (%d frames = %v of audio), decode %v", synthTime, len(evs), time.Duration(len(evs))*20*time.Millisecond, time.Since(start))
	if got != text {
		t.Fatalf("decoded %q, want %q", got, text)
	}
}

func TestEmptyTextEmitsNothing(t *testing.T) {
	speechtest.Require(t)
	evs, err := speechtest.Invoke(context.Background(), configured(t, nil), []eventabi.Event{textFinal("   ")})
	if err != nil || len(evs) != 0 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
}

func TestTextIsNeverParsedAsOptions(t *testing.T) {
	speechtest.Require(t)
	// Looks like flags and shell syntax; must simply be spoken.
	evs, err := speechtest.Invoke(context.Background(), configured(t, nil), []eventabi.Event{textFinal(`-w /tmp/x; $(rm -rf /) "quoted"`)})
	if err != nil || len(evs) == 0 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
}

func TestRealtimePacing(t *testing.T) {
	speechtest.Require(t)
	n := configured(t, map[string]any{"realtime": true})
	start := time.Now()
	evs, err := speechtest.Invoke(context.Background(), n, []eventabi.Event{textFinal("goodbye")})
	if err != nil {
		t.Fatal(err)
	}
	if min := time.Duration(len(evs)-1) * 20 * time.Millisecond; time.Since(start) < min {
		t.Fatalf("%d frames in %v: not paced", len(evs), time.Since(start))
	}
}

// TestCancelStopsPromptly cancels mid-synthesis: Invoke must return quickly,
// nothing may be emitted after it returns, and no child may be left.
func TestCancelStopsPromptly(t *testing.T) {
	speechtest.Require(t)
	n := configured(t, map[string]any{"realtime": true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := make(chan eventabi.Event, 1)
	in <- textFinal("this is a long sentence that takes several seconds to speak at a normal rate, far longer than the test waits")
	close(in)

	var (
		mu       sync.Mutex
		frames   int
		returned bool
		late     int
	)
	first := make(chan struct{})
	call := externalnode.NewTestCall("inv", "s", "t", "tts", in, func(ev eventabi.Event) error {
		mu.Lock()
		defer mu.Unlock()
		frames++
		if returned {
			late++
		}
		if frames == 1 {
			close(first)
		}
		return nil
	})
	done := make(chan error, 1)
	go func() { done <- n.Invoke(ctx, call) }()
	select {
	case <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("no frame within 10s")
	}
	if len(speechtest.ChildPIDs()) == 0 {
		t.Log("children already gone before cancel (synthesis faster than expected)")
	}
	cancel()
	cancelled := time.Now()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Invoke did not return within 2s of cancel")
	}
	stop := time.Since(cancelled)
	mu.Lock()
	returned = true
	atReturn := frames
	mu.Unlock()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Invoke returned %v, want context.Canceled", err)
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if late != 0 {
		t.Fatalf("%d frames emitted after Invoke returned", late)
	}
	if pids := speechtest.ChildPIDs(); len(pids) != 0 {
		t.Fatalf("children left behind: %v", pids)
	}
	t.Logf("cancel -> return in %v after %d frames", stop, atReturn)
	if stop > 500*time.Millisecond {
		t.Fatalf("cancel took %v", stop)
	}
}
