package kernel

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/rspp/rspp/kernel/eventabi"
)

type invStatus uint8

const (
	invOpen invStatus = iota
	invOK
	invFailed
	invCancelled
	invSuperseded // lost a select race: cancelled, but not a failure of the turn
)

// invocation is one attempt of one node in one turn.
type invocation struct {
	ref         InvocationRef
	t           *turn
	pn          *PlannedNode
	node        int   // position of pn in the plan (and the graph)
	outs        []int // the node's out-edges
	binding     Binding
	attempt     int
	deadline    int64
	status      invStatus
	emitted     bool // something it produced went downstream or out
	inputClosed bool
	inputs      []eventabi.Event // bounded copy for retry/fallback re-delivery
	inputsLost  bool             // the copy overflowed: no safe re-delivery
	// outstanding holds, per input handed to the runner and not yet
	// reported taken, the edge it counts against (-1: none), in order.
	outstanding []int
	outLimit    int  // bound of outstanding (see outLimit)
	rejected    bool // an output was refused by the gateway (recorded once)
	// outSeq counts its outputs that passed the gateway; the first
	// dedupeSkip of them were delivered by an earlier attempt of an
	// idempotent binding and are dropped (retry dedupe).
	outSeq, dedupeSkip int
	// forgotten: retired from the session's invocations (retire), as if
	// a lookup of its id found nothing.
	forgotten bool
	// heldIn is the Ready call (Session.readyGen) that last held back
	// one of its inputs: the rest of them wait behind it, in order.
	heldIn uint64
}

// outLimit is how many inputs of node may be outstanding at once: the
// session's bound, and at most half of its smallest in-edge, so that what
// a slow node has not taken stays mostly in the kernel, where the edge's
// overflow policy (shed oldest, coalesce) can still act on it.
func (s *Session) outLimit(node string) int {
	limit := s.outstandingCap
	for i := range s.edges {
		if s.edges[i].Spec.To == node {
			limit = min(limit, max(1, s.edges[i].Capacity/2))
		}
	}
	return limit
}

// settle ends an open invocation with status st: nothing more is queued
// for it, and what it still held of its edges is given back.
func (s *Session) settle(inv *invocation, st invStatus) {
	inv.status = st
	s.budgetEnd(inv)
	s.purge(func(q queued) bool { return q.inv == inv.ref.InvocationID })
	s.releaseInputs(inv)
}

// startInvocation opens an invocation of pn; prev (retry/fallback) hands
// over its buffered inputs, which are re-delivered.
func (s *Session) startInvocation(t *turn, pn *PlannedNode, b Binding, attempt int, prev *invocation) *invocation {
	node := s.g.index[pn.Spec.ID]
	inv := &invocation{t: t, pn: pn, node: node, outs: s.g.nodeOut[node], binding: b, attempt: attempt, deadline: s.now + int64(pn.Timeout), outLimit: s.outLimit(pn.Spec.ID)}
	inv.ref = InvocationRef{SessionID: s.cfg.SessionID, TurnID: t.id, NodeID: pn.Spec.ID, InvocationID: s.cfg.IDs.NewID("inv")}
	t.byNode[pn.Spec.ID] = inv
	t.nodeInv[node] = inv
	s.invs[inv.ref.InvocationID] = inv
	s.retire(inv.ref.InvocationID)
	s.control(StartInvocation{Ref: inv.ref, Binding: b, Deadline: inv.deadline, Attempt: attempt})
	s.record(TimelineRecord{Type: "invocation_start", TurnID: t.id, NodeID: pn.Spec.ID, InvocationID: inv.ref.InvocationID,
		Attrs: map[string]string{"binding": b.Provider + "@" + b.Version, "attempt": strconv.Itoa(attempt)}})
	s.budgetStart(inv)
	if prev != nil {
		for _, ev := range prev.inputs {
			s.deliver(inv, ev, -1)
		}
	}
	s.closeIfReady(t, s.g.inputOwner(pn.Spec.ID))
	return inv
}

// deliver queues one input for inv and keeps its bounded retry copy.
func (s *Session) deliver(inv *invocation, ev eventabi.Event, edge int) {
	switch {
	case inv.pn.Policy == PolicyAbort:
		// Nothing will ever be re-delivered: keep no copy.
	case len(inv.inputs) < inv.t.plan.RetryBuffer:
		inv.inputs = append(inv.inputs, ev)
	default:
		inv.inputsLost = true
	}
	s.emit(queued{eff: DeliverInput{InvocationID: inv.ref.InvocationID, Event: ev}, edge: edge, turn: inv.t.id, inv: inv.ref.InvocationID, target: inv})
}

