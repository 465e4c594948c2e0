package kernel

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rspp/rspp/kernel/eventabi"
)

func TestNewSessionRejectsBadGraphs(t *testing.T) {
	n := func(id, p string) NodeSpec { return NodeSpec{ID: id, Provider: p} }
	e := func(a, b string) EdgeSpec { return EdgeSpec{From: a, To: b} }
	cases := []struct {
		name string
		g    GraphSpec
		kind error
		node string
	}{
		{"unknown target", GraphSpec{Nodes: []NodeSpec{n("a", "p")}, Edges: []EdgeSpec{e(Ingress, "a"), e("a", "zz"), e("a", Egress)}}, ErrUnknownNode, "zz"},
		{"unknown source", GraphSpec{Nodes: []NodeSpec{n("a", "p")}, Edges: []EdgeSpec{e(Ingress, "a"), e("yy", "a"), e("a", Egress)}}, ErrUnknownNode, "yy"},
		{"cycle", GraphSpec{Nodes: []NodeSpec{n("a", "p"), n("b", "p")}, Edges: []EdgeSpec{e(Ingress, "a"), e("a", "b"), e("b", "a"), e("b", Egress)}}, ErrCycle, "a"},
		{"self loop", GraphSpec{Nodes: []NodeSpec{n("a", "p")}, Edges: []EdgeSpec{e(Ingress, "a"), e("a", "a"), e("a", Egress)}}, ErrCycle, "a"},
		{"no provider", GraphSpec{Nodes: []NodeSpec{n("a", "")}, Edges: []EdgeSpec{e(Ingress, "a"), e("a", Egress)}}, ErrNoProvider, "a"},
		{"not from ingress", GraphSpec{Nodes: []NodeSpec{n("a", "p"), n("b", "p")}, Edges: []EdgeSpec{e(Ingress, "a"), e("a", Egress), e("b", Egress)}}, ErrUnreachable, "b"},
		{"dead end", GraphSpec{Nodes: []NodeSpec{n("a", "p"), n("b", "p")}, Edges: []EdgeSpec{e(Ingress, "a"), e("a", "b"), e("a", Egress)}}, ErrUnreachable, "b"},
		{"no path", GraphSpec{}, ErrUnreachable, ""},
		{"duplicate node", GraphSpec{Nodes: []NodeSpec{n("a", "p"), n("a", "p")}}, ErrDuplicate, "a"},
		{"fallback without provider", GraphSpec{Nodes: []NodeSpec{{ID: "a", Provider: "p", OnFailure: PolicyFallback}}, Edges: []EdgeSpec{e(Ingress, "a"), e("a", Egress)}}, ErrBadPolicy, "a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewSession(SessionConfig{SessionID: "s", Clock: &fakeClock{}, Graph: c.g})
			var ge *GraphError
			if !errors.Is(err, ErrInvalidGraph) || !errors.Is(err, c.kind) || !errors.As(err, &ge) {
				t.Fatalf("err = %v, want %v", err, c.kind)
			}
			if ge.Node != c.node {
				t.Fatalf("error names node %q, want %q (%v)", ge.Node, c.node, err)
			}
		})
	}
	if _, err := NewSession(SessionConfig{SessionID: "s", Clock: &fakeClock{}, Graph: linearGraph()}); err != nil {
		t.Fatalf("linear graph: %v", err)
	}
}

func TestLinearTurnCommits(t *testing.T) {
	h := newHarness(t, nil)
	stt, llm, tts := h.runLinear()
	want := []string{"session_open", "turn_open", "invocation_start", "invocation_start", "invocation_start", "turn_active",
		"invocation_end", "invocation_end", "invocation_end", "turn_commit", "turn_close"}
	if got := h.recordTypes(); !slices.Equal(got, want) {
		t.Fatalf("records\n got %v\nwant %v", got, want)
	}
	open := h.find("turn_open")[0]
	if open.Attrs["binding.tts"] != "espeak@1.0.0" || len(open.Attrs["plan_hash"]) != 64 {
		t.Fatalf("turn_open attrs %v", open.Attrs)
	}
	// 10 speech frames + 15 hangover frames, none lost at onset.
	if n := count(h.effects, func(d DeliverInput) bool { return d.InvocationID == stt }); n != 25 {
		t.Fatalf("stt got %d frames, want 25", n)
	}
	for _, id := range []string{stt, llm, tts} {
		if n := count(h.effects, func(c CloseInput) bool { return c.InvocationID == id }); n != 1 {
			t.Fatalf("CloseInput(%s) x%d", id, n)
		}
	}
	var out []EgressEvent
	for _, e := range h.effects {
		if eg, ok := e.(EgressEvent); ok {
			out = append(out, eg)
		}
	}
	if len(out) != 1 || out[0].Event.TurnID != h.find("turn_open")[0].TurnID || out[0].Event.NodeID != "tts" || out[0].Event.InvocationID != tts {
		t.Fatalf("egress %+v", out)
	}
	if h.s.ActiveTurn() != "" {
		t.Fatal("turn still active after commit")
	}
	checkSequences(t, h.effects)
}

