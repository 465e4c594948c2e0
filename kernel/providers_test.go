package kernel

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel/eventabi"
)

// providerListHarness binds tts to [espeak, piper, flite]; mutate the
// fake binding table to put a provider down.
func providerListHarness(t *testing.T, policy string, bindings func(fakeBindings)) *harness {
	return newHarness(t, func(c *SessionConfig) {
		c.Graph.Nodes[2].Providers = []string{"espeak", "piper", "flite"}
		c.Graph.Nodes[2].OnFailure = policy
		b := defaultBindings()
		b["flite"] = Binding{Provider: "flite", Version: "2.2.0", Pool: "flite"}
		if bindings != nil {
			bindings(b)
		}
		c.Bindings = b
	})
}

func lastStart(h *harness, node string) StartInvocation {
	var st StartInvocation
	for _, e := range h.effects {
		if s, ok := e.(StartInvocation); ok && s.Ref.NodeID == node {
			st = s
		}
	}
	return st
}

func TestProviderListSwitchesPastADownProviderAtFreeze(t *testing.T) {
	h := providerListHarness(t, "", func(b fakeBindings) {
		e := b["espeak"]
		e.Down = "provider circuit open: 5 restarts within 30s"
		b["espeak"] = e
	})
	h.utterance(5)
	if st := lastStart(h, "tts"); st.Binding.Provider != "piper" {
		t.Fatalf("tts started on %+v, want piper", st.Binding)
	}
	open := h.find("turn_open")[0]
	if got := open.Attrs["providers.tts"]; got != "espeak@1.0.0!down,piper@2.0.0,flite@2.2.0" {
		t.Errorf("turn_open providers.tts = %q", got)
	}
	if open.Attrs["binding.tts"] != "piper@2.0.0" {
		t.Errorf("binding.tts = %q", open.Attrs["binding.tts"])
	}
	sw := h.find("provider_switch")
	if len(sw) != 1 || sw[0].Attrs["policy"] != "switch" || sw[0].Attrs["why"] != "circuit_open" ||
		sw[0].Attrs["from"] != "espeak@1.0.0" || sw[0].Attrs["to"] != "piper@2.0.0" || !strings.Contains(sw[0].Reason, "5 restarts") {
		t.Fatalf("switch records %+v", sw)
	}
}

func TestProviderListFallsBackInOrderThenAborts(t *testing.T) {
	h := providerListHarness(t, PolicyFallback, nil)
	h.utterance(5)
	h.end(h.inv("tts"), &codedErr{code: "rate_limit"}, "")
	if st := lastStart(h, "tts"); st.Binding.Provider != "piper" || st.Attempt != 1 {
		t.Fatalf("first fallback started %+v", st)
	}
	h.end(h.inv("tts"), ErrNodeCrashed, "")
	if st := lastStart(h, "tts"); st.Binding.Provider != "flite" || st.Attempt != 2 {
		t.Fatalf("second fallback started %+v", st)
	}
	sw := h.find("provider_switch")
	if len(sw) != 2 || sw[0].Attrs["why"] != "rate_limit" || sw[0].Attrs["policy"] != "fallback" || sw[1].Attrs["why"] != "crashed" ||
		sw[1].Attrs["from"] != "piper@2.0.0" || sw[1].Attrs["to"] != "flite@2.2.0" {
		t.Fatalf("switches %+v", sw)
	}
	if f := h.find("invocation_fail"); f[0].Attrs["code"] != "rate_limit" {
		t.Errorf("invocation_fail attrs %v", f[0].Attrs)
	}
	h.end(h.inv("tts"), ErrNodeCrashed, "")
	if len(h.find("turn_abort")) != 1 {
		t.Fatalf("list exhausted: records %v", h.recordTypes())
	}
	if f := h.find("invocation_fail"); f[2].Attrs["why"] != "every provider of the list failed or is down" {
		t.Errorf("why %q", f[2].Attrs["why"])
	}
}

func TestProviderListFallbackSkipsProvidersDownAtFreeze(t *testing.T) {
	h := providerListHarness(t, PolicyFallback, func(b fakeBindings) {
		p := b["piper"]
		p.Down = "failed to start"
		b["piper"] = p
	})
	h.utterance(5)
	if len(h.find("provider_switch")) != 0 {
		t.Fatalf("espeak was up: no switch at freeze")
	}
	h.end(h.inv("tts"), ErrNodeFailed, "")
	if st := lastStart(h, "tts"); st.Binding.Provider != "flite" {
		t.Fatalf("fallback started %+v, want flite (piper was down)", st.Binding)
	}
}

func TestNextBindingAndPlanHashHoldTheList(t *testing.T) {
	single := newHarness(t, nil)
	single.utterance(5)
	list := providerListHarness(t, PolicyFallback, nil)
	list.utterance(5)
	h1, h2 := single.find("turn_open")[0].Attrs["plan_hash"], list.find("turn_open")[0].Attrs["plan_hash"]
	if h1 == h2 {
		t.Fatal("the provider list is not part of the plan hash")
	}
	plan := list.s.turn.plan
	next, _, ok := plan.nextBinding("tts", plan.node("tts").Binding)
	if !ok || next.Provider != "piper" {
		t.Fatalf("next after espeak: %+v %v", next, ok)
	}
	if _, why, ok := plan.nextBinding("tts", plan.node("tts").Chain[2]); ok || why == "" {
		t.Fatalf("next after the last: ok=%v why=%q", ok, why)
	}
	if _, _, ok := plan.nextBinding("stt", plan.node("stt").Binding); ok {
		t.Fatal("a single-provider node has no next binding")
	}
}

