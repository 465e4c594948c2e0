package kernel

import (
	"strconv"
	"time"

	"github.com/rspp/rspp/kernel/eventabi"
)

type turnPhase uint8

const (
	phaseListening  turnPhase = iota // the user is speaking into the turn
	phaseResponding                  // the user finished; the agent is producing output
)

// turn is an accepted turn: OPEN -> ACTIVE -> (COMMIT | ABORT) -> CLOSE.
type turn struct {
	id       string
	plan     *ResolvedTurnPlan
	phase    turnPhase
	terminal bool
	fenced   bool
	byNode   map[string]*invocation     // current invocation of each node
	nodeInv  []*invocation              // the same, by position in plan.Nodes
	invBuf   [6]*invocation             // nodeInv's storage for small plans (no allocation per turn)
	doneUp   map[string]map[string]bool // node -> upstream -> ended OK
	selected map[string]string          // select-join node -> winning upstream
	replaced map[string]bool            // failed nodes whose fallback branch took over

	egressDropped int
	dropRecorded  bool
	// AwaitPlayback: egressAudio is the media time routed to egress;
	// awaiting is set once every invocation ended OK (EgressDone sent),
	// until playback_done (played) or playbackDeadline.
	egressAudio      int64
	awaiting, played bool
	playbackDeadline int64
	egressOut        []int // edges of egress events handed out, not yet played

	signalled map[eventabi.Type]bool // output signals already recorded

	staleEpoch bool        // aborted because the session lost its lease
	budget     *turnBudget // RK-07 accounting (budget.go)
}

// intent is a proposed turn waiting for (or retrying) admission.
type intent struct {
	attempt int
	retryAt int64
	bargeIn bool
	frames  []eventabi.Event // user audio held while the proposal is pending
	ended   bool             // the user already stopped speaking
}

func (in *intent) hold(ev eventabi.Event, s *Session) {
	if len(in.frames) >= DefaultIngressCapacity {
		copy(in.frames, in.frames[1:])
		in.frames = in.frames[:len(in.frames)-1]
		s.stats.Shed++
	}
	in.frames = append(in.frames, ev)
}

// speechStart is the user starting to speak (VAD or transport). Speech that
// interrupts an agent turn is a barge-in: that turn is cancelled and fenced
// before the new one is proposed.
func (s *Session) speechStart(preRoll []eventabi.Event) {
	if s.speaking {
		return
	}
	s.speaking = true
	bargeIn := false
	if t := s.turn; t != nil {
		if t.phase == phaseListening {
			return
		}
		s.cancelTurn(t, "barge_in")
		bargeIn = true
	}
	if p := s.pending; p != nil {
		p.ended = false
		for _, f := range preRoll {
			p.hold(f, s)
		}
		return
	}
	s.propose(&intent{bargeIn: bargeIn, frames: preRoll})
}

// speechEnd is the user stopping: ingress input of the listening turn closes.
func (s *Session) speechEnd() {
	if !s.speaking {
		return
	}
	s.speaking = false
	if p := s.pending; p != nil {
		p.ended = true
	}
	if t := s.turn; t != nil && t.phase == phaseListening {
		s.closeIngress(t)
	}
}

// propose runs the arbiter: authority, then admission, then plan freeze.
// Only when all three pass is turn_open emitted (invariant 1); a refused
// proposal records pre_turn_* and never a turn terminal (invariant 3).
func (s *Session) propose(in *intent) {
	if s.cfg.Authority != nil && !s.authorityHeld("turn_open") {
		s.preTurnReject(ReasonStaleEpoch, s.staleAttrs())
		return
	}
	d := Decision{Outcome: Admit}
	if s.cfg.Admission != nil {
		d = s.cfg.Admission.Admit(TurnIntent{SessionID: s.cfg.SessionID, TenantID: s.cfg.TenantID, Epoch: s.cfg.Epoch,
			Attempt: in.attempt, NowNanos: s.now, BargeIn: in.bargeIn})
	}
	switch d.Outcome {
	case "", Admit:
	case Defer:
		if in.attempt >= MaxDefers {
			s.preTurnReject("defer_exhausted: "+d.Reason, nil)
			return
		}
		wait := d.RetryAfter
		if wait <= 0 {
			wait = defaultDeferRetry
		}
		in.attempt++
		in.retryAt = s.now + int64(wait)
		in.ended = in.ended || !s.speaking
		s.pending = in
		s.stats.PreTurnDeferred++
		s.record(TimelineRecord{Type: "pre_turn_defer", Reason: d.Reason, Attrs: map[string]string{
			"attempt": strconv.Itoa(in.attempt), "retry_after": time.Duration(wait).String()}})
		return
	default:
		s.preTurnReject(d.Reason, nil)
		return
	}
	turnID := s.cfg.IDs.NewID("turn")
	plan, err := freezePlan(s.g, s.edges, &s.cfg, s.cfg.IDs.NewID("plan"), turnID, s.budgets.degraded)
	if err != nil {
		s.preTurnReject("plan: "+err.Error(), nil)
		return
	}
	s.openTurn(plan, in)
}

func (s *Session) preTurnReject(reason string, attrs map[string]string) {
	s.stats.PreTurnRejected++
	s.record(TimelineRecord{Type: "pre_turn_reject", Reason: reason, Attrs: attrs})
}

