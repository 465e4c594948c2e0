package kernel

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rspp/rspp/kernel/eventabi"
)

// RK-07: budgets per turn, node and provider. A BudgetRule bounds one
// metric of one scope; the rules and the cost table are frozen into the
// turn's plan (and its hash). Each rule fires at most once per turn, the
// first time the metric is past its limit, decided from the kernel's
// inputs only (the injected clock at Tick and at each event, the node
// outputs), and records budget_exceeded with the rule, the metric, the
// limit, the value and the outcome. The outcomes:
//
//   - continue: evidence only.
//   - degrade: Degrade "truncate" (output metrics of a node: a shorter
//     reply) ends the node's invocation at the crossing as if it had
//     finished, so what it produced so far is its output and its
//     downstream gets its end; anything after is dropped. Degrade
//     "binding" binds the node to the cheaper provider To from the
//     session's next turn on (a plan is immutable during its turn).
//   - fallback: the node's open invocation is replaced by one on the
//     fallback binding frozen at plan freeze (To, else the node's own
//     fallback provider), with its inputs re-delivered, when nothing it
//     produced went downstream yet; otherwise the turn terminates (the
//     record says why).
//   - terminate: the turn aborts with a reason starting
//     "budget_exceeded" (ErrBudgetExceeded) and naming the rule.

// Budget scopes, metrics, outcomes and degrade modes.
const (
	BudgetScopeTurn     = "turn"
	BudgetScopeNode     = "node"
	BudgetScopeProvider = "provider"

	MetricFirstOutput  = "first_output"  // seconds from start to the first output
	MetricTotalTime    = "total_time"    // seconds from start
	MetricTokens       = "tokens"        // streamed text chunks (words of a final text without deltas)
	MetricChars        = "chars"         // characters of text output
	MetricAudioSeconds = "audio_seconds" // seconds of audio output
	MetricCost         = "cost"          // abstract cost units of provider calls

	BudgetContinue  = "continue"
	BudgetDegrade   = "degrade"
	BudgetFallback  = "fallback"
	BudgetTerminate = "terminate"

	DegradeTruncate = "truncate"
	DegradeBinding  = "binding"
)

// ErrBudgetExceeded is the kind of a turn terminated by a budget rule.
var ErrBudgetExceeded = errors.New("budget_exceeded")

// BudgetRule is one budget. For scope turn, times run from turn_open and
// outputs are what reached egress; for scope node, from the start of the
// node's current invocation and its outputs; for scope provider, over the
// invocations bound to provider Target. Limit is in the metric's unit
// (seconds, count, units).
type BudgetRule struct {
	Name    string
	Scope   string
	Target  string // node id (node) or provider name (provider)
	Metric  string
	Limit   float64
	Outcome string
	Degrade string // degrade only: truncate (default) or binding
	To      string // provider for degrade binding / fallback
}

// Budgets are the session's budget rules and the cost of one call of each
// provider (missing: 0).
type Budgets struct {
	Rules []BudgetRule
	Costs map[string]float64
}

// ValidateBudgets checks rules against the graph's node ids.
func ValidateBudgets(b Budgets, nodes []NodeSpec) error {
	ids := map[string]bool{}
	for _, n := range nodes {
		ids[n.ID] = true
	}
	for i, r := range b.Rules {
		bad := func(msg string, a ...any) error {
			return fmt.Errorf("%w: budget rule %d (%s): %s", ErrConfig, i, r.Name, fmt.Sprintf(msg, a...))
		}
		switch r.Scope {
		case BudgetScopeTurn:
		case BudgetScopeNode:
			if !ids[r.Target] {
				return bad("unknown node %q", r.Target)
			}
		case BudgetScopeProvider:
			if r.Target == "" {
				return bad("scope provider needs a target provider")
			}
		default:
			return bad("scope must be turn, node or provider, got %q", r.Scope)
		}
		switch r.Metric {
		case MetricFirstOutput, MetricTotalTime, MetricTokens, MetricChars, MetricAudioSeconds, MetricCost:
		default:
			return bad("metric must be first_output, total_time, tokens, chars, audio_seconds or cost, got %q", r.Metric)
		}
		if r.Limit < 0 {
			return bad("limit must not be negative")
		}
		switch r.Outcome {
		case BudgetContinue, BudgetTerminate:
		case BudgetDegrade:
			switch r.Degrade {
			case "", DegradeTruncate:
				if r.Scope != BudgetScopeNode || !outputMetric(r.Metric) {
					return bad("degrade truncate applies to a node's tokens, chars or audio_seconds")
				}
			case DegradeBinding:
				if r.Scope != BudgetScopeNode || r.To == "" {
					return bad("degrade binding needs scope node and a provider in to")
				}
			default:
				return bad("degrade must be truncate or binding, got %q", r.Degrade)
			}
		case BudgetFallback:
			if r.Scope != BudgetScopeNode {
				return bad("fallback applies to scope node")
			}
		default:
			return bad("outcome must be continue, degrade, fallback or terminate, got %q", r.Outcome)
		}
	}
	return nil
}

