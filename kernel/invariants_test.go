package kernel

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel/eventabi"
)

// Tests named after the spec's design invariants 1..10 (section 5). Each
// drives the kernel with a scripted trace and fails if the invariant breaks.

type fakeAuthority struct{ epoch uint64 }

func (f *fakeAuthority) CurrentEpoch(string) uint64 { return f.epoch }

// scriptedAdmitter answers from a script, then admits.
type scriptedAdmitter struct {
	script []Decision
	seen   []TurnIntent
}

func (a *scriptedAdmitter) Admit(in TurnIntent) Decision {
	a.seen = append(a.seen, in)
	if len(a.script) == 0 {
		return Decision{Outcome: Admit}
	}
	d := a.script[0]
	a.script = a.script[1:]
	return d
}

func TestInvariant01_TurnOpenOnlyAfterAuthorityAdmissionAndPlanFreeze(t *testing.T) {
	refused := []struct {
		name   string
		mutate func(*SessionConfig)
		reason string
	}{
		{"stale authority", func(c *SessionConfig) { c.Authority = &fakeAuthority{epoch: 2} }, "stale_epoch"},
		{"admission reject", func(c *SessionConfig) {
			c.Admission = &scriptedAdmitter{script: []Decision{{Outcome: Reject, Reason: "tenant quota"}}}
		}, "tenant quota"},
		{"plan freeze fails", func(c *SessionConfig) { delete(c.Bindings.(fakeBindings), "llama") }, "plan: "},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, c.mutate)
			h.utterance(5)
			if len(h.find("turn_open")) != 0 || count[StartInvocation](h.effects, nil) != 0 || h.s.ActiveTurn() != "" {
				t.Fatalf("turn opened: %v", h.recordTypes())
			}
			r := h.find("pre_turn_reject")
			if len(r) != 1 || !strings.Contains(r[0].Reason, c.reason) {
				t.Fatalf("reject %+v", r)
			}
		})
	}
	t.Run("admitted after defer", func(t *testing.T) {
		adm := &scriptedAdmitter{script: []Decision{{Outcome: Defer, Reason: "warming", RetryAfter: 40 * time.Millisecond}}}
		h := newHarness(t, func(c *SessionConfig) { c.Admission = adm; c.Authority = &fakeAuthority{epoch: 1} })
		h.frames(3, loud)
		if len(h.find("turn_open")) != 0 || len(h.find("pre_turn_defer")) != 1 {
			t.Fatalf("records %v", h.recordTypes())
		}
		h.frames(2, loud) // held while deferred
		h.s.Tick()        // 40 ms have passed
		h.drain()
		open := h.find("turn_open")
		if len(open) != 1 || open[0].Attrs["attempt"] != "1" || len(adm.seen) != 2 {
			t.Fatalf("turn_open %+v", open)
		}
		plan, _ := h.s.TurnPlan()
		if open[0].Attrs["plan_hash"] != plan.Hash || plan.Hash == "" {
			t.Fatal("turn_open does not carry the frozen plan hash")
		}
		// turn_open precedes every StartInvocation; held frames are delivered.
		iOpen := slices.IndexFunc(h.effects, func(e Effect) bool { r, ok := e.(Record); return ok && r.Record.Type == "turn_open" })
		iStart := slices.IndexFunc(h.effects, func(e Effect) bool { _, ok := e.(StartInvocation); return ok })
		if iOpen < 0 || iStart < iOpen {
			t.Fatal("StartInvocation before turn_open")
		}
		if n := count(h.effects, func(d DeliverInput) bool { return d.InvocationID == h.inv("stt") }); n != 5 {
			t.Fatalf("held frames delivered %d, want 5", n)
		}
	})
	t.Run("plan frozen against later binding changes", func(t *testing.T) {
		h := newHarness(t, nil)
		h.frames(5, loud)
		before, _ := h.s.TurnPlan()
		h.cfg.Bindings.(fakeBindings)["espeak"] = Binding{Provider: "espeak", Version: "1.1.0", Pool: "espeak-v2"}
		h.must(h.emitOut(h.inv("stt"), text(eventabi.TypeTranscriptFinal, "x")))
		after, _ := h.s.TurnPlan()
		if after.Hash != before.Hash || after.node("tts").Binding.Version != "1.0.0" {
			t.Fatal("plan changed mid-turn")
		}
	})
}

