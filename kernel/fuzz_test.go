package kernel

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel/eventabi"
)

// fuzzGraphs are the shapes the kernel fuzz runs: a chain with policies and
// tight blocking edges, a fan-out/fan-in DAG, a select join.
func fuzzGraphs() []GraphSpec {
	chain := linearGraph()
	chain.Nodes[0].OnFailure, chain.Nodes[0].MaxRetries = PolicyRetry, 2
	chain.Nodes[2].OnFailure, chain.Nodes[2].Fallback = PolicyFallback, "piper"
	chain.Edges[1].Capacity = 3
	chain.Edges[2] = EdgeSpec{From: "llm", To: "tts", Capacity: 2, BlockFor: 50 * time.Millisecond, Overflow: OverflowDegrade}
	chain.Edges[3].Capacity = 4

	dag := GraphSpec{
		Nodes: []NodeSpec{
			{ID: "stt", Provider: "whisper", Timeout: 2 * time.Second},
			{ID: "llm", Provider: "llama", OnFailure: PolicyRetry, MaxRetries: 1},
			{ID: "mood", Provider: "llama", OnFailure: PolicyBranch, BranchTo: "mood-lite"},
			{ID: "mood-lite", Provider: "deepgram"},
			{ID: "tts", Provider: "espeak", OnFailure: PolicyFallback, Fallback: "piper"},
		},
		Edges: []EdgeSpec{
			{From: Ingress, To: "stt", Capacity: 6},
			{From: "stt", To: "llm"}, {From: "stt", To: "mood", Capacity: 2},
			{From: "llm", To: "tts", Capacity: 3}, {From: "mood", To: "tts"}, {From: "mood-lite", To: "tts"},
			{From: "llm", To: Egress, Types: []eventabi.Type{eventabi.TypeTextDelta}, Capacity: 2},
			{From: "tts", To: Egress, Capacity: 5, BlockFor: 20 * time.Millisecond},
		},
	}
	sel := GraphSpec{
		Nodes: []NodeSpec{
			{ID: "stt-a", Provider: "whisper"}, {ID: "stt-b", Provider: "deepgram"},
			{ID: "llm", Provider: "llama", Join: JoinSelect}, {ID: "tts", Provider: "espeak"},
		},
		Edges: []EdgeSpec{
			{From: Ingress, To: "stt-a"}, {From: Ingress, To: "stt-b"},
			{From: "stt-a", To: "llm"}, {From: "stt-b", To: "llm"},
			{From: "llm", To: "tts"}, {From: "tts", To: Egress, Capacity: 3},
		},
	}
	return []GraphSpec{chain, dag, sel}
}

// fuzzBudgets has a rule of every outcome on nodes every fuzz graph has.
func fuzzBudgets() Budgets {
	return Budgets{Costs: map[string]float64{"llama": 1, "espeak": 0.5}, Rules: []BudgetRule{
		{Name: "turn-time", Scope: BudgetScopeTurn, Metric: MetricTotalTime, Limit: 3, Outcome: BudgetTerminate},
		{Name: "llm-chars", Scope: BudgetScopeNode, Target: "llm", Metric: MetricChars, Limit: 3, Outcome: BudgetDegrade},
		{Name: "tts-first", Scope: BudgetScopeNode, Target: "tts", Metric: MetricFirstOutput, Limit: 0.3, Outcome: BudgetFallback, To: "piper"},
		{Name: "llama-cost", Scope: BudgetScopeProvider, Target: "llama", Metric: MetricCost, Limit: 1, Outcome: BudgetContinue},
		{Name: "tts-audio", Scope: BudgetScopeNode, Target: "tts", Metric: MetricAudioSeconds, Limit: 0.05, Outcome: BudgetDegrade, Degrade: DegradeBinding, To: "piper"},
		{Name: "turn-tokens", Scope: BudgetScopeTurn, Metric: MetricTokens, Limit: 2, Outcome: BudgetTerminate},
	}}
}

var fuzzTypes = []eventabi.Type{eventabi.TypeTextDelta, eventabi.TypeTranscriptFinal, eventabi.TypeAudioFrame, eventabi.TypeMetric, "vendor.custom"}
var fuzzErrs = []error{ErrNodeCrashed, ErrNodeFailed, ErrNodeTimeout, ErrProtocol, ErrResourceLimit, ErrNodeUnavailable}

