package kernel

import (
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel/eventabi"
)

func withBudgets(rules []BudgetRule, costs map[string]float64) func(*SessionConfig) {
	return func(c *SessionConfig) { c.Budgets = Budgets{Rules: rules, Costs: costs} }
}

func budgetRecord(t *testing.T, h *harness, rule string) TimelineRecord {
	t.Helper()
	for _, r := range h.find("budget_exceeded") {
		if r.Attrs["rule"] == rule {
			return r
		}
	}
	t.Fatalf("no budget_exceeded for rule %s: %v", rule, h.recordTypes())
	return TimelineRecord{}
}

func TestBudgetContinueRecordsAndCommits(t *testing.T) {
	h := newHarness(t, withBudgets([]BudgetRule{{Name: "llama-cost", Scope: BudgetScopeProvider, Target: "llama",
		Metric: MetricCost, Limit: 0.5, Outcome: BudgetContinue}}, map[string]float64{"llama": 1}))
	h.runLinear()
	r := budgetRecord(t, h, "llama-cost")
	if r.Attrs["outcome"] != BudgetContinue || r.Attrs["value"] != "1" || r.Attrs["limit"] != "0.5" {
		t.Fatalf("record %+v", r)
	}
	if len(h.find("turn_commit")) != 1 || len(h.find("budget_exceeded")) != 1 {
		t.Fatalf("records %v", h.recordTypes())
	}
}

func TestBudgetTerminateAbortsTyped(t *testing.T) {
	h := newHarness(t, withBudgets([]BudgetRule{{Name: "slow-turn", Scope: BudgetScopeTurn, Metric: MetricTotalTime,
		Limit: 0.5, Outcome: BudgetTerminate}}, nil))
	h.utterance(10)
	h.clk.Advance(time.Second)
	h.s.Tick()
	h.drain()
	ab := h.find("turn_abort")
	if len(ab) != 1 || !strings.HasPrefix(ab[0].Reason, ErrBudgetExceeded.Error()+": rule slow-turn: total_time") {
		t.Fatalf("abort %+v / %v", ab, h.recordTypes())
	}
	if r := budgetRecord(t, h, "slow-turn"); r.Attrs["outcome"] != BudgetTerminate {
		t.Fatalf("record %+v", r)
	}
	if count[FenceEgress](h.effects, nil) != 1 {
		t.Fatal("terminated turn not fenced")
	}
}

func TestBudgetDegradeTruncatesReply(t *testing.T) {
	h := newHarness(t, withBudgets([]BudgetRule{{Name: "short-reply", Scope: BudgetScopeNode, Target: "llm",
		Metric: MetricChars, Limit: 6, Outcome: BudgetDegrade}}, nil))
	h.utterance(10)
	stt, llm, tts := h.inv("stt"), h.inv("llm"), h.inv("tts")
	h.must(h.emitOut(stt, text(eventabi.TypeTranscriptFinal, "hello")))
	h.end(stt, nil, "")
	h.must(h.emitOut(llm, text(eventabi.TypeTextDelta, "hi ")))
	h.must(h.emitOut(llm, text(eventabi.TypeTextDelta, "you ")))  // 7 chars: crosses
	h.must(h.emitOut(llm, text(eventabi.TypeTextDelta, "there"))) // after the cut: dropped
	delivered := count[DeliverInput](h.effects, func(d DeliverInput) bool { return d.InvocationID == tts })
	if delivered != 1 {
		t.Fatalf("tts got %d inputs, want only the one before the crossing", delivered)
	}
	if count[CancelInvocation](h.effects, func(c CancelInvocation) bool { return c.InvocationID == llm && c.Reason == "budget_truncate" }) != 1 ||
		count[CloseInput](h.effects, func(c CloseInput) bool { return c.InvocationID == tts }) != 1 {
		t.Fatal("llm not cut or tts input not closed")
	}
	h.must(h.emitOut(tts, loud()))
	h.end(tts, nil, "")
	if len(h.find("turn_commit")) != 1 || budgetRecord(t, h, "short-reply").Attrs["degrade"] != DegradeTruncate {
		t.Fatalf("records %v", h.recordTypes())
	}
}