func TestInvariant02_LifecycleOpenActiveTerminalClose(t *testing.T) {
	scenarios := map[string]func(h *harness) string{
		"commit": func(h *harness) string { h.runLinear(); return "turn_commit" },
		"node failure": func(h *harness) string {
			h.utterance(4)
			h.end(h.inv("llm"), ErrNodeFailed, "")
			return "turn_abort"
		},
		"timeout": func(h *harness) string {
			h.utterance(4)
			h.clk.Advance(time.Minute)
			h.s.Tick()
			h.drain()
			return "turn_abort"
		},
		"close": func(h *harness) string { h.frames(4, loud); h.s.Close("bye"); h.drain(); return "turn_abort" },
	}
	for name, run := range scenarios {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil)
			terminal := run(h)
			var life []string
			for _, r := range h.records() {
				if slices.Contains(lifecycleTypes, r.Type) {
					life = append(life, r.Type)
				}
			}
			if want := []string{"turn_open", "turn_active", terminal, "turn_close"}; !slices.Equal(life, want) {
				t.Fatalf("lifecycle %v, want %v", life, want)
			}
			if err := checkTimeline(h.records(), true); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestInvariant03_PreTurnOutcomesNeverEmitTerminals(t *testing.T) {
	adm := &scriptedAdmitter{script: []Decision{
		{Outcome: Reject, Reason: "overloaded"},
		{Outcome: Defer}, {Outcome: Defer}, {Outcome: Defer}, {Outcome: Defer}, // exhausts MaxDefers
	}}
	auth := &fakeAuthority{epoch: 1}
	h := newHarness(t, func(c *SessionConfig) { c.Admission = adm; c.Authority = auth })
	h.utterance(5) // rejected
	for range 6 {  // deferred until exhausted
		h.frames(5, loud)
		h.clk.Advance(100 * time.Millisecond)
		h.s.Tick()
		h.drain()
	}
	h.frames(15, quiet)
	for _, r := range h.records() {
		if strings.HasPrefix(r.Type, "turn_") {
			t.Fatalf("pre-turn outcome emitted %s: %v", r.Type, h.recordTypes())
		}
	}
	if len(h.find("pre_turn_reject")) != 2 || len(h.find("pre_turn_defer")) != 3 {
		t.Fatalf("records %v", h.recordTypes())
	}
	if count[StartInvocation](h.effects, nil) != 0 || count[FenceEgress](h.effects, nil) != 0 {
		t.Fatal("pre-turn outcome started or fenced something")
	}
	// A later admitted turn is unaffected.
	h.runLinear()
	if len(h.find("turn_commit")) != 1 {
		t.Fatal("admitted turn after rejects did not commit")
	}
	// Once the lease moved on (stale epoch), a proposal is rejected and
	// emits no terminal of its own.
	h.frames(15, quiet)
	before := len(h.find("turn_commit")) + len(h.find("turn_abort"))
	auth.epoch = 7
	h.utterance(5)
	if len(h.find("pre_turn_reject")) != 3 || len(h.find("turn_commit"))+len(h.find("turn_abort")) != before {
		t.Fatalf("records %v", h.recordTypes())
	}
	if r := h.find("pre_turn_reject"); r[2].Reason != ReasonStaleEpoch || r[2].Attrs["current_epoch"] != "7" {
		t.Fatalf("stale reject %+v", r[2])
	}
}

func TestInvariant04_ExactlyOneTerminal(t *testing.T) {
	traces := map[string]func(h *harness){
		"two failures": func(h *harness) {
			h.utterance(4)
			h.end(h.inv("llm"), ErrNodeFailed, "")
			h.end(h.inv("tts"), ErrNodeCrashed, "")
		},
		"fail then ok": func(h *harness) {
			h.utterance(4)
			h.end(h.inv("stt"), ErrNodeFailed, "")
			h.end(h.inv("stt"), nil, "")
			h.end(h.inv("llm"), nil, "")
		},
		"timeout then crash report": func(h *harness) {
			h.utterance(4)
			h.clk.Advance(time.Minute)
			h.s.Tick()
			h.end(h.inv("stt"), ErrNodeCrashed, "")
			h.s.Tick()
			h.drain()
		},
		"barge-in then late failure": func(h *harness) {
			h.utterance(4)
			tts := h.inv("tts")
			h.frames(3, loud)
			h.end(tts, ErrNodeCrashed, "")
		},
		"commit then close": func(h *harness) { h.runLinear(); h.s.Close("bye"); h.drain() },
		"cancel twice": func(h *harness) {
			h.frames(4, loud)
			h.must(h.s.Cancel("turn", "", "x"))
			h.must(h.s.Cancel("turn", "", "y"))
			h.drain()
		},
	}
	for name, run := range traces {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil)
			run(h)
			h.s.Close("end")
			h.drain()
			terminals := map[string]int{}
			for _, r := range h.records() {
				if r.Type == "turn_commit" || r.Type == "turn_abort" {
					terminals[r.TurnID]++
				}
			}
			for _, r := range h.find("turn_open") {
				if terminals[r.TurnID] != 1 {
					t.Fatalf("turn %s has %d terminals: %v", r.TurnID, terminals[r.TurnID], h.recordTypes())
				}
			}
			if err := checkTimeline(h.records(), true); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestInvariant05_ControlPreemptsDataTelemetryNeverBlocks(t *testing.T) {
	h := newHarness(t, func(c *SessionConfig) { c.TelemetryCapacity = 8 })
	h.utterance(4)
	tts := h.inv("tts")
	// Data and telemetry queue up without a drain, then a barge-in (control).
	for range 5 {
		h.must(h.s.OnNodeEvent(tts, loud()))
	}
	for range 50 {
		if err := h.s.OnNodeEvent(tts, eventabi.Event{Type: eventabi.TypeMetric}); err != nil {
			t.Fatalf("telemetry blocked or failed: %v", err)
		}
	}
	for range 3 {
		h.clk.Advance(frameDur)
		h.must(h.s.Ingest(loud()))
	}
	batch := h.drain()
	lastLane := eventabi.LaneControl
	sawControl := false
	for _, e := range batch {
		l := laneOf(e)
		if l < lastLane {
			t.Fatalf("%s effect after %s effect", l, lastLane)
		}
		lastLane = l
		sawControl = sawControl || l == eventabi.LaneControl
	}
	if !sawControl || count[FenceEgress](batch, nil) != 1 {
		t.Fatal("no control in the batch")
	}
	if st := h.s.Stats(); st.TelemetryDropped != 42 {
		t.Fatalf("telemetry dropped %d, want 42 (bounded at 8, never blocking)", st.TelemetryDropped)
	}
}

func TestInvariant06_EveryEdgeBounded(t *testing.T) {
	h := newHarness(t, func(c *SessionConfig) { c.Graph.Edges[1].Capacity = 5 })
	for _, pe := range h.s.edges {
		if pe.Capacity <= 0 || pe.High > pe.Capacity || pe.Low >= pe.High {
			t.Fatalf("edge %s has no sane bound: %+v", edgeName(pe.Spec), pe)
		}
	}
	h.frames(3, loud)
	for range 1000 { // no drain: the ingress edge must hold its bound
		h.clk.Advance(frameDur)
		h.must(h.s.Ingest(loud()))
		if err := checkBounds(h.s); err != nil {
			t.Fatal(err)
		}
	}
	stt := h.inv("stt")
	for range 100 {
		h.must(h.s.OnNodeEvent(stt, text(eventabi.TypeTranscriptPartial, "w")))
		if err := checkBounds(h.s); err != nil {
			t.Fatal(err)
		}
	}
	st := h.s.Stats()
	if st.MaxEdgeDepth != DefaultIngressCapacity || st.Shed != 1000-DefaultIngressCapacity+95 {
		t.Fatalf("stats %+v", st)
	}
	batch := h.drain()
	if n := count(batch, func(d DeliverInput) bool { return d.InvocationID == stt }); n != DefaultIngressCapacity {
		t.Fatalf("ingress delivered %d", n)
	}
}

func TestInvariant07_BoundedBlockThenShedOrDegrade(t *testing.T) {
	for _, mode := range []string{OverflowShed, OverflowDegrade} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, func(c *SessionConfig) {
				c.Graph.Edges[2] = EdgeSpec{From: "llm", To: "tts", Capacity: 4, BlockFor: 100 * time.Millisecond, Overflow: mode}
			})
			h.utterance(4)
			llm, tts := h.inv("llm"), h.inv("tts")
			for range 4 {
				h.must(h.s.OnNodeEvent(llm, text(eventabi.TypeTextDelta, "a")))
			}
			if err := h.s.OnNodeEvent(llm, text(eventabi.TypeTextDelta, "b")); !errors.Is(err, ErrQueueFull) {
				t.Fatalf("full edge within BlockFor: %v", err)
			}
			h.clk.Advance(60 * time.Millisecond)
			if err := h.s.OnNodeEvent(llm, text(eventabi.TypeTextDelta, "b")); !errors.Is(err, ErrQueueFull) {
				t.Fatalf("still within BlockFor: %v", err)
			}
			h.clk.Advance(50 * time.Millisecond) // past BlockFor: never an unbounded wait
			h.must(h.s.OnNodeEvent(llm, text(eventabi.TypeTextDelta, "b")))
			// The episode now sheds/degrades without blocking again until drained.
			h.must(h.s.OnNodeEvent(llm, text(eventabi.TypeTextDelta, "c")))
			batch := h.drain()
			var got []string
			for _, e := range batch {
				if d, ok := e.(DeliverInput); ok && d.InvocationID == tts {
					got = append(got, d.Event.Text.Text)
				}
			}
			want := map[string][]string{OverflowShed: {"a", "a", "b", "c"}, OverflowDegrade: {"a", "a", "a", "abc"}}[mode]
			if !slices.Equal(got, want) {
				t.Fatalf("delivered %v, want %v", got, want)
			}
			var actions []string
			for _, r := range h.find("pressure") {
				actions = append(actions, r.Attrs["level"]+":"+r.Attrs["action"])
			}
			if !slices.Equal(actions, []string{"high:block_then_" + mode, "full:block", "full:" + mode, "low:resume"}) {
				t.Fatalf("pressure records %v", actions)
			}
		})
	}
}

