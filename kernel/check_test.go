package kernel

import (
	"fmt"
	"slices"
)

// lifecycleTypes are the accepted-turn lifecycle records.
var lifecycleTypes = []string{"turn_open", "turn_active", "turn_commit", "turn_abort", "turn_close"}

// checkTimeline checks the timeline evidence of a session: record Seq
// strictly increasing, each accepted turn exactly OPEN -> ACTIVE ->
// (COMMIT|ABORT) -> CLOSE with exactly one terminal, pre-turn outcomes
// outside any turn. complete demands every turn be closed.
func checkTimeline(recs []TimelineRecord, complete bool) error {
	var last uint64
	life := map[string][]string{}
	var order []string
	for _, r := range recs {
		if r.Seq <= last {
			return fmt.Errorf("record seq %d after %d (%s)", r.Seq, last, r.Type)
		}
		last = r.Seq
		switch {
		case slices.Contains(lifecycleTypes, r.Type):
			if r.TurnID == "" {
				return fmt.Errorf("%s without turn id", r.Type)
			}
			if _, ok := life[r.TurnID]; !ok {
				order = append(order, r.TurnID)
			}
			life[r.TurnID] = append(life[r.TurnID], r.Type)
		case r.Type == "pre_turn_reject" || r.Type == "pre_turn_defer":
			if r.TurnID != "" {
				return fmt.Errorf("%s carries turn %s", r.Type, r.TurnID)
			}
		}
	}
	for _, id := range order {
		got := life[id]
		ok := len(got) >= 1 && got[0] == "turn_open" &&
			(len(got) < 2 || got[1] == "turn_active") &&
			(len(got) < 3 || got[2] == "turn_commit" || got[2] == "turn_abort") &&
			(len(got) < 4 || got[3] == "turn_close") && len(got) <= 4
		if !ok {
			return fmt.Errorf("turn %s lifecycle %v", id, got)
		}
		if complete && len(got) != 4 {
			return fmt.Errorf("turn %s not complete: %v", id, got)
		}
	}
	return nil
}

// checkFence walks the effects in the order the runner carries them out and
// checks that nothing of a fenced turn or a cancelled invocation follows its
// fence/cancel: no EgressEvent of a fenced turn, no DeliverInput/CloseInput
// to a cancelled invocation.
func checkFence(effs []Effect) error {
	fenced := map[string]bool{}
	cancelled := map[string]bool{}
	for i, e := range effs {
		switch e := e.(type) {
		case FenceEgress:
			fenced[e.TurnID] = true
		case CancelInvocation:
			cancelled[e.InvocationID] = true
		case EgressEvent:
			if fenced[e.Event.TurnID] {
				return fmt.Errorf("effect %d: egress of fenced turn %s: %s", i, e.Event.TurnID, e.Event.String())
			}
		case DeliverInput:
			if cancelled[e.InvocationID] {
				return fmt.Errorf("effect %d: input to cancelled invocation %s", i, e.InvocationID)
			}
		case CloseInput:
			if cancelled[e.InvocationID] {
				return fmt.Errorf("effect %d: close of cancelled invocation %s", i, e.InvocationID)
			}
		}
	}
	return nil
}

// checkBounds checks that no edge queue is above its bound.
func checkBounds(s *Session) error {
	for i, es := range s.q.edges {
		if es.depth > s.edges[i].Capacity || es.depth < 0 {
			return fmt.Errorf("edge %s depth %d bound %d", edgeName(s.edges[i].Spec), es.depth, s.edges[i].Capacity)
		}
		n := 0
		for _, q := range s.q.data {
			if q.edge == i {
				n++
			}
		}
		// What the runner holds and has not reported taken counts too.
		for _, inv := range s.invs {
			if inv.status != invOpen {
				if len(inv.outstanding) > 0 {
					return fmt.Errorf("settled invocation %s still holds %d edge slots", inv.ref.InvocationID, len(inv.outstanding))
				}
				continue
			}
			for _, ei := range inv.outstanding {
				if ei == i {
					n++
				}
			}
		}
		// Live egress the transport has not reported played (AwaitPlayback).
		if t := s.turn; t != nil {
			for _, ei := range t.egressOut {
				if ei == i {
					n++
				}
			}
		}
		if n != es.depth {
			return fmt.Errorf("edge %s depth %d but %d queued or outstanding", edgeName(s.edges[i].Spec), es.depth, n)
		}
	}
	if len(s.q.telemetry) > s.q.telCap {
		return fmt.Errorf("telemetry %d > %d", len(s.q.telemetry), s.q.telCap)
	}
	return nil
}
