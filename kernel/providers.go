package kernel

import (
	"errors"
	"fmt"
	"strings"
)

// A node may name an ordered list of providers (NodeSpec.Providers). The
// plan freezes the whole list (PlannedNode.Chain) so that every decision
// about it within the turn is deterministic and visible in the plan hash:
//
//   - switch: at freeze, a provider whose binding is Down (circuit open,
//     failed to start) is passed over for the next one in the list; the
//     turn_open record is followed by a provider_switch record saying so.
//   - fallback: under on_failure "fallback", a failed invocation starts
//     again on NextBinding, the next provider of the list that was not
//     down at freeze (provider_switch record with the failure's kind).

// resolveChain binds node n at freeze: the binding to start on, the frozen
// chain (nil for a single provider without fallback), why the first was
// passed over, or an error when nothing can be bound (ErrNodeUnavailable)
// or the only provider cannot serve the node (ErrCannotServe).
func resolveChain(src BindingSource, n NodeSpec) (Binding, []Binding, string, error) {
	names := n.Providers
	if len(names) == 0 {
		names = []string{n.Provider}
	}
	bind := func(name string) (Binding, bool) {
		b, ok := src.Binding(name)
		if ok && b.Down == "" {
			if err := b.Caps.Serves(n.Requires); err != nil {
				b.Down = "cannot serve node " + n.ID + ": " + err.Error()
			}
		}
		return b, ok
	}
	if len(names) == 1 {
		b, ok := bind(names[0])
		if ok && b.Caps.Serves(n.Requires) != nil {
			return b, nil, "", errCannotServe(n, b)
		}
		return b, nil, "", errNoBinding(n, ok)
	}
	chain := make([]Binding, 0, len(names))
	for _, name := range names {
		b, ok := bind(name)
		if !ok {
			b = Binding{Provider: name, Down: "no binding"}
		}
		chain = append(chain, b)
	}
	if n.Fallback != "" && !containsProvider(chain, n.Fallback) {
		if b, ok := bind(n.Fallback); ok {
			chain = append(chain, b)
		}
	}
	var skipped []string
	for _, b := range chain {
		if b.Down == "" {
			return b, chain, strings.Join(skipped, "; "), nil
		}
		skipped = append(skipped, b.Provider+": "+b.Down)
	}
	// Every provider is down: start on the first that has a binding and
	// can serve the node; its failure (unavailable) then takes the node's
	// policy like any other.
	for _, b := range chain {
		if b.Pool != "" && b.Caps.Serves(n.Requires) == nil {
			return b, chain, "", nil
		}
	}
	return Binding{}, nil, "", fmt.Errorf("%w: no provider of node %s can be bound: %s", ErrNodeUnavailable, n.ID, strings.Join(skipped, "; "))
}

func errNoBinding(n NodeSpec, ok bool) error {
	if ok {
		return nil
	}
	return fmt.Errorf("%w: no binding for provider %q of node %s", ErrNodeUnavailable, n.Provider, n.ID)
}

// ErrCannotServe: a provider's declared capabilities do not meet a node's
// requirements; the plan refuses to bind it.
var ErrCannotServe = errors.New("provider cannot serve the node")

func errCannotServe(n NodeSpec, b Binding) error {
	return fmt.Errorf("%w: provider %s@%s for node %s: %v", ErrCannotServe, b.Provider, b.Version, n.ID, b.Caps.Serves(n.Requires))
}

func containsProvider(chain []Binding, name string) bool {
	for _, b := range chain {
		if b.Provider == name {
			return true
		}
	}
	return false
}

func chainNames(chain []Binding) []string {
	out := make([]string, len(chain))
	for i, b := range chain {
		out[i] = b.Provider + "@" + b.Version + "#" + b.Pool
		if b.Down != "" {
			out[i] += "!down"
		}
	}
	return out
}

func sameBinding(a, b Binding) bool {
	return a.Provider == b.Provider && a.Version == b.Version && a.Pool == b.Pool
}

// nextBinding is the binding node nodeID moves to in this turn after an
// invocation on failed failed: the next provider of the node's frozen list
// that was not down at freeze (for a node with a single fallback
// provider, that one). It reports false, and why, when there is none: the
// list is exhausted or the node has no alternative. Pure: it reads only
// the frozen plan, so every replay decides the same.
func (p *ResolvedTurnPlan) nextBinding(nodeID string, failed Binding) (Binding, string, bool) {
	pn := p.node(nodeID)
	if pn == nil {
		return Binding{}, "unknown node " + nodeID, false
	}
	return pn.nextBinding(failed)
}

func (pn *PlannedNode) nextBinding(failed Binding) (Binding, string, bool) {
	if len(pn.Chain) == 0 {
		switch {
		case pn.Fallback == nil:
			return Binding{}, "no fallback binding at plan freeze", false
		case sameBinding(failed, *pn.Fallback):
			return Binding{}, "fallback already failed", false
		}
		return *pn.Fallback, "", true
	}
	at := -1
	for i, b := range pn.Chain {
		if sameBinding(b, failed) {
			at = i
			break
		}
	}
	for _, b := range pn.Chain[at+1:] {
		if b.Down == "" {
			return b, "", true
		}
	}
	return Binding{}, "every provider of the list failed or is down", false
}

// providerList is a frozen chain for the turn_open record:
// "espeak@1.51.0!down,flite@2.2.0".
func providerList(chain []Binding) string {
	parts := make([]string, len(chain))
	for i, b := range chain {
		parts[i] = b.Provider + "@" + b.Version
		if b.Down != "" {
			parts[i] += "!down"
		}
	}
	return strings.Join(parts, ",")
}

// recordSwitches says, after turn_open, which nodes the plan bound to a
// later provider of their list than the first, and why.
func (s *Session) recordSwitches(t *turn) {
	for _, pn := range t.plan.Nodes {
		if pn.Switched == "" {
			continue
		}
		s.record(TimelineRecord{Type: "provider_switch", TurnID: t.id, NodeID: pn.Spec.ID,
			Reason: "provider down at plan freeze: " + pn.Switched,
			Attrs:  switchAttrs(pn.Chain[0], pn.Binding, "switch", "circuit_open")})
	}
}

// switchAttrs are the attributes of a provider_switch record: from, to,
// the policy that moved (switch at freeze, fallback on failure) and why in
// one word (circuit_open, or the failure's code or kind).
func switchAttrs(from, to Binding, policy, why string) map[string]string {
	return map[string]string{"from": from.Provider + "@" + from.Version, "to": to.Provider + "@" + to.Version, "policy": policy, "why": why}
}

// failureWhy is a failure's code when it has one, else its kind.
func failureWhy(err error) string {
	if c := FailureCode(err); c != "" {
		return c
	}
	return FailureKind(err)
}