func fuzzEvent(ty eventabi.Type) eventabi.Event {
	switch ty {
	case eventabi.TypeAudioFrame:
		return loud()
	case eventabi.TypeMetric:
		return eventabi.Event{Type: ty}
	}
	return text(ty, "w")
}

// runFuzzTrace interprets data as a script of kernel inputs and checks the
// kernel's safety properties after every step and at the end.
func runFuzzTrace(t *testing.T, data []byte) {
	if len(data) == 0 {
		return
	}
	graphs := fuzzGraphs()
	mode := data[0]
	data = data[1:]
	n := 0
	var auth *fakeAuthority // mode 0x80: budgets and a lease that can be lost
	h := newHarness(t, func(c *SessionConfig) {
		if mode&0x80 != 0 {
			auth = &fakeAuthority{epoch: c.Epoch}
			c.Authority = auth
			c.Budgets = fuzzBudgets()
		}
		c.Graph = graphs[int(mode)%len(graphs)]
		c.VAD.Disabled = mode&0x10 != 0
		c.TelemetryCapacity = 4
		c.RetryBuffer = 8
		c.AwaitPlayback = mode&0x40 != 0 // a live transport's session
		if mode&0x20 != 0 {
			c.Admission = AdmitterFunc(func(in TurnIntent) Decision {
				n++
				switch {
				case n%5 == 0:
					return Decision{Outcome: Reject, Reason: "every fifth"}
				case n%3 == 0:
					return Decision{Outcome: Defer, RetryAfter: 30 * time.Millisecond}
				}
				return Decision{Outcome: Admit}
			})
		}
	})
	var invs, fenced []string
	scanned, fencedScan := 0, 0
	pick := func(b byte) string {
		for _, e := range h.effects[scanned:] {
			if st, ok := e.(StartInvocation); ok {
				invs = append(invs, st.Ref.InvocationID)
			}
		}
		scanned = len(h.effects)
		if len(invs) == 0 {
			return "inv-none"
		}
		// Bias toward recent invocations, but reach old (cancelled) ones too.
		k := int(b) % (len(invs) + 2)
		if k >= len(invs) {
			k = len(invs) - 1
		}
		return invs[len(invs)-1-k]
	}
	for i := 0; i+1 < len(data); i += 2 {
		op, arg := data[i]%16, data[i+1]
		switch op {
		case 0, 1, 2, 3:
			h.clk.Advance(frameDur)
			_ = h.s.Ingest(loud())
		case 4, 5:
			for range int(arg % 20) {
				h.clk.Advance(frameDur)
				_ = h.s.Ingest(quiet())
			}
		case 6:
			_ = h.s.OnNodeEvent(pick(arg), fuzzEvent(fuzzTypes[int(arg>>4)%len(fuzzTypes)]))
		case 7:
			h.s.OnInvocationEnd(pick(arg), InvocationResult{})
		case 8:
			h.s.OnInvocationEnd(pick(arg), InvocationResult{Err: fuzzErrs[int(arg>>4)%len(fuzzErrs)], Detail: "fuzz"})
		case 9:
			h.clk.Advance(time.Duration(arg) * 20 * time.Millisecond)
			h.s.Tick()
		case 10:
			scopes := []string{"turn", "node", "invocation", "session"}
			target := ""
			switch scopes[arg%4] {
			case "node":
				target = "llm"
			case "invocation":
				target = pick(arg >> 2)
			}
			_ = h.s.Cancel(scopes[arg%4], target, "fuzz")
		case 11:
			if arg%8 == 0 {
				h.s.Close("fuzz")
			} else if arg%8 == 1 && auth != nil {
				auth.epoch++ // the lease moved on
			}
		case 12, 13:
			h.drain()
		case 14:
			ev := fuzzEvent(fuzzTypes[int(arg)%len(fuzzTypes)])
			switch arg % 4 {
			case 0:
				ev.TurnID = "turn-foreign"
			case 1:
				ev.SchemaVersion = 99
			case 2:
				ev.Lane = eventabi.LaneControl
			case 3:
				ev.Type = "Bad Type"
			}
			id := pick(arg)
			inv := h.s.invs[id]
			live := !h.s.Closed() && inv != nil && inv.status == invOpen && !inv.t.terminal
			if err := h.s.OnNodeEvent(id, ev); err == nil && live {
				t.Fatalf("malformed node event accepted by a live invocation: %v", ev.String())
			}
		case 15:
			switch arg % 4 {
			case 0:
				_ = h.s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechStart})
			case 1:
				_ = h.s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechEnd})
			default: // an output signal for some fenced or live turn
				for _, e := range h.effects[fencedScan:] {
					if f, ok := e.(FenceEgress); ok {
						fenced = append(fenced, f.TurnID)
					}
				}
				fencedScan = len(h.effects)
				turn := h.s.ActiveTurn()
				if len(fenced) > 0 && arg&4 != 0 {
					turn = fenced[int(arg>>3)%len(fenced)]
				}
				typ := eventabi.TypePlaybackStarted
				if arg%4 == 3 {
					// A live transport: frames played, then its playback end.
					h.s.OnEgressPlayed(turn, int(arg>>5)+1)
					typ = eventabi.TypePlaybackDone
				}
				err := h.s.Ingest(eventabi.Event{Type: typ, TurnID: turn})
				if turn != "" && slices.Contains(fenced, turn) && !h.s.Closed() && !errors.Is(err, ErrFenced) {
					t.Fatalf("%s accepted for fenced turn %s: %v", typ, turn, err)
				}
			}
		}
		if err := checkBounds(h.s); err != nil {
			t.Fatalf("step %d: %v", i/2, err)
		}
	}
	h.s.Close("end")
	h.drain()
	if err := checkTimeline(h.records(), true); err != nil {
		t.Fatal(err)
	}
	if err := checkFence(h.effects); err != nil {
		for i, e := range h.effects {
			t.Logf("%d %#v", i, e)
		}
		t.Fatal(err) // the effect log above is the counterexample
	}
	closedAt := -1
	for i, e := range h.effects {
		if _, ok := e.(SessionClosed); ok {
			if closedAt >= 0 {
				t.Fatal("two SessionClosed")
			}
			closedAt = i
		}
	}
	if closedAt != len(h.effects)-1 {
		t.Fatalf("SessionClosed at %d of %d effects", closedAt, len(h.effects))
	}
	if !errors.Is(h.s.Ingest(loud()), ErrSessionClosed) {
		t.Fatal("ingest after close")
	}
}

