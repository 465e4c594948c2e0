package kernel

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/rspp/rspp/kernel/eventabi"
)

// maxRetired bounds how many ended invocations are remembered so that late
// events for them are recognised (and dropped) rather than reported unknown.
// Each holds its turn (plan, inputs kept for retries) alive: at 1024 a
// session kept its last ~340 turns, ~4.5 MB after 20 minutes of one turn
// every 3 s; 64 is still ~20 turns back, far past any late output (the
// runner drops output of calls the kernel gave up on before it gets here).
const maxRetired = 64

// Stats are the session's counters. Everything the kernel drops is counted.
type Stats struct {
	IngressMalformed    uint64 // ingress events that failed validation
	NodeMalformed       uint64 // node outputs that failed validation
	UnknownDropped      uint64 // unknown-type ingress events dropped by policy
	UnknownRejected     uint64 // unknown-type ingress events rejected by policy
	NodeUnknownRejected uint64 // node outputs of unknown type rejected or dropped by policy
	UndeclaredRejected  uint64 // node outputs of a type the node did not declare in Emits
	NotAccepted         uint64 // inputs not delivered: the target does not accept the type
	CorrelationRejected uint64 // node outputs with foreign session/turn/node/invocation ids
	StaleEpoch          uint64 // inputs stamped with an older authority epoch, or ingress after the lease was lost
	StaleEgressDropped  uint64 // egress of a session whose lease was lost, dropped at the fence
	AuthorityLost       uint64 // 1 once the session lost its lease
	Deduplicated        uint64 // outputs of a retry of an idempotent binding an earlier attempt had delivered
	UnknownInvocation   uint64 // events for invocations the kernel never knew
	LateDropped         uint64 // events for invocations already ended or cancelled
	EgressDropped       uint64 // egress-bound outputs of fenced turns dropped
	PostFenceSignals    uint64 // output_accepted/playback_started for fenced turns rejected
	Shed                uint64 // data events shed by full edges
	Degraded            uint64 // data events coalesced by full edges
	Blocked             uint64 // ErrQueueFull answers (bounded block)
	TelemetryDropped    uint64 // telemetry effects dropped (never blocks)
	MaxEdgeDepth        int    // deepest any edge queue has been

	TurnsOpened, TurnsCommitted, TurnsAborted uint64
	PreTurnRejected, PreTurnDeferred          uint64
}

// Session is one conversation's deterministic turn engine.
type Session struct {
	cfg   SessionConfig
	g     *graph
	edges []PlannedEdge // effective edge policies (index = graph edge index)
	vad   *energyVAD
	q     lanes
	// outstandingCap bounds each invocation's inputs handed out, not yet taken.
	outstandingCap int
	now            int64 // clock reading of the current call

	seq, recSeq uint64
	closed      bool
	closing     *SessionClosed // handed out last by the next Ready
	speaking    bool           // the user is speaking (VAD or transport)
	turn        *turn
	pending     *intent // deferred proposal
	invs        map[string]*invocation
	retired     []string
	dropPending []*turn // fenced turns whose egress_drop is not recorded yet
	fenced      FencedTurns
	stats       Stats

	authorityLost bool   // the lease moved on (authority.go)
	currentEpoch  uint64 // the epoch Authority reported when it did
	budgets       budgetState

	targetBuf []int  // targets' scratch (one frame's target edges)
	readyGen  uint64 // counts Ready calls (invocation.heldIn)
}

