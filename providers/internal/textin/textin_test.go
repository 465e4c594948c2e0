package textin

import (
	"context"
	"errors"
	"testing"

	"github.com/rspp/rspp/kernel/eventabi"
)

func feed(evs ...eventabi.Event) chan eventabi.Event {
	ch := make(chan eventabi.Event, len(evs))
	for _, e := range evs {
		ch <- e
	}
	close(ch)
	return ch
}

func text(t eventabi.Type, s string) eventabi.Event {
	return eventabi.Event{Type: t, Text: &eventabi.Text{Text: s, Final: t != eventabi.TypeTextDelta}}
}

func TestCollect(t *testing.T) {
	tests := []struct {
		name string
		in   chan eventabi.Event
		want string
	}{
		{"empty", feed(), ""},
		{"deltas", feed(text(eventabi.TypeTextDelta, "it is "), text(eventabi.TypeTextDelta, "late")), "it is late"},
		{"final wins over deltas", feed(text(eventabi.TypeTextDelta, "x "), text(eventabi.TypeTextFinal, "the whole")), "the whole"},
		{"finals joined", feed(text(eventabi.TypeTranscriptFinal, "hello there "), text(eventabi.TypeTranscriptFinal, "what time is it")), "hello there what time is it"},
		{"partials and audio ignored", feed(text(eventabi.TypeTranscriptPartial, "wha"), eventabi.Event{Type: eventabi.TypeAudioFrame, Audio: &eventabi.Audio{}}, text(eventabi.TypeTranscriptFinal, "hi")), "hi"},
	}
	for _, tc := range tests {
		got, err := Collect(context.Background(), tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestCollectCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Collect(ctx, make(chan eventabi.Event)); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}