func TestInvariant08_WatermarkCrossingsRecordedDeterministically(t *testing.T) {
	run := func() []TimelineRecord {
		h := newHarness(t, func(c *SessionConfig) { c.Graph.Edges[1].Capacity = 8 })
		h.utterance(4)
		stt := h.inv("stt")
		for i := range 20 {
			h.must(h.s.OnNodeEvent(stt, text(eventabi.TypeTranscriptPartial, "w")))
			if i%10 == 9 {
				h.drain()
			}
		}
		h.drain()
		return h.find("pressure")
	}
	a, b := run(), run()
	if len(a) == 0 || !slices.EqualFunc(a, b, func(x, y TimelineRecord) bool {
		return x.Seq == y.Seq && x.Reason == y.Reason && x.MonoNanos == y.MonoNanos && x.Attrs["depth"] == y.Attrs["depth"]
	}) {
		t.Fatalf("pressure evidence differs between identical runs:\n%v\n%v", a, b)
	}
	var levels []string
	for _, r := range a {
		levels = append(levels, r.Attrs["level"]+":"+r.Attrs["action"]+"@"+r.Attrs["depth"])
		if r.Attrs["edge"] != "stt->llm" || r.TurnID == "" {
			t.Fatalf("pressure record without edge/turn: %+v", r)
		}
	}
	// High watermark of 8 is 6, low 2; shed recorded once per episode;
	// each drain's inputs are taken and the edge falls through low.
	want := []string{"high:shed@6", "full:shed@8", "low:resume@2", "high:shed@6", "full:shed@8", "low:resume@2"}
	if !slices.Equal(levels, want) {
		t.Fatalf("levels %v, want %v", levels, want)
	}
}

