package kernel

import (
	"strconv"

	"github.com/rspp/rspp/kernel/eventabi"
)

// DefaultTelemetryCapacity bounds queued telemetry effects.
const DefaultTelemetryCapacity = 256

// queued is one pending data effect. Data effects of an edge count against
// that edge's bound until the runner drains them with Ready.
type queued struct {
	eff  Effect
	edge int    // index into the session's edges; -1 when not an edge delivery
	turn string // turn the effect belongs to (fence purge)
	inv  string // target invocation of DeliverInput/CloseInput (cancel purge)
	// target is that invocation itself (nil when inv is ""), so that
	// Ready looks nothing up by id per queued input.
	target *invocation
}

// edgeState is the runtime of one edge's bounded queue.
type edgeState struct {
	depth        int
	high         bool  // above the high watermark since the last low crossing
	blockedSince int64 // -1 when not blocking
	shedding     bool  // BlockFor ran out this episode: shed without blocking until drained
	shedRecorded bool
	shed         int // events shed or coalesced in this pressure episode
}

// lanes holds pending effects split by lane. Ready hands them out as
// control, then data, then telemetry. Within a lane the emission order is
// kept, so a CloseInput (data lane: it is the in-band end of an input
// stream) never overtakes the inputs it closes.
type lanes struct {
	control   []Effect
	data      []queued
	spare     []queued // the other buffer of data, swapped by Ready
	telemetry []queued
	telCap    int
	edges     []edgeState
}

func laneOf(e Effect) eventabi.Lane {
	switch e := e.(type) {
	case DeliverInput:
		return e.Event.Lane
	case EgressEvent:
		return e.Event.Lane
	case CloseInput, EgressDone:
		return eventabi.LaneData
	}
	return eventabi.LaneControl
}

// pushTelemetry never blocks and never fails: the oldest is dropped when full.
func (s *Session) pushTelemetry(e queued) {
	e.edge = -1 // telemetry never counts against (or blocks) a data edge
	if len(s.q.telemetry) >= s.q.telCap {
		copy(s.q.telemetry, s.q.telemetry[1:])
		s.q.telemetry = s.q.telemetry[:len(s.q.telemetry)-1]
		s.stats.TelemetryDropped++
	}
	s.q.telemetry = append(s.q.telemetry, e)
}

// emit queues an effect on its lane. Data effects on an edge go through the
// edge's bound (room must have been checked with admitEdges).
func (s *Session) emit(item queued) {
	switch laneOf(item.eff) {
	case eventabi.LaneControl:
		s.q.control = append(s.q.control, item.eff)
	case eventabi.LaneTelemetry:
		s.pushTelemetry(item)
	default:
		if item.edge >= 0 {
			s.pushEdge(item)
			return
		}
		s.q.data = append(s.q.data, item)
	}
}

// admitEdges applies the block flow mode before an event is accepted: if a
// target edge is full and still within its bounded block time, nothing is
// accepted and ErrQueueFull tells the producer to hold and retry. Past
// BlockFor the edge sheds or degrades instead (never an unbounded wait).
func (s *Session) admitEdges(edges []int) error {
	for _, ei := range edges {
		es, pe := &s.q.edges[ei], &s.edges[ei]
		if es.depth < pe.Capacity || pe.BlockFor <= 0 || es.shedding {
			continue
		}
		if es.blockedSince < 0 {
			es.blockedSince = s.now
			s.stats.Blocked++
			s.pressureAttrs(ei, "full", "block", map[string]string{"block_for": pe.BlockFor.String()})
			return ErrQueueFull
		}
		if s.now-es.blockedSince < int64(pe.BlockFor) {
			s.stats.Blocked++
			return ErrQueueFull
		}
		es.shedding = true
	}
	return nil
}