// deliverIngress routes one user audio frame (or passed ingress event)
// along the ingress edges of the listening turn.
func (s *Session) deliverIngress(t *turn, ev eventabi.Event) error {
	_, err := s.fanOut(t, Ingress, s.g.ingressOut, "", ev)
	return err
}

// fanOut routes one event of from (Ingress or a node's invocation inv)
// along every out-edge of outs (from's) that takes it, all or nothing: a
// data event is only accepted if no target edge is holding it back
// (bounded block). It reports whether the event went anywhere.
func (s *Session) fanOut(t *turn, from string, outs []int, inv string, ev eventabi.Event) (bool, error) {
	targets := s.targets(t, from, outs, ev.Type)
	if len(targets) == 0 {
		return false, nil
	}
	if ev.Lane == eventabi.LaneData {
		if err := s.admitEdges(targets); err != nil {
			return false, err
		}
	}
	for _, ei := range targets {
		c := ev
		s.stamp(&c, t.id, from, inv)
		s.routeOne(t, from, ei, c)
	}
	return true, nil
}

// targets are the edges of outs (from's out-edges) that accept type ty and
// whose target can still take input in turn t. The slice is the session's
// scratch: valid until the next call.
func (s *Session) targets(t *turn, from string, outs []int, ty eventabi.Type) []int {
	out := s.targetBuf[:0]
	for _, ei := range outs {
		e := &s.g.edges[ei]
		if len(e.Types) > 0 && !slices.Contains(e.Types, ty) { // accepts, without copying the edge
			continue
		}
		if to := s.g.edgeTo[ei]; to >= 0 {
			inv := s.receiverAt(t, to)
			if inv == nil || inv.status != invOpen || inv.inputClosed || s.g.nodes[to].Join == JoinSelect && !s.selects(t, e.To, from) {
				continue
			}
			if acc := inv.binding.Accepts; len(acc) > 0 && !slices.Contains(acc, ty) {
				s.stats.NotAccepted++
				continue
			}
		}
		out = append(out, ei)
	}
	s.targetBuf = out[:0]
	return out
}

// selects applies a select join: the first upstream to deliver wins.
func (s *Session) selects(t *turn, node, from string) bool {
	if t.plan.node(node).Join != JoinSelect {
		return true
	}
	won, ok := t.selected[node]
	return !ok || won == from
}

func (s *Session) routeOne(t *turn, from string, ei int, ev eventabi.Event) {
	e := &s.g.edges[ei]
	to := s.g.edgeTo[ei]
	if to < 0 { // Egress
		if !s.egressAuthority(t) {
			return
		}
		t.egressAudio += ev.Audio.DurationNanos()
		s.emit(queued{eff: EgressEvent{Event: ev}, edge: ei, turn: t.id})
		s.budgetEgress(t, &ev)
		return
	}
	inv := s.receiverAt(t, to)
	if s.g.nodes[to].Join == JoinSelect {
		if _, ok := t.selected[e.To]; !ok {
			t.selected[e.To] = from
			s.record(TimelineRecord{Type: "select", TurnID: t.id, NodeID: e.To, Reason: "first upstream to deliver",
				Attrs: map[string]string{"upstream": from}})
			s.cancelLosers(t, e.To, from)
		}
	}
	s.deliver(inv, ev, ei)
}

// cancelLosers cancels the upstreams of a select node that lost the race
// and feed nothing else: their work can no longer reach any output.
func (s *Session) cancelLosers(t *turn, node, winner string) {
	for _, up := range t.plan.node(node).Upstream {
		loser := t.byNode[up]
		if up == winner || loser == nil || loser.status != invOpen {
			continue
		}
		onlyHere := true
		for _, ei := range s.g.out[up] {
			onlyHere = onlyHere && s.g.edges[ei].To == node
		}
		if onlyHere {
			s.settle(loser, invSuperseded)
			s.control(CancelInvocation{InvocationID: loser.ref.InvocationID, Reason: "select_lost"})
		}
	}
}

// upstreamDone marks node up as finished for the turn and closes the input
// of every downstream invocation whose upstreams are all finished.
func (s *Session) upstreamDone(t *turn, up string) {
	for _, ei := range s.g.out[up] {
		to := s.g.edges[ei].To
		if to == Egress {
			continue
		}
		t.doneUp[to][up] = true
		s.closeIfReady(t, to)
	}
}

