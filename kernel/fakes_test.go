package kernel

import (
	"encoding/binary"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel/eventabi"
)

// fakeClock is a manual monotonic clock.
type fakeClock struct{ ns int64 }

func (c *fakeClock) Now() int64              { return c.ns }
func (c *fakeClock) Advance(d time.Duration) { c.ns += int64(d) }

// fakeIDs hands out "kind-N" ids from a counter.
type fakeIDs struct{ n int }

func (f *fakeIDs) NewID(kind string) string { f.n++; return kind + "-" + strconv.Itoa(f.n) }

// fakeBindings is a mutable binding table (hot upgrade changes it).
type fakeBindings map[string]Binding

func (f fakeBindings) Binding(p string) (Binding, bool) { b, ok := f[p]; return b, ok }

const frameDur = 20 * time.Millisecond

// frame is 20 ms of 16 kHz mono s16le audio with a constant amplitude.
func frame(amp int16) eventabi.Event {
	pcm := make([]byte, 640)
	for i := 0; i < len(pcm); i += 2 {
		v := amp
		if (i/2)%2 == 1 {
			v = -amp
		}
		binary.LittleEndian.PutUint16(pcm[i:], uint16(v))
	}
	return eventabi.Event{Type: eventabi.TypeAudioFrame, Audio: &eventabi.Audio{PCM: pcm, SampleRate: 16000, Channels: 1}}
}

func loud() eventabi.Event  { return frame(8000) }
func quiet() eventabi.Event { return frame(0) }

func text(ty eventabi.Type, s string) eventabi.Event {
	return eventabi.Event{Type: ty, Text: &eventabi.Text{Text: s, Final: ty == eventabi.TypeTextFinal || ty == eventabi.TypeTranscriptFinal}}
}

func linearGraph() GraphSpec {
	return GraphSpec{
		Nodes: []NodeSpec{
			{ID: "stt", Kind: "stt", Provider: "whisper", Timeout: 10 * time.Second},
			{ID: "llm", Kind: "llm", Provider: "llama", Timeout: 10 * time.Second},
			{ID: "tts", Kind: "tts", Provider: "espeak", Timeout: 10 * time.Second},
		},
		Edges: []EdgeSpec{
			{From: Ingress, To: "stt"},
			{From: "stt", To: "llm"},
			{From: "llm", To: "tts"},
			{From: "tts", To: Egress},
		},
	}
}

func defaultBindings() fakeBindings {
	return fakeBindings{
		"whisper":  {Provider: "whisper", Version: "1.2.0", Pool: "whisper"},
		"llama":    {Provider: "llama", Version: "3.1.0", Pool: "llama"},
		"espeak":   {Provider: "espeak", Version: "1.0.0", Pool: "espeak"},
		"piper":    {Provider: "piper", Version: "2.0.0", Pool: "piper"},
		"deepgram": {Provider: "deepgram", Version: "0.9.0", Pool: "deepgram"},
	}
}

// harness drives one session and keeps everything it emitted.
type harness struct {
	t       testing.TB
	s       *Session
	clk     *fakeClock
	cfg     SessionConfig
	effects []Effect
	// slowNode names nodes whose inputs are never reported taken.
	slowNode map[string]bool
}

func newHarness(t testing.TB, mutate func(*SessionConfig)) *harness {
	t.Helper()
	clk := &fakeClock{ns: 1_000_000}
	cfg := SessionConfig{SessionID: "sess-1", TenantID: "tenant-a", Epoch: 1, Graph: linearGraph(),
		Bindings: defaultBindings(), Clock: clk, IDs: &fakeIDs{}}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := NewSession(cfg)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	h := &harness{t: t, s: s, clk: clk, cfg: cfg}
	h.drain()
	return h
}

// drain takes the ready effects and, like a runner whose plugins read
// their input at once, reports every delivered input taken (which can
// record the end of a pressure episode: taken in the same drain). With
// slowNode set, inputs stay outstanding as with a node that stops reading.
func (h *harness) drain() []Effect {
	var all []Effect
	for {
		out := h.s.Ready()
		all = append(all, out...)
		acked := false
		for _, e := range out {
			if d, ok := e.(DeliverInput); ok && !h.slowNode[h.nodeOf(d.InvocationID)] {
				h.s.OnInputsTaken(d.InvocationID, 1)
				acked = true
			}
		}
		if !acked {
			break
		}
	}
	h.effects = append(h.effects, all...)
	return all
}

// nodeOf is the node of an invocation started in this harness.
func (h *harness) nodeOf(inv string) string {
	for _, e := range h.effects {
		if st, ok := e.(StartInvocation); ok && st.Ref.InvocationID == inv {
			return st.Ref.NodeID
		}
	}
	return ""
}

func (h *harness) ingest(ev eventabi.Event) error {
	err := h.s.Ingest(ev)
	h.drain()
	return err
}

// frames feeds n frames, 20 ms apart on the clock.
func (h *harness) frames(n int, mk func() eventabi.Event) {
	for range n {
		h.clk.Advance(frameDur)
		if err := h.ingest(mk()); err != nil {
			h.t.Fatalf("ingest: %v", err)
		}
	}
}

// utterance is speech then enough silence for the VAD to end it.
func (h *harness) utterance(n int) {
	h.frames(n, loud)
	h.frames(15, quiet)
}

func (h *harness) emitOut(inv string, ev eventabi.Event) error {
	err := h.s.OnNodeEvent(inv, ev)
	h.drain()
	return err
}

func (h *harness) end(inv string, err error, detail string) {
	h.s.OnInvocationEnd(inv, InvocationResult{Err: err, Detail: detail})
	h.drain()
}

func (h *harness) records() []TimelineRecord {
	var out []TimelineRecord
	for _, e := range h.effects {
		if r, ok := e.(Record); ok {
			out = append(out, r.Record)
		}
	}
	return out
}

func (h *harness) recordTypes() []string {
	var out []string
	for _, r := range h.records() {
		out = append(out, r.Type)
	}
	return out
}

func (h *harness) find(typ string) []TimelineRecord {
	var out []TimelineRecord
	for _, r := range h.records() {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// inv is the latest StartInvocation id for a node.
func (h *harness) inv(node string) string {
	id := ""
	for _, e := range h.effects {
		if st, ok := e.(StartInvocation); ok && st.Ref.NodeID == node {
			id = st.Ref.InvocationID
		}
	}
	if id == "" {
		h.t.Fatalf("no invocation started for %s", node)
	}
	return id
}

func count[T Effect](effs []Effect, keep func(T) bool) int {
	n := 0
	for _, e := range effs {
		if v, ok := e.(T); ok && (keep == nil || keep(v)) {
			n++
		}
	}
	return n
}

// runLinear drives one full turn to its commit and returns the invocation ids.
func (h *harness) runLinear() (stt, llm, tts string) {
	h.utterance(10)
	stt, llm, tts = h.inv("stt"), h.inv("llm"), h.inv("tts")
	h.must(h.emitOut(stt, text(eventabi.TypeTranscriptFinal, "hello")))
	h.end(stt, nil, "")
	h.must(h.emitOut(llm, text(eventabi.TypeTextDelta, "hi there")))
	h.end(llm, nil, "")
	h.must(h.emitOut(tts, loud()))
	h.end(tts, nil, "")
	return
}

func (h *harness) must(err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