func (s *Session) pushEdge(item queued) {
	ei := item.edge
	es, pe := &s.q.edges[ei], &s.edges[ei]
	if es.depth >= pe.Capacity {
		s.overflow(item, ei)
		return
	}
	s.q.data = append(s.q.data, item)
	es.depth++
	if es.depth > s.stats.MaxEdgeDepth {
		s.stats.MaxEdgeDepth = es.depth
	}
	if !es.high && es.depth >= pe.High {
		es.high = true
		action := pe.Overflow
		if pe.BlockFor > 0 {
			action = "block_then_" + pe.Overflow
		}
		s.pressure(ei, "high", action)
	}
}

// overflow makes room on a full edge by its overflow mode.
func (s *Session) overflow(item queued, ei int) {
	es, pe := &s.q.edges[ei], &s.edges[ei]
	es.blockedSince = -1
	es.shed++
	if pe.Overflow == OverflowDegrade && s.coalesce(item, ei) {
		s.stats.Degraded++
		if !es.shedRecorded {
			es.shedRecorded = true
			s.pressure(ei, "full", OverflowDegrade)
		}
		return
	}
	s.stats.Shed++
	if !es.shedRecorded {
		es.shedRecorded = true
		s.pressure(ei, "full", OverflowShed)
	}
	for i, q := range s.q.data {
		if q.edge == ei {
			// Drop the oldest still queued here; the new one takes its
			// place in the bound.
			s.q.data = append(s.q.data[:i], s.q.data[i+1:]...)
			s.q.data = append(s.q.data, item)
			return
		}
	}
	// Everything the edge holds is already with the runner, waiting for
	// its node's window: the newest is what gets shed.
}

// coalesce merges a text event into the newest queued text event of the edge.
func (s *Session) coalesce(item queued, ei int) bool {
	in := eventOf(item.eff)
	if in == nil || in.Text == nil {
		return false
	}
	for i := len(s.q.data) - 1; i >= 0; i-- {
		q := &s.q.data[i]
		old := eventOf(q.eff)
		if q.edge != ei || old == nil || old.Text == nil {
			continue
		}
		merged := *in
		merged.Text = &eventabi.Text{Text: old.Text.Text + in.Text.Text, Final: in.Text.Final}
		switch e := q.eff.(type) {
		case DeliverInput:
			e.Event = merged
			q.eff = e
		case EgressEvent:
			e.Event = merged
			q.eff = e
		}
		return true
	}
	return false
}

func eventOf(e Effect) *eventabi.Event {
	switch e := e.(type) {
	case DeliverInput:
		return &e.Event
	case EgressEvent:
		return &e.Event
	}
	return nil
}

// purge removes pending data and telemetry effects for which drop is true,
// fixing edge depths, and returns how many egress events were removed.
func (s *Session) purge(drop func(queued) bool) int {
	var egress int
	s.q.data, egress = s.purgeList(s.q.data, drop)
	s.q.telemetry, _ = s.purgeList(s.q.telemetry, drop)
	return egress
}

func (s *Session) purgeList(list []queued, drop func(queued) bool) ([]queued, int) {
	egress := 0
	kept := list[:0]
	for _, q := range list {
		if !drop(q) {
			kept = append(kept, q)
			continue
		}
		if q.edge >= 0 {
			s.q.edges[q.edge].depth--
		}
		if _, ok := q.eff.(EgressEvent); ok {
			egress++
		}
	}
	clear(list[len(kept):])
	return kept, egress
}

// handOut is called by Ready for each data effect it hands the runner.
// An egress event leaves its edge's bound at once (the transport has its
// own), except under AwaitPlayback, where it stays counted until the
// transport reports it played (OnEgressPlayed) or its turn ends. An input for a node stays counted until the runner reports it
// taken (OnInputsTaken: sent within the plugin's window, or dropped), so
// an edge's bound holds across Ready batches and a node that stops
// reading fills its edges and meets their overflow policy.
func (s *Session) handOut(q queued) {
	if _, ok := q.eff.(EgressEvent); ok && s.cfg.AwaitPlayback && q.edge >= 0 {
		if t := s.turn; t != nil && t.id == q.turn {
			t.egressOut = append(t.egressOut, q.edge)
			return
		}
	}
	if _, ok := q.eff.(DeliverInput); ok {
		if inv := q.known(); inv != nil && inv.status == invOpen {
			inv.outstanding = append(inv.outstanding, q.edge)
			return
		}
	}
	if q.edge >= 0 {
		s.edgeTaken(q.edge)
	}
}