func outputMetric(m string) bool {
	return m == MetricTokens || m == MetricChars || m == MetricAudioSeconds
}

func timeMetric(m string) bool { return m == MetricFirstOutput || m == MetricTotalTime }

// usage is what one scope has used in a turn.
type usage struct {
	start       int64 // clock at its start (turn open, invocation start)
	firstAt     int64 // clock at its first output; -1 none yet
	chars       int
	tokens      int
	audio       int64 // ns
	cost        float64
	sawDelta    bool
	ended       bool // no more time accrues (its invocations ended)
	lastEndedAt int64
}

func newUsage(now int64) *usage { return &usage{start: now, firstAt: -1} }

// turnBudget is a turn's budget accounting.
type turnBudget struct {
	fired     []bool
	turn      *usage
	nodes     map[string]*usage
	providers map[string]*usage
	fallbacks map[int]*Binding // rule index -> frozen fallback/degrade binding
}

// budgetState is the session's budget state across turns.
type budgetState struct {
	degraded map[string]Binding // node -> cheaper binding for later turns
}

// freezeBudgets resolves what the plan needs of the budget rules.
func freezeBudgets(p *ResolvedTurnPlan, cfg *SessionConfig, src BindingSource) {
	p.Budgets = cfg.Budgets.Rules
	p.Costs = cfg.Budgets.Costs
	for i, r := range p.Budgets {
		if r.To == "" {
			continue
		}
		if b, ok := src.Binding(r.To); ok {
			if p.budgetBindings == nil {
				p.budgetBindings = map[int]*Binding{}
			}
			p.budgetBindings[i] = &b
		}
	}
}

// canonicalBudgets is the budget part of the plan's canonical encoding.
func (p *ResolvedTurnPlan) canonicalBudgets(w func(...string)) {
	for i, r := range p.Budgets {
		to := "-"
		if b := p.budgetBindings[i]; b != nil {
			to = b.Provider + "@" + b.Version + "#" + b.Pool
		}
		w("budget", r.Name, r.Scope, r.Target, r.Metric, strconv.FormatFloat(r.Limit, 'g', -1, 64), r.Outcome, r.Degrade, r.To, to)
	}
	names := make([]string, 0, len(p.Costs))
	for n := range p.Costs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w("cost", n, strconv.FormatFloat(p.Costs[n], 'g', -1, 64))
	}
}

func (s *Session) budgetsOn(t *turn) bool { return len(t.plan.Budgets) > 0 }

// budgetOpen starts a turn's accounting (at turn_open).
func (s *Session) budgetOpen(t *turn) {
	if !s.budgetsOn(t) {
		return
	}
	t.budget = &turnBudget{fired: make([]bool, len(t.plan.Budgets)), turn: newUsage(s.now),
		nodes: map[string]*usage{}, providers: map[string]*usage{}}
}

// boundFor is the binding node gets at plan freeze: a degrade binding
// rule of an earlier turn replaces the configured one.
func (s *Session) boundFor(node string, b Binding) Binding {
	if d, ok := s.budgets.degraded[node]; ok {
		return d
	}
	return b
}

// budgetStart accounts an invocation's start: its node's clock restarts,
// its provider call costs.
func (s *Session) budgetStart(inv *invocation) {
	tb := inv.t.budget
	if tb == nil {
		return
	}
	nu := newUsage(s.now)
	if old := tb.nodes[inv.pn.Spec.ID]; old != nil {
		nu.cost = old.cost
	}
	tb.nodes[inv.pn.Spec.ID] = nu
	pu := tb.providers[inv.binding.Provider]
	if pu == nil {
		pu = newUsage(s.now)
		tb.providers[inv.binding.Provider] = pu
	}
	pu.ended = false
	c := inv.t.plan.Costs[inv.binding.Provider]
	nu.cost += c
	pu.cost += c
	tb.turn.cost += c
	// Checked at the next event or tick: a turn's invocations all start
	// before any rule may end it.
}

