package voice_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/providers/flite/voice"
	"github.com/rspp/rspp/providers/internal/tool"
	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/transports/wav"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// requireFlite skips unless flite and sox are installed (and, through
// speechtest, pocketsphinx to check what was said).
func requireFlite(t *testing.T) {
	t.Helper()
	if _, err := voice.NewSynth("", "", "", 0); err != nil {
		t.Skipf("flite unavailable: %v", err)
	}
	speechtest.Require(t)
}

func configured(t *testing.T, cfg map[string]any) *voice.Node {
	t.Helper()
	raw, _ := json.Marshal(cfg)
	n := voice.New("test")
	if err := n.Configure(context.Background(), externalnode.Config{NodeID: "tts", Raw: raw}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestInfo(t *testing.T) {
	info := voice.New("2.2.0").Info()
	if info.Name != "flite" || info.Kind != "tts" || info.Version != "2.2.0" {
		t.Fatalf("%+v", info)
	}
}

func TestConfigureErrors(t *testing.T) {
	requireFlite(t)
	for _, tc := range []struct {
		name  string
		raw   string
		check func(error) bool
	}{
		{"unknown field", `{"rate": 3}`, func(err error) bool { return err != nil }},
		{"missing binary", `{"binary": "rspp-no-flite"}`, func(err error) bool {
			var me *tool.MissingError
			return errors.As(err, &me) && me.Tool == "rspp-no-flite"
		}},
		{"bad stretch", `{"stretch": 9}`, func(err error) bool {
			var ce *tool.ConfigError
			return errors.As(err, &ce) && ce.Field == "stretch"
		}},
		{"bad voice", `{"voice": "nosuchvoice"}`, func(err error) bool {
			var ce *tool.ConfigError
			return errors.As(err, &ce) && ce.Field == "voice"
		}},
	} {
		err := voice.New("t").Configure(context.Background(), externalnode.Config{NodeID: "tts", Raw: []byte(tc.raw)})
		if !tc.check(err) {
			t.Errorf("%s: got %v", tc.name, err)
		}
	}
}

func TestInvokeBeforeConfigure(t *testing.T) {
	if _, err := speechtest.Invoke(context.Background(), voice.New("t"), nil); !errors.Is(err, voice.ErrNotConfigured) {
		t.Fatalf("got %v", err)
	}
}

// TestSpeechRoundTrip: text -> flite frames -> WAV -> pocketsphinx with the
// replies grammar -> the same text.
func TestSpeechRoundTrip(t *testing.T) {
	requireFlite(t)
	n := configured(t, nil)
	ctx := context.Background()
	const text = "it is time to test"
	evs, err := speechtest.Invoke(ctx, n, []eventabi.Event{
		{Type: eventabi.TypeTextDelta, Text: &eventabi.Text{Text: "it is "}},
		{Type: eventabi.TypeTextDelta, Text: &eventabi.Text{Text: "time to test"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "out.wav")
	w, err := wav.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		if ev.Type != eventabi.TypeAudioFrame || len(ev.Audio.PCM) != wav.FrameBytes || ev.Audio.SampleRate != 16000 || ev.Audio.Channels != 1 {
			t.Fatalf("event %d: %v", i, ev.String())
		}
		w.Write(ev.Audio.PCM)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := speechtest.Decode(ctx, path, "../../../examples/replies.jsgf")
	if err != nil {
		t.Fatal(err)
	}
	if got != text {
		t.Fatalf("decoded %q, want %q", got, text)
	}
}

func TestEmptyTextEmitsNothing(t *testing.T) {
	requireFlite(t)
	evs, err := speechtest.Invoke(context.Background(), configured(t, nil), nil)
	if err != nil || len(evs) != 0 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
}

// TestCancelReapsChildren: a cancelled invocation returns ctx's error and
// leaves no flite or sox behind.
func TestCancelReapsChildren(t *testing.T) {
	requireFlite(t)
	n := configured(t, map[string]any{"stretch": 3})
	ctx, cancel := context.WithCancel(context.Background())
	in := make(chan eventabi.Event, 1)
	long := "this is a long sentence that flite will take a while to say out loud, slowly"
	in <- eventabi.Event{Type: eventabi.TypeTextFinal, Text: &eventabi.Text{Text: long + " " + long + " " + long, Final: true}}
	close(in)
	call := externalnode.NewTestCall("i", "s", "t", "tts", in, func(eventabi.Event) error { cancel(); return nil })
	time.AfterFunc(5*time.Second, cancel) // should the first frame never come
	err := n.Invoke(ctx, call)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if pids := speechtest.ChildPIDs(); len(pids) != 0 {
		t.Fatalf("children left: %v", pids)
	}
}
