package builtin

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

// upper is a streaming node: one uppercased text per text input, plus a
// final marker when its input closes.
func upper(out eventabi.Type) StreamFunc {
	return func(ctx context.Context, _ Config, in <-chan eventabi.Event, emit Emit) error {
		for {
			select {
			case ev, ok := <-in:
				if !ok {
					return emit(eventabi.Event{Type: out, Text: &eventabi.Text{Text: "<end>"}})
				}
				if ev.Text != nil {
					if err := emit(eventabi.Event{Type: out, Text: &eventabi.Text{Text: strings.ToUpper(ev.Text.Text)}}); err != nil {
						return err
					}
				}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

func TestStreamNodesRunInProcess(t *testing.T) {
	h := New(Timeouts{})
	defer h.Close(context.Background(), time.Second)
	_ = h.Register("stt", Stream(upper(eventabi.TypeTranscriptFinal)))
	_ = h.Register("llm", Stream(upper(eventabi.TypeTextDelta)))
	_ = h.Register("tts", Stream(upper(eventabi.TypeTextFinal)))
	s, _ := session(t)
	speak(t, s, 2)
	rest := h.Pump(context.Background(), s)
	if len(records(rest, "turn_commit")) != 1 {
		t.Fatalf("no commit: %#v", rest)
	}
	var out []string
	for _, e := range rest {
		if eg, ok := e.(kernel.EgressEvent); ok {
			out = append(out, eg.Event.Text.Text)
		}
	}
	if len(out) != 3 || out[len(out)-1] != "<end>" {
		t.Fatalf("egress %v", out)
	}
}

func TestStreamNodeCancelEndsItsGoroutine(t *testing.T) {
	h := New(Timeouts{})
	for _, p := range []string{"stt", "llm", "tts"} {
		_ = h.Register(p, Stream(upper(eventabi.TypeTextDelta)))
	}
	s, _ := session(t)
	if err := s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechStart}); err != nil {
		t.Fatal(err)
	}
	h.Pump(context.Background(), s)
	s.Close("bye")
	rest := h.Pump(context.Background(), s)
	if len(records(rest, "turn_abort")) != 1 {
		t.Fatalf("%#v", rest)
	}
	if !h.Close(context.Background(), time.Second) {
		t.Fatal("hooks still running")
	} // goleak (TestMain) checks the stream goroutines ended
}