func TestProviderListMustStartWithTheProvider(t *testing.T) {
	g := linearGraph()
	g.Nodes[2].Providers = []string{"piper", "espeak"}
	_, err := NewSession(SessionConfig{SessionID: "s", Clock: &fakeClock{}, Graph: g})
	if !errors.Is(err, ErrBadPolicy) {
		t.Fatalf("got %v", err)
	}
}

func TestCapabilitiesServes(t *testing.T) {
	tts := Capabilities{Declared: true, SampleRates: []int{16000}, StreamingOutput: true, Languages: []string{"en"}}
	for _, tc := range []struct {
		caps Capabilities
		req  Requirements
		says string // "" serves
	}{
		{tts, Requirements{SampleRate: 16000, Language: "en-US", StreamingOutput: true}, ""},
		{tts, Requirements{SampleRate: 8000}, "sample rate 8000 Hz, it serves 16000 Hz"},
		{tts, Requirements{Language: "de"}, "language de, it serves en"},
		{tts, Requirements{StreamingInput: true}, "streaming input"},
		{Capabilities{Declared: true, SampleRates: []int{16000}}, Requirements{StreamingOutput: true}, "streaming output"},
		{Capabilities{Declared: true, SampleRates: []int{16000}}, Requirements{Language: "de"}, ""}, // declares no language: any
		{Capabilities{}, Requirements{SampleRate: 8000, Language: "de"}, ""},                        // declared nothing: unchecked
		{Capabilities{Declared: true, Languages: []string{"en-US"}}, Requirements{Language: "en"}, ""},
	} {
		err := tc.caps.Serves(tc.req)
		if (err == nil) != (tc.says == "") || err != nil && !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%+v serves %+v: %v, want %q", tc.caps, tc.req, err, tc.says)
		}
	}
}

// A provider of the list that cannot serve the node is passed over at
// freeze like a down one; a single provider that cannot is refused: the
// turn does not open.
func TestFreezeRefusesABindingThatCannotServe(t *testing.T) {
	withGerman := func(list []string) func(*SessionConfig) {
		return func(c *SessionConfig) {
			c.Graph.Nodes[2].Providers = list
			if list != nil {
				c.Graph.Nodes[2].OnFailure = PolicyFallback
			}
			c.Graph.Nodes[2].Requires = Requirements{Language: "de"}
			b := defaultBindings()
			e := b["espeak"]
			e.Caps = Capabilities{Declared: true, SampleRates: []int{16000}, Languages: []string{"en"}}
			b["espeak"] = e
			c.Bindings = b
		}
	}
	h := newHarness(t, withGerman([]string{"espeak", "piper"}))
	h.utterance(5)
	if st := lastStart(h, "tts"); st.Binding.Provider != "piper" {
		t.Fatalf("tts started on %+v, want piper (espeak speaks no German)", st.Binding)
	}
	sw := h.find("provider_switch")
	if len(sw) != 1 || !strings.Contains(sw[0].Reason, "cannot serve node tts: requires language de, it serves en") {
		t.Fatalf("switch %+v", sw)
	}
	h = newHarness(t, withGerman(nil))
	h.utterance(5)
	rej := h.find("pre_turn_reject")
	if len(h.find("turn_open")) != 0 || len(rej) != 1 || !strings.Contains(rej[0].Reason, "espeak@1.0.0 for node tts: requires language de") {
		t.Fatalf("records %v, reject %+v", h.recordTypes(), rej)
	}
}

type codedErr struct{ code string }

func (e *codedErr) Error() string       { return "upstream " + e.code }
func (e *codedErr) FailureCode() string { return e.code }
func (e *codedErr) Unwrap() error       { return ErrNodeFailed }

// A budget rule's fallback outcome without a To of its own moves the node
// to the next provider of its list, the same seam as a failure fallback.
func TestBudgetFallbackTakesTheNextProviderOfTheList(t *testing.T) {
	h := newHarness(t, func(c *SessionConfig) {
		c.Graph.Nodes[2].Providers = []string{"espeak", "piper"}
		c.Graph.Nodes[2].OnFailure = PolicyFallback
		c.Budgets = Budgets{Rules: []BudgetRule{{Name: "tts-first", Scope: BudgetScopeNode, Target: "tts",
			Metric: MetricFirstOutput, Limit: 0.2, Outcome: BudgetFallback}}}
	})
	h.utterance(10)
	stt, llm, tts := h.inv("stt"), h.inv("llm"), h.inv("tts")
	h.must(h.emitOut(stt, text(eventabi.TypeTranscriptFinal, "hello")))
	h.end(stt, nil, "")
	h.must(h.emitOut(llm, text(eventabi.TypeTextDelta, "hi there")))
	h.end(llm, nil, "")
	h.clk.Advance(300 * time.Millisecond)
	h.s.Tick()
	h.drain()
	if tts2 := h.inv("tts"); tts2 == tts {
		t.Fatalf("no new tts invocation: %v", h.recordTypes())
	}
	if st := lastStart(h, "tts"); st.Binding.Provider != "piper" {
		t.Fatalf("budget fallback started %+v, want piper", st.Binding)
	}
}
