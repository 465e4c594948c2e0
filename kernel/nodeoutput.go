package kernel

import (
	"fmt"
	"slices"

	"github.com/rspp/rspp/kernel/eventabi"
)

// NodeOutputRules are the rules every output of a node must keep before
// the kernel routes it: the Event ABI (after normalisation), the node's
// declared emits, the unknown-type policy and the correlation with the
// invocation that produced it. Session.OnNodeEvent applies them, and so
// does `rspp-node check` (externalnode/conformance): one implementation,
// so the kit is never stricter or looser than the runtime.
type NodeOutputRules struct {
	Limits eventabi.Limits
	// Emits is what the node declared (empty: any type).
	Emits []eventabi.Type
	// UnknownPolicy is the gateway's policy for types the runtime does not
	// know: UnknownReject, UnknownDrop, or "" / UnknownPass (node output
	// passes by default).
	UnknownPolicy string
	// The invocation's correlation ids: an output may leave them empty,
	// but may not claim others.
	SessionID, TurnID, InvocationID, NodeID string
	// Node, Provider and Version name the node in errors, e.g.
	// `llm (rules@1.0.0)` (formatted only on a refusal).
	Node, Provider, Version string
}

func (r *NodeOutputRules) name() string {
	if r.Provider == "" {
		return r.Node
	}
	return r.Node + " (" + r.Provider + "@" + r.Version + ")"
}

// OutputRule names the rule an output broke (for the kernel's counters).
type OutputRule int

const (
	OutputOK OutputRule = iota
	OutputMalformed
	OutputUndeclared
	OutputUnknownRejected
	OutputUnknownDropped
	OutputCorrelation
)

// Check normalises ev in place and applies the rules. It returns the rule
// broken (OutputOK when none), and an error for a refusal: a
// *eventabi.ValidationError matching the eventabi sentinels. An output
// dropped by policy (OutputUnknownDropped) has no error.
func (r *NodeOutputRules) Check(ev *eventabi.Event) (OutputRule, error) {
	eventabi.Normalize(ev)
	if err := eventabi.Validate(ev, r.Limits); err != nil {
		return OutputMalformed, err
	}
	if len(r.Emits) > 0 && !slices.Contains(r.Emits, ev.Type) {
		return OutputUndeclared, &eventabi.ValidationError{Kind: eventabi.ErrUndeclaredType, Field: "type", Type: ev.Type,
			Msg: fmt.Sprintf("node %s declares it emits only %v", r.name(), r.Emits)}
	}
	if !eventabi.Known(ev.Type) {
		switch r.UnknownPolicy {
		case UnknownReject:
			return OutputUnknownRejected, &eventabi.ValidationError{Kind: eventabi.ErrUnknownEventType, Field: "type", Type: ev.Type,
				Msg: "output of node " + r.Node + " rejected by policy"}
		case UnknownDrop:
			return OutputUnknownDropped, nil
		}
	}
	field := ""
	switch {
	case ev.SessionID != "" && ev.SessionID != r.SessionID:
		field = "session_id"
	case ev.TurnID != "" && ev.TurnID != r.TurnID:
		field = "turn_id"
	case ev.InvocationID != "" && ev.InvocationID != r.InvocationID:
		field = "invocation_id"
	case ev.NodeID != "" && ev.NodeID != r.NodeID:
		field = "node_id"
	}
	if field != "" {
		return OutputCorrelation, &eventabi.ValidationError{Kind: eventabi.ErrCorrelation, Field: field, Type: ev.Type,
			Msg: "does not match invocation " + r.InvocationID}
	}
	return OutputOK, nil
}