// openTurn emits turn_open, starts every node's invocation, then turn_active.
func (s *Session) openTurn(plan *ResolvedTurnPlan, in *intent) {
	t := &turn{id: plan.TurnID, plan: plan, byNode: map[string]*invocation{},
		doneUp: map[string]map[string]bool{}, selected: map[string]string{}, replaced: map[string]bool{}}
	if len(plan.Nodes) <= len(t.invBuf) {
		t.nodeInv = t.invBuf[:len(plan.Nodes)]
	} else {
		t.nodeInv = make([]*invocation, len(plan.Nodes))
	}
	s.turn = t
	s.stats.TurnsOpened++
	attrs := map[string]string{"plan_hash": plan.Hash, "plan_id": plan.ID, "epoch": strconv.FormatUint(plan.Epoch, 10),
		"admission": Admit, "attempt": strconv.Itoa(in.attempt)}
	if in.bargeIn {
		attrs["barge_in"] = "true"
	}
	for _, pn := range plan.Nodes {
		attrs["binding."+pn.Spec.ID] = pn.Binding.Provider + "@" + pn.Binding.Version
		if len(pn.Chain) > 0 {
			attrs["providers."+pn.Spec.ID] = providerList(pn.Chain)
		}
	}
	s.record(TimelineRecord{Type: "turn_open", TurnID: t.id, Attrs: attrs})
	s.recordSwitches(t)
	s.budgetOpen(t)
	for i := range plan.Nodes {
		pn := &plan.Nodes[i]
		t.doneUp[pn.Spec.ID] = map[string]bool{}
		if _, dormant := s.g.branchOf[pn.Spec.ID]; !dormant {
			s.startInvocation(t, pn, pn.Binding, 0, nil)
		}
	}
	s.record(TimelineRecord{Type: "turn_active", TurnID: t.id})
	for _, f := range in.frames {
		s.deliverIngress(t, f)
	}
	if in.ended || !s.speaking {
		s.closeIngress(t)
	}
}

// inactive reports a node that takes no part in the turn (right now): a
// dormant branch not activated, or a failed node its branch replaced.
func (s *Session) inactive(t *turn, node string) bool {
	if node == Ingress {
		return false
	}
	_, dormant := s.g.branchOf[node]
	return dormant && t.byNode[node] == nil || t.replaced[node]
}

// receiver is the invocation that takes node's inputs: the node's own, or
// its branch's once the branch took over.
func (s *Session) receiver(t *turn, node string) *invocation {
	if t.replaced[node] {
		return t.byNode[t.plan.node(node).Spec.BranchTo]
	}
	return t.byNode[node]
}

// receiverAt is receiver for the node at position i of the plan (and of
// the graph), without a lookup by name unless a branch took over a node.
func (s *Session) receiverAt(t *turn, i int) *invocation {
	if len(t.replaced) > 0 {
		return s.receiver(t, s.g.nodes[i].ID)
	}
	return t.nodeInv[i]
}

// closeIngress ends the user's part of the turn.
func (s *Session) closeIngress(t *turn) {
	t.phase = phaseResponding
	if s.cfg.AwaitPlayback {
		s.record(TimelineRecord{Type: "speech_end", TurnID: t.id})
	}
	s.upstreamDone(t, Ingress)
}

// maybeCommit commits when every invocation of the turn ended OK.
func (s *Session) maybeCommit(t *turn) {
	if t.terminal {
		return
	}
	for i, pn := range t.plan.Nodes {
		if s.inactive(t, pn.Spec.ID) {
			continue
		}
		if inv := t.nodeInv[i]; inv == nil || inv.status != invOK && inv.status != invSuperseded {
			return
		}
	}
	if s.cfg.AwaitPlayback && !t.played {
		if !t.awaiting {
			// Everything of the turn is produced; it is the agent's
			// until its audio has played (barge-in stays possible).
			t.awaiting = true
			grace := s.cfg.PlaybackGrace
			if grace <= 0 {
				grace = DefaultPlaybackGrace
			}
			t.playbackDeadline = s.now + t.egressAudio + int64(grace)
			s.emit(queued{eff: EgressDone{TurnID: t.id}, edge: -1, turn: t.id})
		}
		return
	}
	t.terminal = true
	s.stats.TurnsCommitted++
	s.record(TimelineRecord{Type: "turn_commit", TurnID: t.id})
	s.closeTurn(t)
}

// cancelTurn aborts a turn: evidence of the cancel, the egress fence first
// (nothing of the turn may be played from here on), then cancels to every
// open invocation, then turn_abort and turn_close.
func (s *Session) cancelTurn(t *turn, reason string) {
	if t.terminal {
		return
	}
	t.terminal = true
	s.record(TimelineRecord{Type: "cancel", TurnID: t.id, Reason: reason, Attrs: map[string]string{"scope": "turn"}})
	s.fence(t, reason)
	for i := range t.plan.Nodes {
		if inv := t.nodeInv[i]; inv != nil && inv.status == invOpen {
			s.settle(inv, invCancelled)
			s.control(CancelInvocation{InvocationID: inv.ref.InvocationID, Reason: reason})
		}
	}
	s.stats.TurnsAborted++
	s.record(TimelineRecord{Type: "turn_abort", TurnID: t.id, Reason: reason})
	s.closeTurn(t)
}

// fence emits FenceEgress and drops every pending data effect of the turn.
func (s *Session) fence(t *turn, reason string) {
	t.fenced = true
	s.fenced.Add(t.id, reason)
	s.control(FenceEgress{TurnID: t.id, Reason: reason})
	dropped := s.purge(func(q queued) bool { return q.turn == t.id })
	s.record(TimelineRecord{Type: "fence", TurnID: t.id, Reason: reason, Attrs: map[string]string{
		"scope": "turn", "flushed": strconv.Itoa(dropped)}})
}

func (s *Session) closeTurn(t *turn) {
	// What the transport still holds of the turn is played or fenced:
	// either way its slots are no longer owed.
	for _, ei := range t.egressOut {
		s.edgeTaken(ei)
	}
	t.egressOut = nil
	s.record(TimelineRecord{Type: "turn_close", TurnID: t.id})
	if s.turn == t {
		s.turn = nil
	}
}