func (s *Session) closeIfReady(t *turn, node string) {
	inv := s.receiver(t, node)
	if inv == nil || inv.status != invOpen || inv.inputClosed {
		return
	}
	pn := t.plan.node(node)
	done := t.doneUp[node]
	ready := true
	if won, ok := t.selected[node]; ok && pn.Join == JoinSelect {
		ready = done[won]
	} else {
		for _, up := range pn.Upstream {
			ready = ready && (done[up] || s.inactive(t, up))
		}
	}
	if ready {
		inv.inputClosed = true
		s.emit(queued{eff: CloseInput{InvocationID: inv.ref.InvocationID}, edge: -1, turn: t.id, inv: inv.ref.InvocationID, target: inv})
	}
}

// OnNodeEvent takes one output of an invocation and routes it along the
// node's out-edges: downstream as DeliverInput, to Egress as EgressEvent.
func (s *Session) OnNodeEvent(invocationID string, ev eventabi.Event) error {
	if s.closed {
		return ErrSessionClosed
	}
	s.now = s.cfg.Clock.Now()
	inv := s.invs[invocationID]
	if inv == nil {
		s.stats.UnknownInvocation++
		return fmt.Errorf("%w: %q", ErrUnknownInvocation, invocationID)
	}
	t := inv.t
	if inv.status != invOpen || t.terminal {
		s.dropLate(inv, ev.Type)
		return nil
	}
	pass, err := s.checkNodeEvent(inv, &ev)
	if err != nil {
		s.rejectOutput(inv, ev.Type, err)
		return err
	}
	if !pass {
		return nil
	}
	if inv.outSeq++; inv.outSeq <= inv.dedupeSkip {
		s.stats.Deduplicated++ // an earlier attempt delivered it already
		return nil
	}
	if !s.budgetOutput(inv, &ev) {
		return nil // a budget rule cut, replaced or ended it
	}
	routed, err := s.fanOut(t, inv.pn.Spec.ID, inv.outs, invocationID, ev)
	inv.emitted = inv.emitted || routed
	return err
}

// rejectOutput records the first output of an invocation the gateway
// refused (the rest are counted in Stats): evidence that names the node.
func (s *Session) rejectOutput(inv *invocation, ty eventabi.Type, err error) {
	if inv.rejected {
		return
	}
	inv.rejected = true
	s.record(TimelineRecord{Type: "node_output_reject", TurnID: inv.t.id, NodeID: inv.pn.Spec.ID, InvocationID: inv.ref.InvocationID,
		Reason: err.Error(), Attrs: map[string]string{"type": string(ty)}})
}

// dropLate counts an event of an invocation that already ended; output of a
// fenced turn that would have reached egress is egress_drop evidence.
func (s *Session) dropLate(inv *invocation, ty eventabi.Type) {
	s.stats.LateDropped++
	if !inv.t.fenced {
		return
	}
	for _, ei := range s.g.out[inv.pn.Spec.ID] {
		if e := s.g.edges[ei]; e.To == Egress && accepts(e, ty) {
			if inv.t.staleEpoch {
				s.dropStaleEgress(inv.t)
				return
			}
			s.stats.EgressDropped++
			inv.t.egressDropped++
			if inv.t.egressDropped == 1 && !inv.t.dropRecorded {
				s.dropPending = append(s.dropPending, inv.t)
			}
			return
		}
	}
}

// OnInvocationEnd reports how an invocation ended. Late or repeated ends
// are ignored.
func (s *Session) OnInvocationEnd(invocationID string, res InvocationResult) {
	if s.closed {
		return
	}
	s.now = s.cfg.Clock.Now()
	inv := s.invs[invocationID]
	if inv == nil {
		s.stats.UnknownInvocation++
		return
	}
	if inv.status != invOpen || inv.t.terminal {
		s.stats.LateDropped++
		return
	}
	if res.Err != nil {
		s.fail(inv, res.Err, res.Detail)
		return
	}
	s.settle(inv, invOK)
	s.record(TimelineRecord{Type: "invocation_end", TurnID: inv.t.id, NodeID: inv.pn.Spec.ID, InvocationID: invocationID, Reason: "ok"})
	s.upstreamDone(inv.t, inv.pn.Spec.ID)
	s.maybeCommit(inv.t)
}