// budgetEnd stops the clock of an invocation's scopes.
func (s *Session) budgetEnd(inv *invocation) {
	tb := inv.t.budget
	if tb == nil {
		return
	}
	if nu := tb.nodes[inv.pn.Spec.ID]; nu != nil {
		nu.ended, nu.lastEndedAt = true, s.now
	}
	if pu := tb.providers[inv.binding.Provider]; pu != nil {
		pu.ended, pu.lastEndedAt = true, s.now
	}
}

// add accounts one output event.
func (u *usage) add(ev *eventabi.Event, now int64) {
	if u.firstAt < 0 {
		u.firstAt = now
	}
	if ev.Audio != nil {
		u.audio += ev.Audio.DurationNanos()
	}
	if ev.Text == nil {
		return
	}
	switch ev.Type {
	case eventabi.TypeTextDelta, eventabi.TypeTranscriptPartial:
		u.sawDelta = true
		u.chars += utf8.RuneCountInString(ev.Text.Text)
		u.tokens++
	default:
		if !u.sawDelta {
			u.chars += utf8.RuneCountInString(ev.Text.Text)
			u.tokens += len(strings.Fields(ev.Text.Text))
		}
	}
}

// budgetOutput accounts one accepted node output before it is routed. It
// reports false when a rule's outcome means the event must not go on
// (the invocation was truncated, replaced or the turn terminated).
func (s *Session) budgetOutput(inv *invocation, ev *eventabi.Event) bool {
	tb := inv.t.budget
	if tb == nil {
		return true
	}
	tb.nodes[inv.pn.Spec.ID].add(ev, s.now)
	tb.providers[inv.binding.Provider].add(ev, s.now)
	s.budgetCheck(inv.t, inv)
	return inv.status == invOpen && !inv.t.terminal
}

// budgetEgress accounts one egress event of the turn.
func (s *Session) budgetEgress(t *turn, ev *eventabi.Event) {
	if t.budget == nil {
		return
	}
	t.budget.turn.add(ev, s.now)
	s.budgetCheck(t, nil)
}

// budgetTick checks the time rules of the active turn.
func (s *Session) budgetTick() {
	if t := s.turn; t != nil && t.budget != nil && !t.terminal {
		s.budgetCheck(t, nil)
	}
}

// value is a rule's metric now; ok false when the scope has not started.
func (s *Session) budgetValue(tb *turnBudget, r BudgetRule) (float64, bool) {
	var u *usage
	switch r.Scope {
	case BudgetScopeTurn:
		u = tb.turn
	case BudgetScopeNode:
		u = tb.nodes[r.Target]
	case BudgetScopeProvider:
		u = tb.providers[r.Target]
	}
	if u == nil {
		return 0, false
	}
	switch r.Metric {
	case MetricFirstOutput:
		if u.firstAt >= 0 {
			return float64(u.firstAt-u.start) / 1e9, true
		}
		if u.ended {
			return 0, false // ended without output: no first output to wait for
		}
		return float64(s.now-u.start) / 1e9, true
	case MetricTotalTime:
		end := s.now
		if u.ended && r.Scope != BudgetScopeTurn {
			end = u.lastEndedAt
		}
		return float64(end-u.start) / 1e9, true
	case MetricTokens:
		return float64(u.tokens), true
	case MetricChars:
		return float64(u.chars), true
	case MetricAudioSeconds:
		return float64(u.audio) / 1e9, true
	case MetricCost:
		return u.cost, true
	}
	return 0, false
}

// budgetCheck fires every rule of turn t whose metric is past its limit,
// in rule order. inv is the invocation whose event or start prompted the
// check (nil: a tick or egress).
func (s *Session) budgetCheck(t *turn, inv *invocation) {
	tb := t.budget
	for i, r := range t.plan.Budgets {
		if tb.fired[i] || t.terminal {
			continue
		}
		v, ok := s.budgetValue(tb, r)
		if !ok || v <= r.Limit {
			continue
		}
		tb.fired[i] = true
		s.budgetFire(t, i, r, v)
	}
}