// checkSequences: every emitted event has correlation and a strictly
// increasing sequence in emission order within its lane.
func checkSequences(t *testing.T, effs []Effect) {
	t.Helper()
	last := map[eventabi.Lane]uint64{}
	for _, e := range effs {
		ev := eventOf(e)
		if ev == nil {
			continue
		}
		if ev.SessionID == "" || ev.TurnID == "" || ev.NodeID == "" || ev.SchemaVersion != eventabi.SchemaVersion || ev.Sequence == 0 {
			t.Fatalf("missing correlation on %s", ev)
		}
		if ev.Sequence <= last[ev.Lane] {
			t.Fatalf("sequence not increasing: %s", ev)
		}
		last[ev.Lane] = ev.Sequence
	}
}

func TestNodeFailureAbortsWithReason(t *testing.T) {
	h := newHarness(t, nil)
	h.utterance(5)
	stt, llm, tts := h.inv("stt"), h.inv("llm"), h.inv("tts")
	h.must(h.emitOut(stt, text(eventabi.TypeTranscriptFinal, "hello")))
	h.end(stt, nil, "")
	mark := len(h.effects)
	h.end(tts, ErrNodeCrashed, "signal: killed")
	abort := h.find("turn_abort")
	if len(abort) != 1 || abort[0].Reason != "node tts failed: node crashed: signal: killed" {
		t.Fatalf("abort %+v", abort)
	}
	after := h.effects[mark:]
	if count(after, func(c CancelInvocation) bool { return c.InvocationID == llm }) != 1 ||
		count(after, func(c CancelInvocation) bool { return c.InvocationID == tts }) != 0 ||
		count[FenceEgress](after, nil) != 1 {
		t.Fatalf("effects after failure: %#v", after)
	}
	if got := h.recordTypes(); got[len(got)-1] != "turn_close" || len(h.find("turn_commit")) != 0 {
		t.Fatalf("records %v", got)
	}
	// Late output and a late end are tolerated and change nothing.
	if err := h.emitOut(llm, text(eventabi.TypeTextDelta, "late")); err != nil {
		t.Fatal(err)
	}
	h.end(llm, nil, "")
	if len(h.find("turn_close")) != 1 || count[DeliverInput](h.effects[mark:], nil) != 0 {
		t.Fatal("late events had effects")
	}
}

func TestRetryRedeliversInputs(t *testing.T) {
	h := newHarness(t, func(c *SessionConfig) { c.Graph.Nodes[0].OnFailure = PolicyRetry; c.Graph.Nodes[0].MaxRetries = 1 })
	h.frames(6, loud)
	first := h.inv("stt")
	delivered := count(h.effects, func(d DeliverInput) bool { return d.InvocationID == first })
	h.end(first, ErrNodeCrashed, "exit status 2")
	second := h.inv("stt")
	if second == first || len(h.find("invocation_retry")) != 1 {
		t.Fatalf("no retry: %v", h.recordTypes())
	}
	if n := count(h.effects, func(d DeliverInput) bool { return d.InvocationID == second }); n != delivered {
		t.Fatalf("re-delivered %d, want %d", n, delivered)
	}
	var st StartInvocation
	for _, e := range h.effects {
		if s, ok := e.(StartInvocation); ok && s.Ref.InvocationID == second {
			st = s
		}
	}
	if st.Attempt != 1 {
		t.Fatalf("attempt %d", st.Attempt)
	}
	// The second failure exhausts MaxRetries: abort.
	h.end(second, ErrNodeCrashed, "exit status 2")
	if a := h.find("turn_abort"); len(a) != 1 || !strings.Contains(a[0].Reason, "stt") {
		t.Fatalf("abort %+v", a)
	}
}

