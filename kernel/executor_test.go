package kernel

import (
	"slices"
	"testing"

	"github.com/rspp/rspp/kernel/eventabi"
)

func diamondGraph() GraphSpec {
	return GraphSpec{
		Nodes: []NodeSpec{
			{ID: "stt", Provider: "whisper"}, {ID: "llm", Provider: "llama"},
			{ID: "mood", Provider: "llama"}, {ID: "tts", Provider: "espeak"},
		},
		Edges: []EdgeSpec{
			{From: Ingress, To: "stt"},
			{From: "stt", To: "llm"}, {From: "stt", To: "mood"}, // fan-out
			{From: "llm", To: "tts"}, {From: "mood", To: "tts"}, // fan-in
			{From: "llm", To: Egress, Types: []eventabi.Type{eventabi.TypeTextFinal}},
			{From: "tts", To: Egress},
		},
	}
}

func deliveredTexts(effs []Effect, inv string) []string {
	var out []string
	for _, e := range effs {
		if d, ok := e.(DeliverInput); ok && d.InvocationID == inv && d.Event.Text != nil {
			out = append(out, d.Event.NodeID+":"+d.Event.Text.Text)
		}
	}
	return out
}

func TestFanOutFanInMergesInArrivalOrder(t *testing.T) {
	h := newHarness(t, func(c *SessionConfig) { c.Graph = diamondGraph() })
	h.utterance(4)
	stt, llm, mood, tts := h.inv("stt"), h.inv("llm"), h.inv("mood"), h.inv("tts")
	h.must(h.emitOut(stt, text(eventabi.TypeTranscriptFinal, "hi")))
	if got := [][]string{deliveredTexts(h.effects, llm), deliveredTexts(h.effects, mood)}; got[0][0] != "stt:hi" || got[1][0] != "stt:hi" {
		t.Fatalf("fan-out %v", got)
	}
	h.end(stt, nil, "")
	h.must(h.emitOut(mood, text(eventabi.TypeTextDelta, "calm")))
	h.must(h.emitOut(llm, text(eventabi.TypeTextDelta, "hel")))
	h.must(h.emitOut(mood, text(eventabi.TypeTextDelta, "!")))
	h.must(h.emitOut(llm, text(eventabi.TypeTextFinal, "hello")))
	want := []string{"mood:calm", "llm:hel", "mood:!", "llm:hello"}
	if got := deliveredTexts(h.effects, tts); !slices.Equal(got, want) {
		t.Fatalf("fan-in order %v, want %v", got, want)
	}
	// The type filter sends only text.final of llm to egress.
	if n := count(h.effects, func(e EgressEvent) bool { return e.Event.NodeID == "llm" }); n != 1 {
		t.Fatalf("llm egress %d", n)
	}
	h.end(llm, nil, "")
	if count(h.effects, func(c CloseInput) bool { return c.InvocationID == tts }) != 0 {
		t.Fatal("fan-in closed before every upstream ended")
	}
	h.end(mood, nil, "")
	if count(h.effects, func(c CloseInput) bool { return c.InvocationID == tts }) != 1 {
		t.Fatal("fan-in not closed after all upstreams ended")
	}
	h.end(tts, nil, "")
	if len(h.find("turn_commit")) != 1 {
		t.Fatalf("records %v", h.recordTypes())
	}
}

