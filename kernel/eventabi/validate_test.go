package eventabi

import (
	"errors"
	"strings"
	"testing"
)

func audioEvent() Event {
	return Event{Type: TypeAudioFrame, Audio: &Audio{PCM: make([]byte, 640), SampleRate: 16000, Channels: 1}}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		mut  func(*Event)
		kind error
	}{
		{"ok", func(*Event) {}, nil},
		{"empty type", func(e *Event) { e.Type = "" }, ErrInvalidEvent},
		{"bad type chars", func(e *Event) { e.Type = "Audio Frame" }, ErrInvalidEvent},
		{"future schema", func(e *Event) { e.SchemaVersion = 2 }, ErrSchemaVersion},
		{"lane spoof", func(e *Event) { e.Lane = LaneControl }, ErrInvalidEvent},
		{"lane range", func(e *Event) { e.Lane = 9 }, ErrInvalidEvent},
		{"no audio", func(e *Event) { e.Audio = nil }, ErrPayloadMismatch},
		{"two payloads", func(e *Event) { e.Text = &Text{} }, ErrPayloadMismatch},
		{"odd pcm", func(e *Event) { e.Audio.PCM = e.Audio.PCM[:3] }, ErrInvalidEvent},
		{"no rate", func(e *Event) { e.Audio.SampleRate = 0 }, ErrInvalidEvent},
		{"huge pcm", func(e *Event) { e.Audio.PCM = make([]byte, DefaultLimits.MaxPCMBytes+2) }, ErrOversized},
		{"long id", func(e *Event) { e.TurnID = strings.Repeat("x", 300) }, ErrOversized},
		{"text without payload", func(e *Event) { e.Type, e.Audio = TypeTextDelta, nil }, ErrPayloadMismatch},
		{"cancel bad scope", func(e *Event) {
			e.Type, e.Lane, e.Audio, e.Control = TypeCancel, LaneControl, nil, &Control{Scope: "galaxy"}
		}, ErrInvalidEvent},
		{"custom type ok", func(e *Event) { e.Type, e.Audio, e.Text = "vendor.thing", nil, &Text{Text: "x"} }, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := audioEvent()
			c.mut(&ev)
			Normalize(&ev)
			err := Validate(&ev, Limits{})
			if c.kind == nil && err != nil || c.kind != nil && !errors.Is(err, c.kind) {
				t.Fatalf("err = %v, want %v", err, c.kind)
			}
			var ve *ValidationError
			if err != nil && !errors.As(err, &ve) {
				t.Fatalf("not a ValidationError: %T", err)
			}
		})
	}
}

func TestDecodeJSONRoundTrip(t *testing.T) {
	ev := audioEvent()
	ev.SessionID = "s"
	b, err := encodeJSON(&ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeJSON(b, Limits{})
	if err != nil || got.SchemaVersion != SchemaVersion || got.Lane != LaneData || len(got.Audio.PCM) != 640 {
		t.Fatalf("decode: %+v %v", got, err)
	}
	for _, bad := range []string{`{"Type":"audio.frame"} {}`, `{"Nope":1}`, `[`, `{"Type":"x","SchemaVersion":7}`} {
		if _, err := decodeJSON([]byte(bad), Limits{}); err == nil {
			t.Fatalf("accepted %s", bad)
		}
	}
}

// FuzzDecodeValidate: the gateway's decode/validate never panics, returns
// only typed errors, and whatever it accepts is valid and round-trips.
func FuzzDecodeValidate(f *testing.F) {
	ev := audioEvent()
	seed, _ := encodeJSON(&ev)
	f.Add(seed)
	f.Add([]byte(`{"Type":"text.delta","Text":{"Text":"hi"}}`))
	f.Add([]byte(`{"Type":"control.cancel","Lane":1,"Control":{"Scope":"turn"}}`))
	f.Add([]byte(`{"Type":"audio.frame","Audio":{"PCM":"AAA=","SampleRate":8000,"Channels":2}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := decodeJSON(b, Limits{MaxPCMBytes: 4096, MaxTextBytes: 1024, MaxIDBytes: 64})
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Kind == nil {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		if err := Validate(&ev, Limits{MaxPCMBytes: 4096, MaxTextBytes: 1024, MaxIDBytes: 64}); err != nil {
			t.Fatalf("accepted event fails validation: %v", err)
		}
		if ev.Audio != nil && ev.Audio.DurationNanos() <= 0 {
			t.Fatalf("accepted audio without duration: %+v", ev.Audio)
		}
		again, err := encodeJSON(&ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeJSON(again, Limits{MaxPCMBytes: 4096, MaxTextBytes: 1024, MaxIDBytes: 64}); err != nil {
			t.Fatalf("round trip rejected: %v", err)
		}
	})
}