func TestFallbackSwitchesProvider(t *testing.T) {
	h := newHarness(t, func(c *SessionConfig) {
		c.Graph.Nodes[2].OnFailure = PolicyFallback
		c.Graph.Nodes[2].Fallback = "piper"
	})
	h.utterance(5)
	tts := h.inv("tts")
	h.end(tts, ErrNodeUnavailable, "")
	sw := h.find("provider_switch")
	if len(sw) != 1 || sw[0].Attrs["to"] != "piper@2.0.0" {
		t.Fatalf("switch %+v", sw)
	}
	var st StartInvocation
	for _, e := range h.effects {
		if s, ok := e.(StartInvocation); ok {
			st = s
		}
	}
	if st.Binding.Provider != "piper" || st.Ref.NodeID != "tts" || st.Attempt != 1 {
		t.Fatalf("start %+v", st)
	}
}

func TestRetryRefusedAfterOutput(t *testing.T) {
	h := newHarness(t, func(c *SessionConfig) { c.Graph.Nodes[1].OnFailure = PolicyRetry; c.Graph.Nodes[1].MaxRetries = 3 })
	h.utterance(5)
	llm := h.inv("llm")
	h.must(h.emitOut(llm, text(eventabi.TypeTextDelta, "partial")))
	h.end(llm, ErrNodeFailed, "")
	if len(h.find("invocation_retry")) != 0 || len(h.find("turn_abort")) != 1 {
		t.Fatalf("records %v", h.recordTypes())
	}
	if f := h.find("invocation_fail"); f[0].Attrs["why"] != "output already emitted downstream" {
		t.Fatalf("fail %+v", f)
	}
}

func TestTickTimesOutInvocation(t *testing.T) {
	h := newHarness(t, nil)
	h.utterance(5)
	stt := h.inv("stt")
	h.clk.Advance(9e9)
	h.s.Tick()
	if h.drain() != nil {
		t.Fatal("effects before the deadline")
	}
	h.clk.Advance(2e9)
	h.s.Tick()
	h.drain()
	if count(h.effects, func(c CancelInvocation) bool { return c.InvocationID == stt && c.Reason == "timeout" }) != 1 {
		t.Fatal("no timeout cancel")
	}
	a := h.find("turn_abort")
	if len(a) != 1 || !strings.Contains(a[0].Reason, "timeout") || !strings.Contains(a[0].Reason, "node stt") {
		t.Fatalf("abort %+v", a)
	}
}

func TestBargeInCancelsAndFences(t *testing.T) {
	h := newHarness(t, nil)
	h.utterance(5)
	first := h.s.ActiveTurn()
	stt, tts := h.inv("stt"), h.inv("tts")
	h.must(h.emitOut(stt, text(eventabi.TypeTranscriptFinal, "hello")))
	h.must(h.emitOut(tts, loud()))
	mark := len(h.effects)
	h.frames(3, loud) // 60 ms of speech: barge-in
	second := h.s.ActiveTurn()
	if second == "" || second == first {
		t.Fatalf("no new turn (%q)", second)
	}
	after := h.effects[mark:]
	if count(after, func(f FenceEgress) bool { return f.TurnID == first }) != 1 ||
		count(after, func(c CancelInvocation) bool { return c.InvocationID == tts && c.Reason == "barge_in" }) != 1 {
		t.Fatalf("barge-in effects %#v", after)
	}
	a := h.find("turn_abort")
	if len(a) != 1 || a[0].Reason != "barge_in" || a[0].TurnID != first {
		t.Fatalf("abort %+v", a)
	}
	// Late audio from the cancelled tts is dropped, counted, recorded once.
	for range 3 {
		if err := h.emitOut(tts, loud()); err != nil {
			t.Fatal(err)
		}
	}
	h.s.Tick()
	h.drain()
	h.s.Tick()
	h.drain()
	for _, e := range h.effects[mark:] {
		if eg, ok := e.(EgressEvent); ok && eg.Event.TurnID == first {
			t.Fatalf("egress of fenced turn: %v", eg.Event.String())
		}
	}
	d := h.find("egress_drop")
	if len(d) != 1 || d[0].Attrs["count"] != "3" || h.s.Stats().EgressDropped != 3 {
		t.Fatalf("egress_drop %+v", d)
	}
}