func TestInvariant09_CancelPropagatesByScopeWithProviderAndEgressFence(t *testing.T) {
	cases := []struct {
		scope, target string
		cancelled     []string // nodes whose invocation must get CancelInvocation
	}{
		{"invocation", "tts", []string{"tts", "llm", "stt"}},
		{"node", "llm", []string{"llm", "stt", "tts"}},
		{"turn", "", []string{"stt", "llm", "tts"}},
		{"session", "", []string{"stt", "llm", "tts"}},
	}
	for _, c := range cases {
		t.Run(c.scope, func(t *testing.T) {
			h := newHarness(t, nil)
			h.frames(4, loud)
			turn := h.s.ActiveTurn()
			target := c.target
			if c.scope == "invocation" {
				target = h.inv(c.target)
			}
			mark := len(h.effects)
			h.must(h.s.Cancel(c.scope, target, "operator"))
			h.drain()
			after := h.effects[mark:]
			for _, n := range c.cancelled {
				if count(after, func(ci CancelInvocation) bool { return ci.InvocationID == h.inv(n) }) != 1 {
					t.Fatalf("no cancel for %s: %#v", n, after)
				}
			}
			if count(after, func(f FenceEgress) bool { return f.TurnID == turn }) != 1 {
				t.Fatal("egress not fenced")
			}
			if c.scope == "session" != h.s.Closed() {
				t.Fatal("session scope must close, others must not")
			}
			cancel := h.find("cancel")
			if c.scope == "session" {
				cancel = h.find("session_close")
			}
			if len(cancel) != 1 || !strings.Contains(cancel[0].Reason, "operator") {
				t.Fatalf("cancel record %+v", cancel)
			}
		})
	}
}

