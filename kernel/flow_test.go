package kernel

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel/eventabi"
)

// A node that stops reading: its inputs stay outstanding, so the edge's
// bound holds across Ready batches (it used to reset on every Ready), the
// edge sheds past it with pressure evidence naming edge and node, and the
// node's timeout still ends the turn with one terminal naming it. The
// outstanding slots are given back when the invocation settles.
func TestEdgeBoundHoldsAcrossBatchesForANodeThatStopsReading(t *testing.T) {
	h := newHarness(t, func(c *SessionConfig) {
		c.Graph.Edges[0].Capacity = 16
		c.Graph.Nodes[0].Timeout = 3 * time.Second
	})
	h.slowNode = map[string]bool{"stt": true}
	h.frames(400, loud) // 8 s of speech, one Ready per frame
	stt := h.inv("stt")
	if err := checkBounds(h.s); err != nil {
		t.Fatal(err)
	}
	// 16 through the edge, plus the pre-roll the turn opened with.
	delivered := count(h.effects, func(d DeliverInput) bool { return d.InvocationID == stt })
	if delivered > 16+5 {
		t.Fatalf("%d inputs handed out for a node that took none, edge bound 16", delivered)
	}
	var shed bool
	for _, r := range h.find("pressure") {
		if r.Attrs["edge"] == "ingress->stt" && r.Attrs["node"] == "stt" && r.Attrs["action"] == OverflowShed {
			shed = true
		}
	}
	if !shed || h.s.Stats().Shed == 0 {
		t.Fatalf("no shed pressure naming ingress->stt / stt: %v, stats %+v", h.find("pressure"), h.s.Stats())
	}
	// The 3 s timeout passed during those 8 s: one terminal, naming stt.
	h.s.Tick()
	h.drain()
	aborts := h.find("turn_abort")
	if len(aborts) != 1 || !strings.Contains(aborts[0].Reason, "node stt") || !strings.Contains(aborts[0].Reason, "timed out") {
		t.Fatalf("turn_abort records %v, want one naming stt's timeout", aborts)
	}
	if d := h.s.q.edges[0].depth; d != 0 {
		t.Fatalf("edge depth %d after the invocation settled, want 0", d)
	}
}

// Room comes back as the runner reports inputs taken, and the end of the
// pressure episode is recorded at the low watermark.
func TestInputsTakenGiveRoomBack(t *testing.T) {
	h := newHarness(t, func(c *SessionConfig) { c.Graph.Edges[0].Capacity = 8 })
	h.slowNode = map[string]bool{"stt": true}
	h.frames(20, loud)
	stt := h.inv("stt")
	before := count(h.effects, func(d DeliverInput) bool { return d.InvocationID == stt })
	h.frames(20, loud)
	if again := count(h.effects, func(d DeliverInput) bool { return d.InvocationID == stt }); again != before {
		t.Fatalf("%d more inputs handed out with the edge full and none taken", again-before)
	}
	if d := h.s.q.edges[0].depth; d != 8 {
		t.Fatalf("edge depth %d with none taken, want its bound 8", d)
	}
	// Half the edge at most is with the runner; the rest waits in the
	// kernel, where shedding drops the oldest.
	if out := len(h.s.invs[stt].outstanding); out != 4 {
		t.Fatalf("%d inputs outstanding, want half the edge (4)", out)
	}
	// The node starts reading again: the harness reports every input
	// taken as it is handed out, so the edge drains through low.
	h.slowNode = nil
	h.s.OnInputsTaken(stt, before)
	h.drain()
	lows := 0
	for _, r := range h.find("pressure") {
		if r.Attrs["level"] == "low" && r.Attrs["edge"] == "ingress->stt" {
			lows++
		}
	}
	if lows != 1 {
		t.Fatalf("%d low watermark records after the inputs were taken, want 1", lows)
	}
	if d := h.s.q.edges[0].depth; d != 0 {
		t.Fatalf("edge depth %d after the node read everything", d)
	}
	drained := count(h.effects, func(d DeliverInput) bool { return d.InvocationID == stt })
	if drained != before+4 {
		t.Fatalf("%d inputs handed out in all after the drain, want %d (the 4 the kernel held)", drained, before+4)
	}
	h.frames(4, loud)
	if after := count(h.effects, func(d DeliverInput) bool { return d.InvocationID == stt }); after != drained+4 {
		t.Fatalf("%d inputs handed out after room came back, want %d", after, drained+4)
	}
	h.s.OnInputsTaken("inv-unknown", 3) // ignored
	h.s.OnInputsTaken(stt, 100)         // more than outstanding: clamped
	if err := checkBounds(h.s); err != nil {
		t.Fatal(err)
	}
}

