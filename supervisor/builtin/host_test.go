package builtin

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeNode turns every input into one output of type out; it emits "done"
// when its input closes. hang/panic make a hook misbehave.
type fakeNode struct {
	out       eventabi.Type
	hang      bool
	panics    bool
	cancelled *atomic.Int32
	release   chan struct{}
}

func (n *fakeNode) Init(context.Context, Config) error { return nil }
func (n *fakeNode) OnEvent(ctx context.Context, ev eventabi.Event, emit Emit) error {
	if n.panics {
		panic("boom")
	}
	if n.hang {
		<-n.release // ignores ctx: a truly stuck node
		return nil
	}
	if n.out == eventabi.TypeAudioFrame {
		return emit(eventabi.Event{Type: n.out, Audio: &eventabi.Audio{PCM: make([]byte, 640), SampleRate: 16000, Channels: 1}})
	}
	if ev.Text != nil || ev.Audio != nil {
		return emit(eventabi.Event{Type: n.out, Text: &eventabi.Text{Text: "w"}})
	}
	return nil
}
func (n *fakeNode) OnInputClosed(ctx context.Context, emit Emit) error { return nil }
func (n *fakeNode) OnCancel(context.Context, string) error {
	if n.cancelled != nil {
		n.cancelled.Add(1)
	}
	return nil
}
func (n *fakeNode) Shutdown(context.Context) error { return nil }

type fakeClock struct{ ns int64 }

func (c *fakeClock) Now() int64 { return c.ns }

func graph() kernel.GraphSpec {
	return kernel.GraphSpec{
		Nodes: []kernel.NodeSpec{{ID: "stt", Provider: "stt"}, {ID: "llm", Provider: "llm"}, {ID: "tts", Provider: "tts"}},
		Edges: []kernel.EdgeSpec{{From: kernel.Ingress, To: "stt"}, {From: "stt", To: "llm"}, {From: "llm", To: "tts"}, {From: "tts", To: kernel.Egress}},
	}
}