func TestSelectJoinTakesFirstUpstreamAndCancelsLoser(t *testing.T) {
	h := newHarness(t, func(c *SessionConfig) { c.Graph = fuzzGraphs()[2] })
	h.utterance(4)
	a, b, llm, tts := h.inv("stt-a"), h.inv("stt-b"), h.inv("llm"), h.inv("tts")
	if n := count(h.effects, func(d DeliverInput) bool { return d.InvocationID == a || d.InvocationID == b }); n != 2*19 {
		t.Fatalf("ingress fan-out delivered %d", n)
	}
	h.must(h.emitOut(b, text(eventabi.TypeTranscriptFinal, "from b")))
	h.must(h.emitOut(a, text(eventabi.TypeTranscriptFinal, "from a")))
	if got := deliveredTexts(h.effects, llm); !slices.Equal(got, []string{"stt-b:from b"}) {
		t.Fatalf("select delivered %v", got)
	}
	if sel := h.find("select"); len(sel) != 1 || sel[0].Attrs["upstream"] != "stt-b" {
		t.Fatalf("select record %+v", sel)
	}
	if count(h.effects, func(c CancelInvocation) bool { return c.InvocationID == a && c.Reason == "select_lost" }) != 1 {
		t.Fatal("losing branch not cancelled")
	}
	h.end(b, nil, "")
	h.end(llm, nil, "")
	h.end(tts, nil, "")
	if len(h.find("turn_commit")) != 1 {
		t.Fatalf("records %v", h.recordTypes())
	}
}

func TestMergeOrderIsDeterministicAcrossRuns(t *testing.T) {
	run := func() []Effect {
		h := newHarness(t, func(c *SessionConfig) { c.Graph = diamondGraph() })
		h.utterance(4)
		stt := h.inv("stt")
		h.must(h.emitOut(stt, text(eventabi.TypeTranscriptFinal, "x")))
		h.end(stt, nil, "")
		h.must(h.emitOut(h.inv("mood"), text(eventabi.TypeTextDelta, "m")))
		h.must(h.emitOut(h.inv("llm"), text(eventabi.TypeTextDelta, "l")))
		return h.effects
	}
	a, b := run(), run()
	if len(a) != len(b) {
		t.Fatal("different effect counts")
	}
	for i := range a {
		ea, eb := eventOf(a[i]), eventOf(b[i])
		if (ea == nil) != (eb == nil) || ea != nil && (ea.Sequence != eb.Sequence || ea.ID != eb.ID) {
			t.Fatalf("effect %d differs", i)
		}
	}
}

func TestGatewayPolicies(t *testing.T) {
	custom := eventabi.Event{Type: "vendor.dtmf", Text: &eventabi.Text{Text: "5"}}
	for _, policy := range []string{"", UnknownDrop, UnknownReject, UnknownPass} {
		t.Run("unknown="+policy, func(t *testing.T) {
			h := newHarness(t, func(c *SessionConfig) { c.UnknownEventPolicy = policy })
			h.frames(4, loud)
			err := h.ingest(custom)
			st := h.s.Stats()
			passed := count(h.effects, func(d DeliverInput) bool { return d.Event.Type == "vendor.dtmf" })
			switch policy {
			case UnknownReject:
				if !errorsIs(err, eventabi.ErrUnknownEventType) || st.UnknownRejected != 1 {
					t.Fatalf("err %v stats %+v", err, st)
				}
			case UnknownPass:
				if err != nil || passed != 1 {
					t.Fatalf("err %v passed %d", err, passed)
				}
			default:
				if err != nil || st.UnknownDropped != 1 || passed != 0 {
					t.Fatalf("err %v stats %+v", err, st)
				}
			}
		})
	}
	h := newHarness(t, nil)
	bad := []eventabi.Event{
		{Type: eventabi.TypeAudioFrame},
		{Type: eventabi.TypeAudioFrame, SchemaVersion: 9, Audio: loud().Audio},
		{Type: "NOT valid"},
		{Type: eventabi.TypeAudioFrame, Audio: &eventabi.Audio{PCM: []byte{1}, SampleRate: 16000, Channels: 1}},
	}
	for _, ev := range bad {
		if err := h.ingest(ev); err == nil {
			t.Fatalf("accepted %v", ev.String())
		}
	}
	if h.s.Stats().IngressMalformed != 4 {
		t.Fatalf("malformed not counted: %+v", h.s.Stats())
	}
	if _, err := NewSession(SessionConfig{SessionID: "s", Clock: &fakeClock{}, Graph: linearGraph(), UnknownEventPolicy: "maybe"}); !errorsIs(err, ErrConfig) {
		t.Fatalf("bad policy accepted: %v", err)
	}
}