func TestBudgetDegradeBindingAppliesFromNextTurn(t *testing.T) {
	h := newHarness(t, withBudgets([]BudgetRule{{Name: "cheap-tts", Scope: BudgetScopeNode, Target: "tts",
		Metric: MetricAudioSeconds, Limit: 0.01, Outcome: BudgetDegrade, Degrade: DegradeBinding, To: "piper"}}, nil))
	h.runLinear()
	first := h.find("turn_open")[0]
	if first.Attrs["binding.tts"] != "espeak@1.0.0" || len(h.find("turn_commit")) != 1 {
		t.Fatalf("first turn %+v", first)
	}
	h.frames(15, quiet)
	h.utterance(10)
	if got := h.find("turn_open")[1].Attrs["binding.tts"]; got != "piper@2.0.0" {
		t.Fatalf("second turn tts bound to %s", got)
	}
	if h.find("turn_open")[1].Attrs["plan_hash"] == first.Attrs["plan_hash"] {
		t.Fatal("degraded plan hashes like the first")
	}
}

func TestBudgetFallbackSwitchesBinding(t *testing.T) {
	h := newHarness(t, withBudgets([]BudgetRule{{Name: "tts-first", Scope: BudgetScopeNode, Target: "tts",
		Metric: MetricFirstOutput, Limit: 0.2, Outcome: BudgetFallback, To: "piper"}}, nil))
	h.utterance(10)
	stt, llm, tts := h.inv("stt"), h.inv("llm"), h.inv("tts")
	h.must(h.emitOut(stt, text(eventabi.TypeTranscriptFinal, "hello")))
	h.end(stt, nil, "")
	h.must(h.emitOut(llm, text(eventabi.TypeTextDelta, "hi there")))
	h.end(llm, nil, "")
	h.clk.Advance(300 * time.Millisecond) // tts has produced nothing
	h.s.Tick()
	h.drain()
	tts2 := h.inv("tts")
	if tts2 == tts {
		t.Fatalf("no new tts invocation: %v", h.recordTypes())
	}
	sw := h.find("provider_switch")
	if len(sw) != 1 || sw[0].Attrs["rule"] != "tts-first" || sw[0].Attrs["to"] != "piper@2.0.0" {
		t.Fatalf("switch %+v", sw)
	}
	// The replacement got the buffered input again, and its input closed.
	if count[DeliverInput](h.effects, func(d DeliverInput) bool { return d.InvocationID == tts2 }) != 1 ||
		count[CloseInput](h.effects, func(c CloseInput) bool { return c.InvocationID == tts2 }) != 1 {
		t.Fatal("fallback invocation did not get the inputs")
	}
	h.must(h.emitOut(tts2, loud()))
	h.end(tts2, nil, "")
	if len(h.find("turn_commit")) != 1 || len(h.find("budget_exceeded")) != 1 {
		t.Fatalf("records %v", h.recordTypes())
	}
}

// Same inputs, same decisions: two runs give identical records.
func TestBudgetDecisionsDeterministic(t *testing.T) {
	run := func() []string {
		h := newHarness(t, withBudgets([]BudgetRule{
			{Name: "a", Scope: BudgetScopeTurn, Metric: MetricFirstOutput, Limit: 0.1, Outcome: BudgetContinue},
			{Name: "b", Scope: BudgetScopeNode, Target: "llm", Metric: MetricTokens, Limit: 0, Outcome: BudgetContinue},
		}, map[string]float64{"whisper": 1}))
		h.runLinear()
		var out []string
		for _, r := range h.find("budget_exceeded") {
			out = append(out, r.Attrs["rule"]+"="+r.Attrs["value"]+"@"+r.TurnID)
		}
		return out
	}
	a, b := run(), run()
	if len(a) != 2 || strings.Join(a, ",") != strings.Join(b, ",") {
		t.Fatalf("runs differ or missing: %v vs %v", a, b)
	}
}

func TestBudgetRulesValidated(t *testing.T) {
	bad := []BudgetRule{
		{Name: "x", Scope: "galaxy", Metric: MetricCost, Outcome: BudgetContinue},
		{Name: "x", Scope: BudgetScopeNode, Target: "nope", Metric: MetricCost, Outcome: BudgetContinue},
		{Name: "x", Scope: BudgetScopeTurn, Metric: "joules", Outcome: BudgetContinue},
		{Name: "x", Scope: BudgetScopeTurn, Metric: MetricCost, Outcome: BudgetFallback},
		{Name: "x", Scope: BudgetScopeTurn, Metric: MetricCost, Outcome: "pray"},
		{Name: "x", Scope: BudgetScopeNode, Target: "llm", Metric: MetricTotalTime, Outcome: BudgetDegrade},
	}
	for _, r := range bad {
		err := ValidateBudgets(Budgets{Rules: []BudgetRule{r}}, linearGraph().Nodes)
		if !errorsIs(err, ErrConfig) {
			t.Errorf("%+v: %v", r, err)
		}
	}
}