func FuzzKernel(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 2, 0, 3, 0, 4, 19, 6, 0x10, 7, 2, 6, 0x20, 7, 1, 6, 0x30, 7, 0})
	f.Add([]byte{1, 0, 0, 1, 0, 2, 0, 3, 0, 4, 19, 6, 0x10, 0, 0, 1, 0, 2, 0, 6, 3, 8, 1, 12, 0})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0x11, 9, 200, 10, 1, 12, 0, 11, 0})
	f.Add([]byte{0x30, 15, 0, 6, 0, 6, 0x10, 15, 1, 14, 1, 14, 2, 6, 0x30, 8, 0, 9, 5, 15, 0, 12, 0})
	f.Add([]byte{0x21, 0, 0, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 9, 2, 0, 0, 4, 18, 6, 1, 6, 1, 6, 1, 6, 1, 7, 0})
	// Budgets and a lease lost mid-turn (mode 0x80).
	f.Add([]byte{0x80, 0, 0, 0, 0, 0, 0, 4, 18, 6, 0x10, 7, 2, 6, 0x01, 6, 0x01, 9, 20, 6, 0x20, 11, 1, 6, 0x20, 7, 0, 9, 1})
	f.Add([]byte{0x81, 0, 0, 0, 0, 4, 18, 9, 200, 6, 0x01, 8, 0x11, 11, 1, 0, 0, 4, 18, 9, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		runFuzzTrace(t, data)
	})
}

// TestRandomInterleavings is the property test run on every `go test`: seeded
// random traces through the same checks as FuzzKernel.
func TestRandomInterleavings(t *testing.T) {
	seed := uint64(0x9e3779b97f4a7c15)
	next := func() byte {
		seed ^= seed << 13
		seed ^= seed >> 7
		seed ^= seed << 17
		return byte(seed)
	}
	for range 400 {
		data := make([]byte, 1+int(next())*2)
		for i := range data {
			data[i] = next()
		}
		runFuzzTrace(t, data)
	}
}
