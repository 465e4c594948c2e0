package kernel

import (
	"fmt"

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
	rules := NodeOutputRules{Limits: s.cfg.Limits, Emits: inv.binding.Emits, UnknownPolicy: s.cfg.UnknownEventPolicy,
		SessionID: s.cfg.SessionID, TurnID: inv.ref.TurnID, InvocationID: inv.ref.InvocationID, NodeID: inv.ref.NodeID,
		Node: inv.pn.Spec.ID, Provider: inv.binding.Provider, Version: inv.binding.Version}
	rule, err := rules.Check(ev)
	switch rule {
	case OutputMalformed:
		s.stats.NodeMalformed++
	case OutputUndeclared:
		s.stats.UndeclaredRejected++
	case OutputUnknownRejected, OutputUnknownDropped:
		s.stats.NodeUnknownRejected++
	case OutputCorrelation:
		s.stats.CorrelationRejected++
	}
	if rule != OutputOK {
		return false, err
	}
	if ev.Epoch != 0 && ev.Epoch < s.cfg.Epoch || ev.Epoch == 0 && s.requireEpoch() {
		s.stats.StaleEpoch++
		return false, fmt.Errorf("%w: node %s output epoch %d, session epoch %d", ErrStaleEpoch, inv.pn.Spec.ID, ev.Epoch, s.cfg.Epoch)
	}
	return true, nil
}