// NewSession validates the config and graph and opens the session.
func NewSession(cfg SessionConfig) (*Session, error) {
	switch {
	case cfg.SessionID == "":
		return nil, fmt.Errorf("%w: empty session id", ErrConfig)
	case cfg.Clock == nil:
		return nil, fmt.Errorf("%w: no clock", ErrConfig)
	}
	switch cfg.UnknownEventPolicy {
	case "", "reject", "drop", "pass":
	default:
		return nil, fmt.Errorf("%w: unknown_event_policy %q", ErrConfig, cfg.UnknownEventPolicy)
	}
	if cfg.IDs == nil {
		cfg.IDs = &CounterIDs{}
	}
	if cfg.Limits == (eventabi.Limits{}) {
		cfg.Limits = eventabi.DefaultLimits
	}
	g, err := compileGraph(cfg.Graph)
	if err != nil {
		return nil, err
	}
	if err := ValidateBudgets(cfg.Budgets, cfg.Graph.Nodes); err != nil {
		return nil, err
	}
	s := &Session{cfg: cfg, g: g, invs: map[string]*invocation{}}
	s.edges = plannedEdges(g)
	if cfg.AwaitPlayback {
		// A live transport plays egress at real time: a burst of agent
		// audio waits (bounded) for the playout instead of being shed.
		for i := range s.edges {
			if pe := &s.edges[i]; pe.Spec.To == Egress && pe.BlockFor == 0 {
				pe.BlockFor = DefaultEgressBlock
			}
		}
	}
	s.outstandingCap = cfg.OutstandingInputs
	if s.outstandingCap <= 0 {
		s.outstandingCap = DefaultOutstandingInputs
	}
	s.q.telCap = cfg.TelemetryCapacity
	if s.q.telCap <= 0 {
		s.q.telCap = DefaultTelemetryCapacity
	}
	s.q.edges = make([]edgeState, len(s.edges))
	for i := range s.q.edges {
		s.q.edges[i].blockedSince = -1
	}
	if !cfg.VAD.Disabled {
		s.vad = newEnergyVAD(cfg.VAD)
	}
	s.now = cfg.Clock.Now()
	s.record(TimelineRecord{Type: "session_open", Attrs: map[string]string{
		"tenant_id": cfg.TenantID, "epoch": strconv.FormatUint(cfg.Epoch, 10)}})
	return s, nil
}

// Ready drains the pending effects: control lane first, then data, then
// telemetry, each in emission order. SessionClosed always comes last.
func (s *Session) Ready() []Effect {
	if len(s.q.control)+len(s.q.data)+len(s.q.telemetry) == 0 && s.closing == nil {
		return nil
	}
	// Inputs of an invocation past its outstanding bound stay queued (and
	// its CloseInput behind them). Handing data out can end a pressure
	// episode, whose record belongs in this batch: account first, then
	// assemble.
	data := s.q.data
	kept := s.q.spare[:0]
	s.readyGen++ // marks the invocations held back in this Ready
	n := 0
	for _, q := range data {
		if s.holdBack(q) {
			q.target.heldIn = s.readyGen
			kept = append(kept, q)
			continue
		}
		s.handOut(q)
		data[n] = q
		n++
	}
	out := make([]Effect, 0, len(s.q.control)+n+len(s.q.telemetry)+1)
	out = append(out, s.q.control...)
	for _, q := range data[:n] {
		out = append(out, q.eff)
	}
	for _, q := range s.q.telemetry {
		out = append(out, q.eff)
	}
	if s.closing != nil {
		// SessionClosed is the session's last effect, after pending data.
		out = append(out, *s.closing)
		s.closing = nil
	}
	clear(s.q.control)
	clear(data)
	clear(s.q.telemetry)
	s.q.control, s.q.telemetry = s.q.control[:0], s.q.telemetry[:0]
	s.q.data, s.q.spare = kept, data[:0]
	return out
}

// Closed reports whether Close has run.
func (s *Session) Closed() bool { return s.closed }

// ActiveTurn is the id of the open turn, "" if none.
func (s *Session) ActiveTurn() string {
	if s.turn == nil {
		return ""
	}
	return s.turn.id
}

// TurnPlan returns the frozen plan of the active turn.
func (s *Session) TurnPlan() (ResolvedTurnPlan, bool) {
	if s.turn == nil {
		return ResolvedTurnPlan{}, false
	}
	p := *s.turn.plan // copy: the frozen plan is never shared mutably
	p.Nodes = slices.Clone(p.Nodes)
	p.Edges = slices.Clone(p.Edges)
	return p, true
}

// Stats returns a copy of the session's counters.
func (s *Session) Stats() Stats { return s.stats }

// Close ends the session: an active turn aborts with reason
// "session_close" (fenced first), then session_close and SessionClosed.
// Calling it again does nothing.
func (s *Session) Close(reason string) {
	if s.closed {
		return
	}
	s.now = s.cfg.Clock.Now()
	if s.turn != nil {
		s.cancelTurn(s.turn, "session_close")
	}
	if s.pending != nil {
		s.pending = nil
		s.preTurnReject("session_close", nil)
	}
	s.flushDrops()
	s.record(TimelineRecord{Type: "session_close", Reason: reason})
	s.closing = &SessionClosed{Reason: reason}
	s.closed = true
}