func TestInvariant10_NothingOfCancelledScopeAfterFence(t *testing.T) {
	h := newHarness(t, nil)
	h.utterance(4)
	first := h.s.ActiveTurn()
	tts := h.inv("tts")
	// Agent audio is queued (not yet drained) when the user barges in.
	for range 5 {
		h.must(h.s.OnNodeEvent(tts, loud()))
	}
	for range 3 {
		h.clk.Advance(frameDur)
		h.must(h.s.Ingest(loud()))
	}
	for range 4 { // late output of the cancelled invocation
		h.must(h.s.OnNodeEvent(tts, loud()))
	}
	h.s.OnInvocationEnd(tts, InvocationResult{})
	h.s.Tick()
	h.drain()
	if err := checkFence(h.effects); err != nil {
		t.Fatal(err)
	}
	if n := count(h.effects, func(e EgressEvent) bool { return e.Event.TurnID == first }); n != 0 {
		t.Fatalf("%d egress events of the fenced turn left the kernel", n)
	}
	f := h.find("fence")
	if len(f) != 1 || f[0].TurnID != first || f[0].Attrs["flushed"] != "5" {
		t.Fatalf("fence record %+v", f)
	}
	if d := h.find("egress_drop"); len(d) != 1 || d[0].Attrs["count"] != "4" {
		t.Fatalf("egress_drop %+v", d)
	}
	// output_accepted / playback_started of the fenced turn are invalid now;
	// those of the new turn are evidence, recorded once.
	second := h.s.ActiveTurn()
	for _, ty := range []eventabi.Type{eventabi.TypeOutputAccepted, eventabi.TypePlaybackStarted} {
		if err := h.ingest(eventabi.Event{Type: ty, TurnID: first}); !errors.Is(err, ErrFenced) {
			t.Fatalf("%s after fence: %v", ty, err)
		}
		for range 2 {
			h.must(h.ingest(eventabi.Event{Type: ty, TurnID: second}))
		}
	}
	if h.s.Stats().PostFenceSignals != 2 || len(h.find("playback_started")) != 1 || len(h.find("output_accepted")) != 1 {
		t.Fatalf("signals: %+v %v", h.s.Stats(), h.recordTypes())
	}
	for _, r := range h.find("playback_started") {
		if r.TurnID != second {
			t.Fatal("playback_started recorded for the fenced turn")
		}
	}
}