func TestCloseAbortsActiveTurn(t *testing.T) {
	h := newHarness(t, nil)
	h.frames(5, loud)
	turn := h.s.ActiveTurn()
	h.s.Close("bye")
	h.drain()
	got := h.recordTypes()
	tail := got[len(got)-5:]
	if !slices.Equal(tail, []string{"cancel", "fence", "turn_abort", "turn_close", "session_close"}) {
		t.Fatalf("records %v", got)
	}
	if _, ok := h.effects[len(h.effects)-1].(SessionClosed); !ok {
		t.Fatal("last effect is not SessionClosed")
	}
	if a := h.find("turn_abort"); a[0].Reason != "session_close" || a[0].TurnID != turn {
		t.Fatalf("abort %+v", a)
	}
	if !h.s.Closed() || !errors.Is(h.s.Ingest(loud()), ErrSessionClosed) || !errors.Is(h.s.OnNodeEvent("x", loud()), ErrSessionClosed) {
		t.Fatal("inputs accepted after close")
	}
	h.s.Close("again")
	h.s.Tick()
	if len(h.s.Ready()) != 0 {
		t.Fatal("effects after close")
	}
}

func TestCorrelationMismatchRejected(t *testing.T) {
	h := newHarness(t, nil)
	h.utterance(5)
	stt := h.inv("stt")
	ev := text(eventabi.TypeTranscriptFinal, "x")
	ev.TurnID = "turn-other"
	if err := h.emitOut(stt, ev); !errors.Is(err, eventabi.ErrCorrelation) {
		t.Fatalf("err %v", err)
	}
	ev.TurnID, ev.SessionID = "", "sess-2"
	if err := h.emitOut(stt, ev); !errors.Is(err, eventabi.ErrCorrelation) {
		t.Fatalf("err %v", err)
	}
	if h.s.Stats().CorrelationRejected != 2 || h.s.ActiveTurn() == "" {
		t.Fatal("not counted or turn harmed")
	}
	if err := h.emitOut("nope", ev); !errors.Is(err, ErrUnknownInvocation) {
		t.Fatalf("unknown inv: %v", err)
	}
}

func TestExplicitSpeechEvents(t *testing.T) {
	h := newHarness(t, func(c *SessionConfig) { c.VAD.Disabled = true })
	h.frames(3, loud) // no speech_start yet: not delivered, no turn
	if h.s.ActiveTurn() != "" {
		t.Fatal("turn without speech_start")
	}
	h.must(h.ingest(eventabi.Event{Type: eventabi.TypeSpeechStart}))
	stt := h.inv("stt")
	h.frames(4, quiet)
	h.must(h.ingest(eventabi.Event{Type: eventabi.TypeSpeechEnd}))
	if n := count(h.effects, func(d DeliverInput) bool { return d.InvocationID == stt }); n != 4 {
		t.Fatalf("delivered %d", n)
	}
	if count(h.effects, func(c CloseInput) bool { return c.InvocationID == stt }) != 1 {
		t.Fatal("stt input not closed")
	}
}

func TestCloseWhileDeferredLeavesEvidence(t *testing.T) {
	h := newHarness(t, func(c *SessionConfig) {
		c.Admission = AdmitterFunc(func(TurnIntent) Decision { return Decision{Outcome: Defer, Reason: "busy"} })
	})
	h.frames(4, loud)
	h.s.Close("bye")
	h.drain()
	r := h.find("pre_turn_reject")
	if len(r) != 1 || r[0].Reason != "session_close" || len(h.find("turn_open")) != 0 {
		t.Fatalf("records %v", h.recordTypes())
	}
}

func TestAbortPolicyKeepsNoRetryCopy(t *testing.T) {
	h := newHarness(t, nil)
	h.frames(50, loud)
	if inv := h.s.invs[h.inv("stt")]; len(inv.inputs) != 0 {
		t.Fatalf("abort-policy node keeps %d inputs", len(inv.inputs))
	}
}
