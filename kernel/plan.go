package kernel

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// ResolvedTurnPlan is everything that shapes one turn, frozen when the turn
// is admitted. It is immutable for the life of the turn: hot upgrades and
// config changes apply to the next turn (invariant 12).
type ResolvedTurnPlan struct {
	ID     string
	TurnID string
	Hash   string // sha256 hex over the canonical encoding (see canonical)
	Epoch  uint64
	Nodes  []PlannedNode // topological order
	Edges  []PlannedEdge // config order
	// RetryBuffer bounds the inputs kept per invocation for re-delivery.
	RetryBuffer int
	// Budgets and Costs are the turn's budget rules and provider call
	// costs (RK-07, budget.go).
	Budgets []BudgetRule
	Costs   map[string]float64

	budgetBindings map[int]*Binding // rule index -> its frozen To binding

	byID map[string]int // node id -> index in Nodes
}

// PlannedNode is a node with its frozen binding and policies.
type PlannedNode struct {
	Spec     NodeSpec
	Binding  Binding
	Fallback *Binding // frozen fallback binding, nil when none or unavailable
	// Chain is the node's whole provider list as frozen (Spec.Providers,
	// then Spec.Fallback), primary first; nil for a single provider.
	// Binding is the one of them the turn starts on.
	Chain []Binding
	// Switched says why the turn does not start on the first of Chain
	// ("" when it does).
	Switched string
	Timeout  time.Duration
	Policy   string // effective OnFailure
	Join     string // effective join mode
	Upstream []string
}

// PlannedEdge is an edge with its effective (never unbounded) queue policy.
type PlannedEdge struct {
	Spec          EdgeSpec
	Capacity      int
	High, Low     int // watermarks, in events
	BlockFor      time.Duration
	Overflow      string
	IngressSource bool
}

type staticBindings struct{}

// Binding without a BindingSource: the provider name is also the pool key.
func (staticBindings) Binding(p string) (Binding, bool) { return Binding{Provider: p, Pool: p}, true }

// freezePlan resolves bindings and defaults into an immutable plan. It fails
// (and the turn is not opened) when a primary binding is missing.
func freezePlan(cg *graph, edges []PlannedEdge, cfg *SessionConfig, planID, turnID string, degraded map[string]Binding) (*ResolvedTurnPlan, error) {
	src := cfg.Bindings
	if src == nil {
		src = staticBindings{}
	}
	p := &ResolvedTurnPlan{ID: planID, TurnID: turnID, Epoch: cfg.Epoch, RetryBuffer: cfg.RetryBuffer}
	if p.RetryBuffer <= 0 {
		p.RetryBuffer = DefaultRetryBuffer
	}
	for _, n := range cg.nodes {
		b, chain, switched, err := resolveChain(src, n)
		if err != nil {
			return nil, err
		}
		if d, ok := degraded[n.ID]; ok {
			b = d // a budget degraded the node to a cheaper binding
		}
		pn := PlannedNode{Spec: n, Binding: b, Chain: chain, Switched: switched, Timeout: n.Timeout, Policy: n.OnFailure, Join: n.Join, Upstream: cg.upstream[n.ID]}
		if pn.Timeout == 0 {
			pn.Timeout = DefaultNodeTimeout
		}
		if pn.Policy == "" {
			pn.Policy = PolicyAbort
		}
		if pn.Join == "" {
			pn.Join = JoinAll
		}
		if n.Fallback != "" {
			if fb, ok := src.Binding(n.Fallback); ok {
				pn.Fallback = &fb
			}
		}
		p.Nodes = append(p.Nodes, pn)
	}
	p.Edges = edges
	freezeBudgets(p, cfg, src)
	p.byID = make(map[string]int, len(p.Nodes))
	for i, n := range p.Nodes {
		p.byID[n.Spec.ID] = i
	}
	sum := sha256.Sum256([]byte(p.canonical()))
	p.Hash = hex.EncodeToString(sum[:])
	return p, nil
}

// canonical is a stable text encoding of everything that shapes the turn.
// Ids of the plan and turn are excluded so that equal configurations hash
// equal across turns and sessions.
func (p *ResolvedTurnPlan) canonical() string {
	var b strings.Builder
	w := func(fields ...string) {
		for i, f := range fields {
			if i > 0 {
				b.WriteByte('|')
			}
			b.WriteString(strconv.Quote(f))
		}
		b.WriteByte('\n')
	}
	w("rspp.plan.v1", strconv.FormatUint(p.Epoch, 10), strconv.Itoa(p.RetryBuffer))
	for _, n := range p.Nodes {
		fb := "-"
		if n.Fallback != nil {
			fb = n.Fallback.Provider + "@" + n.Fallback.Version + "#" + n.Fallback.Pool
		}
		w("node", n.Spec.ID, n.Spec.Kind, n.Spec.Provider, n.Binding.Provider+"@"+n.Binding.Version+"#"+n.Binding.Pool,
			n.Timeout.String(), n.Policy, strconv.Itoa(n.Spec.MaxRetries), n.Spec.Fallback, fb, n.Join, n.Spec.BranchTo)
		if len(n.Chain) > 0 {
			w(append([]string{"chain", n.Spec.ID}, chainNames(n.Chain)...)...)
		}
		if !n.Spec.Requires.Zero() {
			w("requires", n.Spec.ID, n.Spec.Requires.String())
		}
	}
	for _, e := range p.Edges {
		types := make([]string, len(e.Spec.Types))
		for i, t := range e.Spec.Types {
			types[i] = string(t)
		}
		w("edge", e.Spec.From, e.Spec.To, strconv.Itoa(e.Capacity), strconv.Itoa(e.High), strconv.Itoa(e.Low),
			e.BlockFor.String(), e.Overflow, strings.Join(types, ","))
	}
	p.canonicalBudgets(w)
	return b.String()
}

func (p *ResolvedTurnPlan) node(id string) *PlannedNode {
	if i, ok := p.byID[id]; ok {
		return &p.Nodes[i]
	}
	return nil
}