// holdBack says whether Ready keeps q queued: an input of an invocation
// that already has its bound of inputs outstanding, or anything of an
// invocation held back earlier in this Ready (order within an invocation
// is kept, and its CloseInput never overtakes its inputs).
func (s *Session) holdBack(q queued) bool {
	switch q.eff.(type) {
	case DeliverInput, CloseInput:
	default:
		return false
	}
	if q.target != nil && q.target.heldIn == s.readyGen {
		return true // its invocation was held back earlier in this Ready
	}
	if _, ok := q.eff.(DeliverInput); !ok {
		return false
	}
	inv := q.known()
	return inv != nil && inv.status == invOpen && len(inv.outstanding) >= inv.outLimit
}

// known is q's target invocation while the session still knows it by id
// (nil once retired): what a lookup of q.inv in the session would find.
func (q *queued) known() *invocation {
	if q.target == nil || q.target.forgotten {
		return nil
	}
	return q.target
}

// edgeTaken frees one slot of edge ei. Falling to the low watermark ends
// the pressure episode: it is recorded, and blocking resumes. A slot freed
// above it does not restart the episode's block clock: a consumer that
// takes one event now and then cannot hold its producer for longer than
// BlockFor in all; past it the edge sheds or degrades until it drains.
func (s *Session) edgeTaken(ei int) {
	es, pe := &s.q.edges[ei], &s.edges[ei]
	if es.depth > 0 {
		es.depth--
	}
	if es.high && es.depth <= pe.Low {
		s.pressureAttrs(ei, "low", "resume", map[string]string{"shed": strconv.Itoa(es.shed)})
		*es = edgeState{depth: es.depth, blockedSince: -1}
	}
}

// releaseInputs frees the edge slots of inputs handed out to inv that the
// runner will now never report taken (inv ended, failed or was cancelled).
func (s *Session) releaseInputs(inv *invocation) {
	for _, ei := range inv.outstanding {
		if ei >= 0 {
			s.edgeTaken(ei)
		}
	}
	inv.outstanding = nil
}

// OnInputsTaken reports that the runner is done with the next n inputs it
// was handed for an invocation (in DeliverInput order): they went to the
// plugin within its flow-control window, or were dropped. Their edges get
// the room back. Unknown or finished invocations are ignored.
func (s *Session) OnInputsTaken(invocationID string, n int) {
	if s.closed {
		return
	}
	s.now = s.cfg.Clock.Now()
	inv := s.invs[invocationID]
	if inv == nil || n <= 0 {
		return
	}
	n = min(n, len(inv.outstanding))
	for _, ei := range inv.outstanding[:n] {
		if ei >= 0 {
			s.edgeTaken(ei)
		}
	}
	inv.outstanding = inv.outstanding[n:]
	if len(inv.outstanding) == 0 {
		inv.outstanding = nil
	}
}

// pressure records a deterministic pressure action of an edge: level is
// "high" (crossed the high watermark; action names the flow mode), "full"
// (action "block", "shed" or "degrade") or "low" (drained; action "resume").
func (s *Session) pressure(ei int, level, action string) {
	s.pressureAttrs(ei, level, action, nil)
}

func (s *Session) pressureAttrs(ei int, level, action string, extra map[string]string) {
	pe := &s.edges[ei]
	attrs := map[string]string{
		"edge":     edgeName(pe.Spec),
		"node":     pe.Spec.To,
		"level":    level,
		"action":   action,
		"depth":    strconv.Itoa(s.q.edges[ei].depth),
		"capacity": strconv.Itoa(pe.Capacity),
	}
	for k, v := range extra {
		attrs[k] = v
	}
	turn := ""
	if s.turn != nil {
		turn = s.turn.id
	}
	s.record(TimelineRecord{Type: "pressure", TurnID: turn, Reason: level + " watermark: " + action, Attrs: attrs})
}
