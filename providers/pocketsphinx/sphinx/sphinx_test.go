package sphinx_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/providers/internal/tool"
	"github.com/rspp/rspp/providers/pocketsphinx/sphinx"
	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/transports/wav"
)

const examples = "../../../examples"

func configured(t *testing.T) *sphinx.Node {
	t.Helper()
	n := sphinx.New("test")
	// A relative grammar path resolves against the config's directory.
	cfg := externalnode.Config{NodeID: "stt", Dir: examples, Raw: []byte(`{"grammar": "grammar.jsgf"}`)}
	if err := n.Configure(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return n
}

// tempFiles lists this package's temp WAV files, to prove none is left.
func tempFiles(t *testing.T) []string {
	m, err := filepath.Glob(filepath.Join(os.TempDir(), "rspp-pocketsphinx-*.wav"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestInfo(t *testing.T) {
	info := sphinx.New("0.8.0").Info()
	if info.Name != "pocketsphinx" || info.Kind != "stt" || info.Version != "0.8.0" {
		t.Fatalf("%+v", info)
	}
}

func TestConfigureErrors(t *testing.T) {
	speechtest.Require(t)
	dir := t.TempDir()
	tests := []struct {
		name  string
		raw   string
		field string // *tool.FileError field, "" for other errors
	}{
		{"no grammar", `{}`, ""},
		{"unknown field", `{"grammar": "g.jsgf", "lm": "x"}`, ""},
		{"missing grammar", `{"grammar": "nope.jsgf"}`, "grammar"},
		{"missing hmm", `{"grammar": "` + examples + `/grammar.jsgf", "hmm": "/nope/en-us"}`, "hmm"},
		{"missing dict", `{"grammar": "` + examples + `/grammar.jsgf", "dict": "/nope.dict"}`, "dict"},
	}
	for _, tc := range tests {
		err := sphinx.New("t").Configure(context.Background(), externalnode.Config{NodeID: "stt", Dir: dir, Raw: []byte(tc.raw)})
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		var fe *tool.FileError
		if tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), fe.Path)) {
			t.Errorf("%s: got %v, want *tool.FileError on %q", tc.name, err, tc.field)
		}
	}
	err := sphinx.New("t").Configure(context.Background(), externalnode.Config{Raw: []byte(`{"grammar": "` + examples + `/grammar.jsgf", "binary": "rspp-no-sphinx"}`)})
	var me *tool.MissingError
	if !errors.As(err, &me) {
		t.Errorf("missing binary: got %v", err)
	}
}

func TestInvokeBeforeConfigure(t *testing.T) {
	if _, err := speechtest.Invoke(context.Background(), sphinx.New("t"), nil); !errors.Is(err, sphinx.ErrNotConfigured) {
		t.Fatalf("got %v", err)
	}
}

// TestRecognisesEveryPhrase: espeak speech of each grammar phrase, fed as
// 20 ms frames, comes back as exactly that phrase.
func TestRecognisesEveryPhrase(t *testing.T) {
	speechtest.Require(t)
	n := configured(t)
	ctx := context.Background()
	before := len(tempFiles(t))
	for _, phrase := range []string{"what time is it", "hello there", "tell me a joke", "what is the weather like", "goodbye"} {
		pcm, err := speechtest.Synthesize(ctx, phrase)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		evs, err := speechtest.Invoke(ctx, n, speechtest.AudioEvents(wav.Frames(pcm)))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%q: %v of audio decoded in %v", phrase, time.Duration(len(pcm)/32)*time.Millisecond, time.Since(start))
		if len(evs) != 1 || evs[0].Type != eventabi.TypeTranscriptFinal || !evs[0].Text.Final || evs[0].Text.Text != phrase {
			t.Fatalf("%q: got %+v", phrase, evs)
		}
	}
	if after := len(tempFiles(t)); after != before {
		t.Fatalf("temp WAV files left behind: %d before, %d after", before, after)
	}
}

func TestEmptyAudioEmitsEmptyFinal(t *testing.T) {
	speechtest.Require(t)
	evs, err := speechtest.Invoke(context.Background(), configured(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Type != eventabi.TypeTranscriptFinal || evs[0].Text.Text != "" || !evs[0].Text.Final {
		t.Fatalf("got %+v", evs)
	}
}

func TestRejectsWrongSampleRate(t *testing.T) {
	speechtest.Require(t)
	in := []eventabi.Event{{Type: eventabi.TypeAudioFrame, Audio: &eventabi.Audio{PCM: make([]byte, 882), SampleRate: 22050, Channels: 1}}}
	_, err := speechtest.Invoke(context.Background(), configured(t), in)
	var fe *wav.FormatError
	if !errors.As(err, &fe) || fe.Field != "sample rate" || fe.Got != 22050 {
		t.Fatalf("got %v", err)
	}
}

// TestCancelWhileWaitingForAudio: cancellation while the inputs are still
// open returns promptly, with no temp file or child left.
func TestCancelWhileWaitingForAudio(t *testing.T) {
	speechtest.Require(t)
	n := configured(t)
	before := len(tempFiles(t))
	in := make(chan eventabi.Event, 1)
	in <- speechtest.AudioEvents([][]byte{make([]byte, wav.FrameBytes)})[0]
	call := externalnode.NewTestCall("inv", "s", "t", "stt", in, func(eventabi.Event) error {
		t.Error("emitted after cancel")
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Invoke(ctx, call) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Invoke did not return within 1s of cancel")
	}
	if after := len(tempFiles(t)); after != before {
		t.Fatalf("temp WAV left behind")
	}
	if pids := speechtest.ChildPIDs(); len(pids) != 0 {
		t.Fatalf("children left: %v", pids)
	}
}

func TestDecodeFileCancelKillsDecoder(t *testing.T) {
	speechtest.Require(t)
	d, err := sphinx.NewDecoder("", "", "", examples+"/grammar.jsgf")
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := speechtest.Synthesize(context.Background(), "what is the weather like")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = d.DecodePCM(ctx, pcm)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Fatalf("decode returned %v after a 30 ms deadline", el)
	}
	if pids := speechtest.ChildPIDs(); len(pids) != 0 {
		t.Fatalf("children left: %v", pids)
	}
}

func TestConfigJSONFieldNames(t *testing.T) {
	b, _ := json.Marshal(sphinx.Config{Grammar: "g", HMM: "h", Dict: "d", Binary: "b"})
	if string(b) != `{"grammar":"g","hmm":"h","dict":"d","binary":"b"}` {
		t.Fatal(string(b))
	}
}

// TestTempWAVGoesToScratchDir: with the runtime's scratch dir set, an
// utterance in progress is buffered there (which the runtime removes when
// the instance stops, even after a SIGKILL), never in the system temp dir.
func TestTempWAVGoesToScratchDir(t *testing.T) {
	speechtest.Require(t)
	scratch := t.TempDir()
	t.Setenv(sphinx.ScratchEnv, scratch)
	n := configured(t)
	before := len(tempFiles(t))
	in := make(chan eventabi.Event, 1)
	in <- speechtest.AudioEvents([][]byte{make([]byte, wav.FrameBytes)})[0]
	call := externalnode.NewTestCall("inv", "s", "t", "stt", in, func(eventabi.Event) error { return nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Invoke(ctx, call) }()
	var inScratch []string
	for deadline := time.Now().Add(5 * time.Second); len(inScratch) == 0 && time.Now().Before(deadline); {
		inScratch, _ = filepath.Glob(filepath.Join(scratch, "rspp-pocketsphinx-*.wav"))
		time.Sleep(5 * time.Millisecond)
	}
	inTemp := len(tempFiles(t)) - before
	cancel()
	<-done
	if len(inScratch) != 1 {
		t.Fatalf("utterance WAVs in the scratch dir: %v, want one", inScratch)
	}
	if inTemp > 0 {
		t.Fatalf("%d temp WAV(s) in the system temp dir while a scratch dir was given", inTemp)
	}
}
