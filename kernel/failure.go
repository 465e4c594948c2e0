package kernel

import (
	"errors"
	"strconv"
	"strings"
)

// fail applies the node's frozen failure policy to a failed invocation:
// retry on the same binding, switch to the fallback binding, or abort the
// turn. Retry and fallback are only safe while nothing the invocation
// produced has gone downstream and its inputs can be replayed in full.
func (s *Session) fail(inv *invocation, err error, detail string) {
	s.settle(inv, invFailed)
	t, pn := inv.t, inv.pn
	cause := err.Error()
	if detail != "" && !strings.Contains(cause, detail) {
		cause += ": " + detail
	}
	reason := "node " + pn.Spec.ID + " failed: " + cause
	decision, why := s.decide(inv, err)
	failAttrs := map[string]string{"decision": decision, "why": why, "attempt": strconv.Itoa(inv.attempt), "kind": FailureKind(err)}
	if code := FailureCode(err); code != "" {
		failAttrs["code"] = code
	}
	s.record(TimelineRecord{Type: "invocation_fail", TurnID: t.id, NodeID: pn.Spec.ID, InvocationID: inv.ref.InvocationID,
		Reason: reason, Attrs: failAttrs})
	switch decision {
	case PolicyRetry:
		attrs := map[string]string{"attempt": strconv.Itoa(inv.attempt + 1)}
		skip := 0
		if inv.binding.Idempotent {
			// What earlier attempts delivered downstream comes again,
			// first: it is deduplicated.
			skip = max(inv.dedupeSkip, inv.outSeq)
			if skip > 0 {
				attrs["deduplicate"] = strconv.Itoa(skip)
			}
		}
		s.record(TimelineRecord{Type: "invocation_retry", TurnID: t.id, NodeID: pn.Spec.ID, InvocationID: inv.ref.InvocationID,
			Reason: reason, Attrs: attrs})
		next := s.startInvocation(t, pn, inv.binding, inv.attempt+1, inv)
		next.dedupeSkip = skip
	case PolicyFallback:
		next, _, _ := pn.nextBinding(inv.binding)
		s.record(TimelineRecord{Type: "provider_switch", TurnID: t.id, NodeID: pn.Spec.ID, InvocationID: inv.ref.InvocationID,
			Reason: reason, Attrs: switchAttrs(inv.binding, next, "fallback", failureWhy(err))})
		s.startInvocation(t, pn, next, inv.attempt+1, inv)
	case PolicyBranch:
		branch := t.plan.node(pn.Spec.BranchTo)
		t.replaced[pn.Spec.ID] = true
		s.record(TimelineRecord{Type: "branch_fallback", TurnID: t.id, NodeID: pn.Spec.ID, InvocationID: inv.ref.InvocationID,
			Reason: reason, Attrs: map[string]string{"branch": branch.Spec.ID}})
		s.startInvocation(t, branch, branch.Binding, 0, inv)
	default:
		s.cancelTurn(t, reason)
	}
}

// decide is the deterministic policy decision and why it was taken.
func (s *Session) decide(inv *invocation, err error) (string, string) {
	pn := inv.pn
	switch {
	case errors.Is(err, ErrCancelled):
		return PolicyAbort, "cancelled by scope"
	case pn.Policy == PolicyAbort:
		return PolicyAbort, "policy abort"
	case inv.emitted && !(pn.Policy == PolicyRetry && inv.binding.Idempotent):
		return PolicyAbort, "output already emitted downstream"
	case inv.inputsLost:
		return PolicyAbort, "inputs exceed the retry buffer"
	}
	switch pn.Policy {
	case PolicyRetry:
		if inv.attempt < pn.Spec.MaxRetries {
			why := "attempt " + strconv.Itoa(inv.attempt+1) + " of " + strconv.Itoa(pn.Spec.MaxRetries)
			if inv.emitted {
				why += " (idempotent: delivered output deduplicated)"
			}
			return PolicyRetry, why
		}
		return PolicyAbort, "retries exhausted"
	case PolicyFallback:
		next, why, ok := pn.nextBinding(inv.binding)
		if !ok {
			return PolicyAbort, why
		}
		return PolicyFallback, "switch to " + next.Provider
	case PolicyBranch:
		if _, isBranch := s.g.branchOf[pn.Spec.ID]; isBranch {
			return PolicyAbort, "a branch has no branch"
		}
		return PolicyBranch, "hand inputs to branch " + pn.Spec.BranchTo
	}
	return PolicyAbort, "policy " + pn.Policy
}

// FailureKind names the typed failure kind of err for evidence and metrics:
// crashed, timeout, resource_limit, protocol, unavailable, cancelled,
// failed, or other.
func FailureKind(err error) string {
	for _, k := range []struct {
		err  error
		name string
	}{
		{ErrResourceLimit, "resource_limit"}, // before crashed: an OOM kill is also an exit
		{ErrNodeCrashed, "crashed"},
		{ErrNodeTimeout, "timeout"},
		{ErrProtocol, "protocol"},
		{ErrNodeUnavailable, "unavailable"},
		{ErrCancelled, "cancelled"},
		{ErrNodeFailed, "failed"},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "other"
}
