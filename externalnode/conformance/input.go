package conformance

import (
	"context"
	"fmt"

	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/transports/wav"
)

// Kinds a node may report.
var Kinds = []string{"stt", "llm", "tts", "custom"}

// knownKind reports whether k is one of Kinds.
func knownKind(k string) bool {
	for _, x := range Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// SampleText is the text the invoke checks feed llm and tts nodes (and
// speak to stt nodes); custom nodes get text.delta "hello".
const SampleText = "hello there"

func sampleText(kind string) string {
	if kind == "llm" || kind == "tts" {
		return SampleText
	}
	return "hello"
}

// SpeechFunc turns text into 16 kHz mono s16le PCM (e.g. espeak-ng).
type SpeechFunc func(ctx context.Context, text string) ([]byte, error)

// TextInput is the event that carries text into a node of the given kind:
// an llm reads a final transcript, a tts a final text, anything else text
// deltas. An stt node takes no text (nil).
func TextInput(kind, text string) []eventabi.Event {
	var t eventabi.Type
	final := true
	switch kind {
	case "stt":
		return nil
	case "llm":
		t = eventabi.TypeTranscriptFinal
	case "tts":
		t = eventabi.TypeTextFinal
	default:
		t, final = eventabi.TypeTextDelta, false
	}
	return []eventabi.Event{{Type: t, Text: &eventabi.Text{Text: text, Final: final}}}
}

// AudioInput wraps 16 kHz mono s16le PCM as 20 ms audio.frame events.
func AudioInput(pcm []byte) []eventabi.Event {
	frames := wav.Frames(pcm)
	evs := make([]eventabi.Event, len(frames))
	for i, f := range frames {
		evs[i] = eventabi.Event{Type: eventabi.TypeAudioFrame, Audio: &eventabi.Audio{PCM: f, SampleRate: 16000, Channels: 1}}
	}
	return evs
}

// silence is d seconds of 16 kHz mono s16le silence.
func silence(seconds int) []byte { return make([]byte, seconds*16000*2) }

// sampleInput is the kind-appropriate input of the invoke check: for stt,
// one second of silence followed by spoken SampleText when speech is set.
func sampleInput(ctx context.Context, kind string, speech SpeechFunc) ([]eventabi.Event, string, error) {
	if kind != "stt" {
		text := sampleText(kind)
		in := TextInput(kind, text)
		return in, fmt.Sprintf("%s %q", in[0].Type, text), nil
	}
	pcm := silence(1)
	what := "1 s of 16 kHz silence"
	if speech != nil {
		spoken, err := speech(ctx, SampleText)
		if err != nil {
			return nil, "", err
		}
		pcm = append(pcm, spoken...)
		what += ` + spoken "` + SampleText + `"`
	}
	return AudioInput(pcm), what, nil
}