func TestStaleEpochInputRejected(t *testing.T) {
	h := newHarness(t, func(c *SessionConfig) { c.Epoch = 5 })
	ev := loud()
	ev.Epoch = 4
	if err := h.ingest(ev); !errorsIs(err, ErrStaleEpoch) {
		t.Fatalf("stale ingress: %v", err)
	}
	h.utterance(4)
	out := text(eventabi.TypeTranscriptFinal, "x")
	out.Epoch = 3
	if err := h.emitOut(h.inv("stt"), out); !errorsIs(err, ErrStaleEpoch) {
		t.Fatalf("stale node output: %v", err)
	}
	if h.s.Stats().StaleEpoch != 2 {
		t.Fatal("stale epoch not counted")
	}
}

func branchGraph() GraphSpec {
	g := linearGraph()
	g.Nodes[2].OnFailure, g.Nodes[2].BranchTo = PolicyBranch, "text-out"
	g.Nodes = append(g.Nodes, NodeSpec{ID: "text-out", Provider: "piper"})
	g.Edges = append(g.Edges, EdgeSpec{From: "text-out", To: Egress})
	return g
}

func TestFallbackBranchTakesOverInputs(t *testing.T) {
	h := newHarness(t, func(c *SessionConfig) { c.Graph = branchGraph() })
	h.utterance(4)
	if count(h.effects, func(s StartInvocation) bool { return s.Ref.NodeID == "text-out" }) != 0 {
		t.Fatal("dormant branch started at turn open")
	}
	stt, llm, tts := h.inv("stt"), h.inv("llm"), h.inv("tts")
	h.must(h.emitOut(stt, text(eventabi.TypeTranscriptFinal, "hello")))
	h.end(stt, nil, "")
	h.must(h.emitOut(llm, text(eventabi.TypeTextDelta, "hi ")))
	h.end(tts, ErrNodeCrashed, "signal: killed")
	branch := h.inv("text-out")
	if got := deliveredTexts(h.effects, branch); !slices.Equal(got, []string{"llm:hi "}) {
		t.Fatalf("branch inputs %v", got)
	}
	h.must(h.emitOut(llm, text(eventabi.TypeTextFinal, "hi there")))
	if got := deliveredTexts(h.effects, branch); len(got) != 2 {
		t.Fatalf("later llm output not routed to the branch: %v", got)
	}
	if count(h.effects, func(c CloseInput) bool { return c.InvocationID == branch }) != 0 {
		t.Fatal("branch input closed before its primary's upstream ended")
	}
	h.end(llm, nil, "")
	if count(h.effects, func(c CloseInput) bool { return c.InvocationID == branch }) != 1 {
		t.Fatal("branch input not closed")
	}
	h.must(h.emitOut(branch, text(eventabi.TypeTextFinal, "hi there")))
	h.end(branch, nil, "")
	if len(h.find("branch_fallback")) != 1 || len(h.find("turn_commit")) != 1 {
		t.Fatalf("records %v", h.recordTypes())
	}
	if n := count(h.effects, func(e EgressEvent) bool { return e.Event.NodeID == "text-out" }); n != 1 {
		t.Fatalf("branch egress %d", n)
	}
}

func TestBranchValidation(t *testing.T) {
	bad := branchGraph()
	bad.Edges = append(bad.Edges, EdgeSpec{From: "llm", To: "text-out"})
	if _, err := NewSession(SessionConfig{SessionID: "s", Clock: &fakeClock{}, Graph: bad}); !errorsIs(err, ErrBadPolicy) {
		t.Fatalf("branch with in-edges accepted: %v", err)
	}
	bad = branchGraph()
	bad.Nodes[2].BranchTo = "nope"
	if _, err := NewSession(SessionConfig{SessionID: "s", Clock: &fakeClock{}, Graph: bad}); !errorsIs(err, ErrUnknownNode) {
		t.Fatalf("unknown branch accepted: %v", err)
	}
}