// Tick lets time pass: invocations past their deadline time out, deferred
// proposals are re-proposed, pending egress_drop evidence is recorded.
func (s *Session) Tick() {
	if s.closed {
		return
	}
	s.now = s.cfg.Clock.Now()
	if p := s.pending; p != nil && s.now >= p.retryAt {
		s.pending = nil
		s.propose(p)
	}
	if t := s.turn; t != nil && t.awaiting && s.now >= t.playbackDeadline {
		s.cancelTurn(t, "playback_timeout")
	}
	if t := s.turn; t != nil {
		for i := range t.plan.Nodes { // by index: a PlannedNode is large to copy per tick
			inv := t.nodeInv[i]
			if s.turn != t || inv == nil || inv.status != invOpen || s.now < inv.deadline {
				continue
			}
			s.control(CancelInvocation{InvocationID: inv.ref.InvocationID, Reason: "timeout"})
			s.fail(inv, fmt.Errorf("%w: timeout %s exceeded", ErrNodeTimeout, t.plan.Nodes[i].Timeout), "")
		}
	}
	s.budgetTick()
	s.flushDrops()
}

func (s *Session) control(e Effect) { s.q.control = append(s.q.control, e) }

// record appends a timeline record with the session's correlation.
func (s *Session) record(r TimelineRecord) {
	s.recSeq++
	r.Seq = s.recSeq
	r.SessionID = s.cfg.SessionID
	r.MonoNanos = s.now
	s.q.control = append(s.q.control, Record{Record: r})
}

// stamp fills the correlation fields of an event the kernel emits.
func (s *Session) stamp(ev *eventabi.Event, turnID, nodeID, invID string) {
	s.seq++
	ev.SessionID = s.cfg.SessionID
	ev.TurnID = turnID
	ev.NodeID = nodeID
	ev.InvocationID = invID
	ev.Sequence = s.seq
	ev.Epoch = s.cfg.Epoch
	ev.MonoNanos = s.now
	if s.cfg.WallAnchor != 0 {
		ev.WallNanos = s.cfg.WallAnchor + s.now
	}
	ev.SchemaVersion = eventabi.SchemaVersion
	if ev.ID == "" {
		ev.ID = s.cfg.IDs.NewID("event")
	}
}

// retire forgets the oldest remembered invocations past maxRetired.
func (s *Session) retire(ids ...string) {
	s.retired = append(s.retired, ids...)
	for len(s.retired) > maxRetired {
		if inv := s.invs[s.retired[0]]; inv != nil {
			inv.forgotten = true // queued effects that point at it see it gone, as a lookup would
		}
		delete(s.invs, s.retired[0])
		s.retired = s.retired[1:]
	}
}

// flushDrops records egress_drop once per fenced turn that dropped output.
func (s *Session) flushDrops() {
	for _, t := range s.dropPending {
		t.dropRecorded = true
		reason := "output after fence"
		if t.staleEpoch {
			reason = ReasonStaleEpoch
		}
		s.record(TimelineRecord{Type: "egress_drop", TurnID: t.id, Reason: reason,
			Attrs: map[string]string{"count": strconv.Itoa(t.egressDropped)}})
	}
	s.dropPending = s.dropPending[:0]
}

func plannedEdges(g *graph) []PlannedEdge {
	out := make([]PlannedEdge, len(g.edges))
	for i, e := range g.edges {
		pe := PlannedEdge{Spec: e, Capacity: e.Capacity, BlockFor: e.BlockFor, Overflow: e.Overflow, IngressSource: e.From == Ingress}
		if pe.Capacity == 0 {
			pe.Capacity = DefaultEdgeCapacity
			if pe.IngressSource {
				pe.Capacity = DefaultIngressCapacity
			}
		}
		if pe.Overflow == "" {
			pe.Overflow = OverflowShed
		}
		pe.High = max(1, (pe.Capacity*3+3)/4)
		pe.Low = pe.Capacity / 4
		out[i] = pe
	}
	return out
}

// CounterIDs is the default IDs: "<kind>-<n>" from one counter. Its ids
// follow from the order of calls alone (Deterministic), so a recording
// need not keep them. Not safe for concurrent use, like the Session.
type CounterIDs struct{ n uint64 }

// Deterministic says the ids follow from the order of calls alone
// (kernel/record does not record them).
func (*CounterIDs) Deterministic() bool { return true }

// NewID implements IDs.
func (c *CounterIDs) NewID(kind string) string {
	c.n++
	return kind + "-" + strconv.FormatUint(c.n, 10)
}
