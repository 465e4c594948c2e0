package kernel

import (
	"fmt"
	"slices"

	"github.com/rspp/rspp/kernel/eventabi"
)

// Unknown-event policies (SessionConfig.UnknownEventPolicy).
const (
	UnknownReject = "reject"
	UnknownDrop   = "drop" // default
	UnknownPass   = "pass"
)

// checkIngress is the Event ABI gateway for transport input: normalize,
// validate, epoch check, unknown-type policy. It returns (pass=false, nil)
// for events dropped by policy.
func (s *Session) checkIngress(ev *eventabi.Event) (bool, error) {
	eventabi.Normalize(ev)
	if err := eventabi.Validate(ev, s.cfg.Limits); err != nil {
		s.stats.IngressMalformed++
		return false, err
	}
	if ev.Epoch != 0 && ev.Epoch < s.cfg.Epoch {
		s.stats.StaleEpoch++
		return false, fmt.Errorf("%w: event epoch %d < session epoch %d", ErrStaleEpoch, ev.Epoch, s.cfg.Epoch)
	}
	if ev.SessionID != "" && ev.SessionID != s.cfg.SessionID {
		s.stats.CorrelationRejected++
		return false, &eventabi.ValidationError{Kind: eventabi.ErrCorrelation, Field: "session_id", Type: ev.Type, Msg: "foreign session"}
	}
	if eventabi.Known(ev.Type) {
		return true, nil
	}
	switch s.cfg.UnknownEventPolicy {
	case UnknownReject:
		s.stats.UnknownRejected++
		return false, &eventabi.ValidationError{Kind: eventabi.ErrUnknownEventType, Field: "type", Type: ev.Type, Msg: "rejected by policy"}
	case UnknownPass:
		return true, nil
	default:
		s.stats.UnknownDropped++
		return false, nil
	}
}

// checkNodeEvent is the gateway for node outputs: normalize, validate,
// check the type against what the node declared it emits and against the
// unknown-type policy, and check correlation against the invocation that
// produced it. It returns (false, nil) for an output dropped by policy.
// Third-party types pass only where both the node's declaration and the
// policy allow them ("" means pass for node output).
func (s *Session) checkNodeEvent(inv *invocation, ev *eventabi.Event) (bool, error) {
	eventabi.Normalize(ev)
	if err := eventabi.Validate(ev, s.cfg.Limits); err != nil {
		s.stats.NodeMalformed++
		return false, err
	}
	if emits := inv.binding.Emits; len(emits) > 0 && !slices.Contains(emits, ev.Type) {
		s.stats.UndeclaredRejected++
		return false, &eventabi.ValidationError{Kind: eventabi.ErrUndeclaredType, Field: "type", Type: ev.Type,
			Msg: fmt.Sprintf("node %s (%s@%s) declares it emits only %v", inv.pn.Spec.ID, inv.binding.Provider, inv.binding.Version, emits)}
	}
	if !eventabi.Known(ev.Type) {
		switch s.cfg.UnknownEventPolicy {
		case UnknownReject:
			s.stats.NodeUnknownRejected++
			return false, &eventabi.ValidationError{Kind: eventabi.ErrUnknownEventType, Field: "type", Type: ev.Type,
				Msg: "output of node " + inv.pn.Spec.ID + " rejected by policy"}
		case UnknownDrop:
			s.stats.NodeUnknownRejected++
			return false, nil
		}
	}
	if ev.Epoch != 0 && ev.Epoch < s.cfg.Epoch || ev.Epoch == 0 && s.requireEpoch() {
		s.stats.StaleEpoch++
		return false, fmt.Errorf("%w: node %s output epoch %d, session epoch %d", ErrStaleEpoch, inv.pn.Spec.ID, ev.Epoch, s.cfg.Epoch)
	}
	field := ""
	switch {
	case ev.SessionID != "" && ev.SessionID != s.cfg.SessionID:
		field = "session_id"
	case ev.TurnID != "" && ev.TurnID != inv.ref.TurnID:
		field = "turn_id"
	case ev.InvocationID != "" && ev.InvocationID != inv.ref.InvocationID:
		field = "invocation_id"
	case ev.NodeID != "" && ev.NodeID != inv.ref.NodeID:
		field = "node_id"
	}
	if field != "" {
		s.stats.CorrelationRejected++
		return false, &eventabi.ValidationError{Kind: eventabi.ErrCorrelation, Field: field, Type: ev.Type,
			Msg: "does not match invocation " + inv.ref.InvocationID}
	}
	return true, nil
}