func session(t *testing.T) (*kernel.Session, *fakeClock) {
	clk := &fakeClock{}
	s, err := kernel.NewSession(kernel.SessionConfig{SessionID: "s", Graph: graph(), Clock: clk, VAD: kernel.VADConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}

func speak(t *testing.T, s *kernel.Session, frames int) {
	if err := s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechStart}); err != nil {
		t.Fatal(err)
	}
	for range frames {
		if err := s.Ingest(eventabi.Event{Type: eventabi.TypeAudioFrame, Audio: &eventabi.Audio{PCM: make([]byte, 640), SampleRate: 16000, Channels: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechEnd}); err != nil {
		t.Fatal(err)
	}
}

func records(effs []kernel.Effect, typ string) []kernel.TimelineRecord {
	var out []kernel.TimelineRecord
	for _, e := range effs {
		if r, ok := e.(kernel.Record); ok && r.Record.Type == typ {
			out = append(out, r.Record)
		}
	}
	return out
}

func TestInProcessPipelineCommits(t *testing.T) {
	h := New(Timeouts{})
	defer h.Close(context.Background(), time.Second)
	for pool, out := range map[string]eventabi.Type{"stt": eventabi.TypeTranscriptFinal, "llm": eventabi.TypeTextDelta, "tts": eventabi.TypeAudioFrame} {
		if err := h.Register(pool, func() Node { return &fakeNode{out: out} }); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Register("stt", nil); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate register: %v", err)
	}
	s, _ := session(t)
	speak(t, s, 3)
	rest := h.Pump(context.Background(), s)
	if len(records(rest, "turn_commit")) != 1 {
		t.Fatalf("no commit: %#v", rest)
	}
	egress := 0
	for _, e := range rest {
		if _, ok := e.(kernel.EgressEvent); ok {
			egress++
		}
		if _, ok := e.(kernel.DeliverInput); ok {
			t.Fatal("host left an input for its own node")
		}
	}
	if egress == 0 {
		t.Fatal("no agent audio")
	}
}

func TestHookFailuresAreShaped(t *testing.T) {
	cases := []struct {
		name   string
		node   func(release chan struct{}) *fakeNode
		kind   error
		reason string
	}{
		{"hang", func(r chan struct{}) *fakeNode { return &fakeNode{hang: true, release: r} }, kernel.ErrNodeTimeout, "timeout"},
		{"panic", func(chan struct{}) *fakeNode { return &fakeNode{panics: true} }, kernel.ErrNodeCrashed, "panic"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			release := make(chan struct{})
			h := New(Timeouts{Event: 30 * time.Millisecond})
			_ = h.Register("stt", func() Node { return c.node(release) })
			_ = h.Register("llm", func() Node { return &fakeNode{out: eventabi.TypeTextDelta} })
			_ = h.Register("tts", func() Node { return &fakeNode{out: eventabi.TypeAudioFrame} })
			s, _ := session(t)
			speak(t, s, 1)
			rest := h.Pump(context.Background(), s)
			ab := records(rest, "turn_abort")
			if len(ab) != 1 || !strings.Contains(ab[0].Reason, "node stt failed") || !strings.Contains(ab[0].Reason, c.reason) {
				t.Fatalf("abort %+v", ab)
			}
			close(release)
			if !h.Close(context.Background(), time.Second) {
				t.Fatal("hook goroutines did not end")
			}
			_, err := New(Timeouts{Event: 10 * time.Millisecond}).shapeOnce(c.node(make(chan struct{})))
			if !errors.Is(err, c.kind) {
				t.Fatalf("shape %v, want %v", err, c.kind)
			}
		})
	}
}

// shapeOnce runs one OnEvent through a fresh host (test helper).
func (h *Host) shapeOnce(n *fakeNode) ([]eventabi.Event, error) {
	defer func() {
		if n.release != nil {
			close(n.release)
		}
		h.Close(context.Background(), time.Second)
	}()
	_ = h.Register("p", func() Node { return n })
	st := kernel.StartInvocation{Ref: kernel.InvocationRef{InvocationID: "i"}, Binding: kernel.Binding{Pool: "p"}}
	if err := h.Start(context.Background(), st); err != nil {
		return nil, err
	}
	return h.Deliver(context.Background(), "i", eventabi.Event{Type: eventabi.TypeTextDelta, Text: &eventabi.Text{}})
}

func TestCancelReachesInProcessNode(t *testing.T) {
	var cancelled atomic.Int32
	h := New(Timeouts{})
	defer h.Close(context.Background(), time.Second)
	for _, p := range []string{"stt", "llm", "tts"} {
		_ = h.Register(p, func() Node { return &fakeNode{out: eventabi.TypeTextDelta, cancelled: &cancelled} })
	}
	s, _ := session(t)
	if err := s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechStart}); err != nil {
		t.Fatal(err)
	}
	h.Pump(context.Background(), s)
	if err := s.Cancel("turn", "", "operator"); err != nil {
		t.Fatal(err)
	}
	rest := h.Pump(context.Background(), s)
	if cancelled.Load() != 3 || len(records(rest, "turn_abort")) != 1 {
		t.Fatalf("cancelled %d nodes; %#v", cancelled.Load(), rest)
	}
}

func TestShape(t *testing.T) {
	for _, c := range []struct {
		in   error
		kind error
	}{
		{errors.New("x"), kernel.ErrNodeFailed},
		{context.DeadlineExceeded, kernel.ErrNodeTimeout},
		{context.Canceled, kernel.ErrCancelled},
		{kernel.ErrResourceLimit, kernel.ErrResourceLimit},
	} {
		if got := Shape("on_event", c.in); !errors.Is(got, c.kind) {
			t.Fatalf("Shape(%v) = %v", c.in, got)
		}
	}
	if Shape("x", nil) != nil {
		t.Fatal("nil shaped")
	}
}