// budgetFire records a crossing and carries out its outcome.
func (s *Session) budgetFire(t *turn, i int, r BudgetRule, v float64) {
	attrs := map[string]string{"rule": r.Name, "scope": r.Scope, "metric": r.Metric,
		"limit": strconv.FormatFloat(r.Limit, 'g', -1, 64), "value": strconv.FormatFloat(v, 'g', 6, 64), "outcome": r.Outcome}
	if r.Target != "" {
		attrs["target"] = r.Target
	}
	rec := TimelineRecord{Type: "budget_exceeded", TurnID: t.id, Reason: r.Name, Attrs: attrs}
	if r.Scope == BudgetScopeNode {
		rec.NodeID = r.Target
	}
	why := fmt.Sprintf("rule %s: %s %s > %s", r.Name, r.Metric, attrs["value"], attrs["limit"])
	switch r.Outcome {
	case BudgetContinue:
		s.record(rec)
	case BudgetTerminate:
		s.record(rec)
		s.cancelTurn(t, ErrBudgetExceeded.Error()+": "+why)
	case BudgetDegrade:
		inv := t.byNode[r.Target]
		if r.Degrade == DegradeBinding {
			b := t.plan.budgetBindings[i]
			if b == nil {
				attrs["decision"] = "none: no binding for " + r.To + " at plan freeze"
				s.record(rec)
				return
			}
			if s.budgets.degraded == nil {
				s.budgets.degraded = map[string]Binding{}
			}
			s.budgets.degraded[r.Target] = *b
			attrs["to"] = b.Provider + "@" + b.Version
			attrs["decision"] = "bind from next turn"
			s.record(rec)
			return
		}
		attrs["degrade"] = DegradeTruncate
		s.record(rec)
		if inv != nil && inv.status == invOpen {
			s.truncate(inv, why)
		}
	case BudgetFallback:
		inv := t.byNode[r.Target]
		b := s.budgetFallbackBinding(t, i, inv)
		switch {
		case inv == nil || inv.status != invOpen:
			attrs["decision"] = "none: node not running"
			s.record(rec)
		case b == nil:
			attrs["decision"] = "terminate: no fallback binding at plan freeze"
			s.record(rec)
			s.cancelTurn(t, ErrBudgetExceeded.Error()+": "+why+" (no fallback binding)")
		case inv.emitted || inv.inputsLost:
			attrs["decision"] = "terminate: output already emitted downstream or inputs lost"
			s.record(rec)
			s.cancelTurn(t, ErrBudgetExceeded.Error()+": "+why+" (fallback unsafe)")
		default:
			attrs["decision"] = "fallback"
			attrs["to"] = b.Provider + "@" + b.Version
			s.record(rec)
			s.switchBinding(inv, *b, "budget: "+why, r.Name)
		}
	}
}

// budgetFallbackBinding is the binding a fallback rule switches node to:
// the rule's own To, else the next binding of the node in this turn (the
// next provider of its list, or its fallback provider: NextBinding), all
// frozen at plan freeze.
func (s *Session) budgetFallbackBinding(t *turn, i int, inv *invocation) *Binding {
	if b := t.plan.budgetBindings[i]; b != nil {
		return b
	}
	if inv != nil {
		if next, _, ok := inv.pn.nextBinding(inv.binding); ok {
			return &next
		}
	}
	return nil
}

// switchBinding replaces an open invocation by one on binding b, its
// inputs re-delivered (the same mechanics as a failure fallback).
func (s *Session) switchBinding(inv *invocation, b Binding, reason, rule string) {
	t, pn := inv.t, inv.pn
	s.settle(inv, invSuperseded)
	s.control(CancelInvocation{InvocationID: inv.ref.InvocationID, Reason: "budget_fallback"})
	s.record(TimelineRecord{Type: "provider_switch", TurnID: t.id, NodeID: pn.Spec.ID, InvocationID: inv.ref.InvocationID,
		Reason: reason, Attrs: map[string]string{"from": inv.binding.Provider + "@" + inv.binding.Version,
			"to": b.Provider + "@" + b.Version, "rule": rule}})
	s.startInvocation(t, pn, b, inv.attempt+1, inv)
}

// truncate ends an open invocation at a budget crossing as if it had
// finished: it is cancelled on the plugin, and the kernel treats what it
// produced so far as its whole output.
func (s *Session) truncate(inv *invocation, why string) {
	s.settle(inv, invOK)
	s.control(CancelInvocation{InvocationID: inv.ref.InvocationID, Reason: "budget_truncate"})
	s.record(TimelineRecord{Type: "invocation_end", TurnID: inv.t.id, NodeID: inv.pn.Spec.ID, InvocationID: inv.ref.InvocationID,
		Reason: "truncated: " + why})
	s.upstreamDone(inv.t, inv.pn.Spec.ID)
	s.maybeCommit(inv.t)
}