// Node output is checked against what the bound implementation declared
// and against the unknown-type policy; inputs go only where accepted.
func TestNodeOutputTypesAreCheckedAgainstDeclarationAndPolicy(t *testing.T) {
	decl := func(c *SessionConfig) {
		b := defaultBindings()
		w := b["whisper"]
		w.Emits = []eventabi.Type{eventabi.TypeTranscriptFinal, eventabi.TypeTranscriptPartial, "vendor.score"}
		b["whisper"] = w
		l := b["llama"]
		l.Accepts = []eventabi.Type{eventabi.TypeTranscriptFinal}
		b["llama"] = l
		c.Bindings = b
		c.UnknownEventPolicy = UnknownReject
	}
	h := newHarness(t, decl)
	h.utterance(10)
	stt, llm := h.inv("stt"), h.inv("llm")

	err := h.emitOut(stt, text(eventabi.TypeTextDelta, "not declared"))
	if !errors.Is(err, eventabi.ErrUndeclaredType) {
		t.Fatalf("undeclared output: %v, want ErrUndeclaredType", err)
	}
	err = h.emitOut(stt, eventabi.Event{Type: "vendor.score", Text: &eventabi.Text{Text: "0.9"}})
	if !errors.Is(err, eventabi.ErrUnknownEventType) {
		t.Fatalf("declared but unknown type under reject: %v, want ErrUnknownEventType", err)
	}
	h.must(h.emitOut(stt, text(eventabi.TypeTranscriptPartial, "par")))
	h.must(h.emitOut(stt, text(eventabi.TypeTranscriptFinal, "hello")))
	toLLM := 0
	for _, e := range h.effects {
		if d, ok := e.(DeliverInput); ok && d.InvocationID == llm {
			toLLM++
			if d.Event.Type != eventabi.TypeTranscriptFinal {
				t.Fatalf("llm was delivered %s, which it does not accept", d.Event.Type)
			}
		}
	}
	if toLLM != 1 || h.s.Stats().NotAccepted != 1 || h.s.Stats().UndeclaredRejected != 1 {
		t.Fatalf("deliveries to llm %d, stats %+v", toLLM, h.s.Stats())
	}
	rej := h.find("node_output_reject")
	if len(rej) != 1 || rej[0].NodeID != "stt" || rej[0].Attrs["type"] != string(eventabi.TypeTextDelta) {
		t.Fatalf("node_output_reject records %v, want one (the first) naming stt and the type", rej)
	}

	// Under "drop", an unknown type is dropped silently; under "pass" it goes.
	for policy, want := range map[string]int{UnknownDrop: 0, UnknownPass: 1} {
		h := newHarness(t, func(c *SessionConfig) { c.UnknownEventPolicy = policy })
		h.utterance(10)
		stt, llm := h.inv("stt"), h.inv("llm")
		h.must(h.emitOut(stt, eventabi.Event{Type: "vendor.score", Text: &eventabi.Text{Text: "0.9"}}))
		if got := count(h.effects, func(d DeliverInput) bool { return d.InvocationID == llm }); got != want {
			t.Fatalf("policy %s: %d vendor events delivered, want %d", policy, got, want)
		}
	}
}
