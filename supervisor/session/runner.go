// Package session is the supervisor's way of running one kernel session:
// it owns one goroutine per session that feeds the deterministic kernel
// core its inputs (transport ingress, node outputs, invocation ends, ticks)
// and carries out the effects it returns (start/feed/cancel plugin
// invocations, egress, fence, timeline). All I/O of a session happens here,
// never in kernel. It also holds the session clock, id generator, the
// shared timer wheel and the timeline writers.
//
// It may import kernel/..., externalnode and proto; it must not import the
// rest of supervisor, transports or providers (transports reach it through
// the Output and Ingest interfaces).
package session

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/kernel/record"
)

// Pools opens invocations on a ready plugin instance of a binding's pool.
// avoid names instances that earlier attempts of the same node in the same
// turn failed on (crash, timeout): a retry must land on another, live
// instance when the pool has one.
type Pools interface {
	Open(pool string, req externalnode.OpenRequest, avoid []string, h externalnode.Handler) (Call, error)
}

// Call is one open invocation. Its end (Handler.OnEnd) carries a typed
// error (errors.Is kernel.ErrNodeCrashed, ErrProtocol, ErrResourceLimit...).
type Call interface {
	// Instance names the instance serving the call.
	Instance() string
	Send(ev eventabi.Event) error
	CloseInput() error
	// Cancel asks the plugin on the control path to stop and forgets the
	// call: no output or end of it is delivered afterwards. The pool kills
	// an instance that does not end it within its grace period.
	Cancel(reason string)
}

// Output is the transport side of one session.
type Output interface {
	// Send delivers one egress event (agent audio, text).
	Send(ev eventabi.Event) error
	// Fence drops anything still buffered for turnID; nothing of it may be
	// played after this returns.
	Fence(turnID, reason string)
}

// PlaybackOutput is an Output that plays egress out in real time
// (kernel.SessionConfig.AwaitPlayback): EndOfTurn carries the kernel's
// EgressDone, after the turn's last Send; once the last of the turn has
// played it reports control.playback_done back into the session.
type PlaybackOutput interface {
	Output
	EndOfTurn(turnID string)
}

// Timeline receives timeline records as they happen.
type Timeline interface {
	Append(rec kernel.TimelineRecord)
}

// Config opens one session.
type Config struct {
	Kernel   kernel.SessionConfig // Clock and IDs default to the process clock and a counter
	Pools    Pools
	Output   Output
	Timeline Timeline
	// Tick is how often deadlines are checked (default 20ms).
	Tick time.Duration
	// Wheel, if set and ticking at Tick, ticks the session instead of a
	// ticker of its own (wheel.go).
	Wheel *Wheel
	// Observe, if set, sees every node output the kernel accepted, on the
	// session goroutine (summaries, metrics). It must not block.
	Observe func(nodeID string, ev eventabi.Event)
	// InboxLimit bounds queued inputs; past it node output is dropped and
	// counted (the kernel's own lanes bound everything else). Default 65536.
	InboxLimit int
	// Budgets, if set, gives each node's output budget (by node id); the
	// host enforces it per invocation. Nil: externalnode's defaults.
	Budgets func(nodeID string) externalnode.OutputBudget
	// Recording is the session's recording level and downgrade budget
	// (record.Policy; zero: level full, no budget). Inputs are recorded to
	// Timeline.
	Recording record.Policy
}

// input kinds fed to the session loop.
type input struct {
	kind  int
	ev    eventabi.Event
	invID string
	err   error
	res   chan error
	call  Call // inOpened
	n     int  // inNodeEvent: bytes counted in flight; inTaken: inputs
	// inNodeEvent: the invocation's output bytes in flight, given back
	// once the kernel has taken (or refused) the event.
	inFlight *atomic.Int64
	// posted: an inIngest whose verdict nobody waits for (Post).
	posted bool
}

const (
	inIngest = iota
	inNodeEvent
	inNodeEnd
	inClose
	inOpened // an asynchronous Pools.Open finished
	inTaken  // the plugin's window took n more inputs of an invocation
	inPlayed // the transport played n egress events of turn ev.TurnID
)

// release gives a node event's bytes back to its invocation's budget.
func (in *input) release() {
	if in.inFlight != nil {
		in.inFlight.Add(-int64(in.n))
		in.inFlight = nil
	}
}

// yieldEvery is how many inputs a session loop takes in a row before it
// lets other goroutines (other sessions) run.
const yieldEvery = 32

// maxPendingInputs bounds the inputs held for one invocation while its
// instance is still being acquired (a replacement may take seconds to
// start); past it inputs are dropped and counted.
const maxPendingInputs = 4096

// Session is one running session.
type Session struct {
	id   string
	cfg  Config
	k    *record.Session // the kernel session, recorded
	done chan struct{}

	inboxMu sync.Mutex
	inbox   []input
	spare   []input // the last drained batch, emptied: the next inbox (no allocation per batch)
	wake    chan struct{}
	dropped atomic.Int64

	postRefused atomic.Int64

	calls          map[string]*openCall           // by kernel invocation id; loop-owned
	opening        map[string]*openCall           // opens in flight, even if the kernel gave up on them; loop-owned
	failed         map[string]map[string][]string // turn -> node -> instances attempts failed on; loop-owned
	opens          sync.WaitGroup                 // open goroutines
	closing        bool                           // under inboxMu: the loop takes no more input
	pendingDropped atomic.Int64
	holding        map[string]*openCall // calls with held node outputs; loop-owned

	active   atomic.Value // string: active turn id
	idleWake chan struct{}
	idleMu   sync.Mutex

	ticked atomic.Bool // the wheel says a tick is due
	// tickedAt is the wheel index of the session's last tick (flagged by
	// the wheel or taken on a wake-up, tickOnWake).
	tickedAt atomic.Int64
	phase    int  // the wheel's phase (under the wheel's lock)
	onWheel  bool // ticked by cfg.Wheel, not a ticker of its own
}

// tickDue is the wheel's tick at index idx: flag it and wake the loop
// (never blocks) unless the session ticked less than a period ago on a
// wake-up of its own.
func (s *Session) tickDue(idx, period int64) {
	if idx-s.tickedAt.Load() < period {
		return
	}
	s.tickedAt.Store(idx)
	s.ticked.Store(true)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// ErrClosed is returned for input to a closed session.
var ErrClosed = errors.New("runner: session closed")

// Open creates the kernel session and starts its loop.
func Open(cfg Config) (*Session, error) {
	if cfg.Kernel.Clock == nil {
		cfg.Kernel.Clock = ProcessClock{}
	}
	if cfg.Kernel.IDs == nil {
		cfg.Kernel.IDs = &kernel.CounterIDs{}
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 20 * time.Millisecond
	}
	if cfg.InboxLimit <= 0 {
		cfg.InboxLimit = 65536
	}
	k, err := openRecorded(cfg)
	if err != nil {
		return nil, err
	}
	s := &Session{
		id: cfg.Kernel.SessionID, cfg: cfg, k: k, done: make(chan struct{}),
		wake: make(chan struct{}, 1), calls: make(map[string]*openCall), opening: make(map[string]*openCall),
		failed: make(map[string]map[string][]string), holding: make(map[string]*openCall),
		idleWake: make(chan struct{}),
	}
	s.active.Store("")
	if w := cfg.Wheel; w != nil && w.Tick() == cfg.Tick {
		s.onWheel = true
		w.add(s)
	}
	go s.loop()
	return s, nil
}

// Done is closed when the session has closed and released everything.
func (s *Session) Done() <-chan struct{} { return s.done }

// Ingest hands a transport event to the session. It returns the kernel's
// verdict (a typed gateway error for bad input); the session goes on.
func (s *Session) Ingest(ev eventabi.Event) error {
	res := verdicts.Get().(chan error)
	if !s.push(input{kind: inIngest, ev: ev, res: res}, true) {
		verdicts.Put(res)
		return ErrClosed
	}
	select {
	case err := <-res:
		verdicts.Put(res) // read: nothing else writes it
		return err
	case <-s.done:
		return ErrClosed // res may still be written: not reused
	}
}

// verdicts pools Ingest's reply channels: one per frame otherwise.
var verdicts = sync.Pool{New: func() any { return make(chan error, 1) }}

// Post hands a transport event to the session without waiting for the
// kernel's verdict: for callers that must never wait on the session loop
// (a playout reporting output_accepted / playback_started from its
// pacer). A refused event is counted (post_refused in the session_stats record). It reports false when
// the session is closed.
func (s *Session) Post(ev eventabi.Event) bool {
	return s.push(input{kind: inIngest, ev: ev, posted: true}, true)
}

// EgressPlayed reports, without waiting, that the transport played (or
// dropped) the next n egress events of turn (kernel AwaitPlayback
// credit).
func (s *Session) EgressPlayed(turn string, n int) {
	s.push(input{kind: inPlayed, ev: eventabi.Event{TurnID: turn}, n: n}, true)
}

// Close closes the session (an active turn aborts with reason) and waits
// until its invocations are released.
func (s *Session) Close(reason string) {
	s.push(input{kind: inClose, err: errors.New(reason)}, true)
	<-s.done
}

// ActiveTurn is the turn in progress, "" when idle.
func (s *Session) ActiveTurn() string { return s.active.Load().(string) }

// Idle returns a channel closed the next time the session has no active
// turn (immediately if it has none now).
func (s *Session) Idle() <-chan struct{} {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	if s.ActiveTurn() == "" {
		c := make(chan struct{})
		close(c)
		return c
	}
	return s.idleWake
}

// push queues an input; must == false lets it be dropped when over limit.
func (s *Session) push(in input, must bool) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	s.inboxMu.Lock()
	if s.closing {
		s.inboxMu.Unlock()
		return false
	}
	if !must && len(s.inbox) >= s.cfg.InboxLimit {
		s.inboxMu.Unlock()
		s.dropped.Add(1)
		in.release()
		return false
	}
	s.inbox = append(s.inbox, in)
	s.inboxMu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

// tickOnWake says whether a wake-up for input should also tick: on the
// wheel, once most of a tick period (all but a fifth: frames paced at the
// period arrive a slot early or late) has passed since the last tick. A
// session fed a frame every period then ticks on its frames' wake-ups
// and the wheel does not wake it a second time (tickDue); one fed
// nothing is ticked by the wheel as before. A deadline is then checked
// at most two periods after it passed (the frames stop just after a tick).
func (s *Session) tickOnWake() bool {
	if !s.onWheel {
		return false
	}
	w := s.cfg.Wheel
	cur := w.index()
	if cur-s.tickedAt.Load() < max(1, int64(w.slots-w.slots/5)) {
		return false
	}
	s.tickedAt.Store(cur)
	return true
}

func (s *Session) drain() []input {
	s.inboxMu.Lock()
	defer s.inboxMu.Unlock()
	in := s.inbox
	s.inbox, s.spare = s.spare, nil
	return in
}

// recycle keeps a handled batch's backing array as the next inbox,
// emptied so that it holds on to no event (a burst's large one is let go).
func (s *Session) recycle(batch []input) {
	if cap(batch) > 1024 {
		return
	}
	clear(batch)
	s.inboxMu.Lock()
	if s.spare == nil {
		s.spare = batch[:0]
	}
	s.inboxMu.Unlock()
}

func (s *Session) loop() {
	defer close(s.done)
	var tickC <-chan time.Time
	if s.onWheel {
		defer s.cfg.Wheel.remove(s)
	} else {
		tick := time.NewTicker(s.cfg.Tick)
		defer tick.Stop()
		tickC = tick.C
	}
	s.execute()
	for !s.k.Closed() {
		if s.onWheel {
			// The wheel's ticks come as wake-ups too: one channel, a
			// plain receive rather than a select per wake-up.
			<-s.wake
			s.woken()
		} else {
			select {
			case <-s.wake:
				s.woken()
			case <-tickC:
				s.k.Tick()
				s.execute()
			}
		}
		s.retryHeld()
		s.publishIdle()
	}
	s.release()
	if s.cfg.Timeline != nil {
		s.cfg.Timeline.Append(statsRecord(s.id, s.cfg.Kernel.Clock.Now(), s.k.Stats(), driverCounters{droppedNodeEvents: s.dropped.Load(), pendingInputsDropped: s.pendingDropped.Load(), postRefused: s.postRefused.Load()}))
	}
	s.publishIdle()
	// Opens still in flight finish on their own (bounded by the pool's
	// acquire wait); once closing is set, their results can no longer be
	// queued and they cancel what they opened themselves.
	s.inboxMu.Lock()
	s.closing = true
	rest := s.inbox
	s.inbox = nil
	s.inboxMu.Unlock()
	for _, in := range rest {
		if in.res != nil {
			in.res <- ErrClosed
		}
		if in.kind == inOpened && in.call != nil {
			in.call.Cancel("session_close")
		}
	}
	s.opens.Wait()
}

// woken handles one wake-up: a tick if one is due, then every queued input.
func (s *Session) woken() {
	if s.ticked.Swap(false) || s.tickOnWake() {
		s.k.Tick()
		s.execute()
	}
	batch := s.drain()
	for i, in := range batch {
		s.apply(in)
		s.execute()
		if i%yieldEvery == yieldEvery-1 {
			// A burst (a node's output, a backlog) must not hold
			// a processor for a whole preemption slice while
			// other sessions wait to be scheduled.
			runtime.Gosched()
		}
	}
	s.recycle(batch)
}

func (s *Session) apply(in input) {
	var err error
	switch in.kind {
	case inIngest:
		err = s.k.Ingest(in.ev)
		if err != nil && in.posted {
			s.postRefused.Add(1)
		}
	case inNodeEvent:
		c := s.calls[in.invID]
		if c == nil {
			in.release()
			// Output of a call the kernel already gave up on: it drops it,
			// counted (egress_drop evidence for a fenced turn).
			_ = s.k.OnNodeEvent(in.invID, in.ev)
			break
		}
		if len(c.held) > 0 {
			c.held = append(c.held, in) // behind the ones already waiting
			break
		}
		if !s.offer(in) {
			c.held = append(c.held, in)
			s.holding[in.invID] = c
		}
	case inTaken:
		s.k.OnInputsTaken(in.invID, in.n)
	case inPlayed:
		s.k.OnEgressPlayed(in.ev.TurnID, in.n)
	case inNodeEnd:
		c := s.calls[in.invID]
		if c == nil {
			break // end of a call the kernel already gave up on
		}
		if len(c.held) > 0 {
			c.held = append(c.held, in) // it ends after its held outputs
			break
		}
		if c.call == nil {
			// The end overtook the open's result: hold it until we know
			// the instance, so a retry can avoid it.
			held := in
			c.early = &held
			break
		}
		delete(s.calls, in.invID)
		if in.err != nil {
			s.noteFailed(c)
		}
		s.k.OnInvocationEnd(in.invID, kernel.InvocationResult{Err: in.err, Detail: detail(in.err)})
	case inClose:
		s.k.Close(in.err.Error())
	case inOpened:
		s.opened(in)
	}
	if in.res != nil {
		in.res <- err
	}
}

// offer hands one node output to the kernel. An edge holding it back
// (bounded block: ErrQueueFull) keeps it, and everything after it from the
// same invocation, held here and offered again as room frees; its bytes
// stay counted against the node's budget meanwhile.
// It reports false when the event was held back; the caller keeps it.
func (s *Session) offer(in input) bool {
	err := s.k.OnNodeEvent(in.invID, in.ev)
	if errors.Is(err, kernel.ErrQueueFull) {
		return false
	}
	in.release()
	if err == nil && s.cfg.Observe != nil {
		s.cfg.Observe(in.ev.NodeID, in.ev)
	}
	return true
}

// retryHeld offers held node outputs again, in order, per invocation.
func (s *Session) retryHeld() {
	if len(s.holding) == 0 {
		return // the common case: not even a map iteration per wake-up
	}
	for id, c := range s.holding {
		if s.calls[id] != c {
			s.dropHeld(id, c)
			continue
		}
		// Cleared while offering: the held end, applied in its turn, must
		// not queue behind itself.
		held := c.held
		c.held = nil
		delete(s.holding, id)
		for i, in := range held {
			if in.kind == inNodeEnd {
				s.apply(in)
				continue
			}
			if !s.offer(in) {
				c.held = held[i:] // still in order; no copy
				s.holding[id] = c
				break
			}
		}
		s.execute()
	}
}

// dropHeld forgets what an invocation the kernel gave up on still held.
func (s *Session) dropHeld(id string, c *openCall) {
	for i := range c.held {
		c.held[i].release()
	}
	c.held = nil
	delete(s.holding, id)
}

func detail(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (s *Session) publishIdle() {
	turn := s.k.ActiveTurn()
	if s.k.Closed() {
		turn = ""
	}
	prev := s.active.Load().(string)
	if prev == turn {
		return // storing a string in an atomic.Value allocates: once per wake-up otherwise
	}
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	s.active.Store(turn)
	if prev != "" && turn == "" {
		close(s.idleWake)
		s.idleWake = make(chan struct{})
	}
}

// execute carries out effects until the kernel has none left (an effect's
// immediate failure feeds back into the kernel and may produce more).
func (s *Session) execute() {
	for {
		effects := s.k.Ready()
		if len(effects) == 0 {
			return
		}
		for _, e := range effects {
			s.do(e)
		}
	}
}

func (s *Session) do(e kernel.Effect) {
	switch e := e.(type) {
	case kernel.StartInvocation:
		s.start(e)
	case kernel.DeliverInput:
		c := s.calls[e.InvocationID]
		switch {
		case c == nil:
			s.k.OnInputsTaken(e.InvocationID, 1)
		case c.call != nil:
			s.send(e.InvocationID, c, e.Event)
		case len(c.pending) < maxPendingInputs:
			c.pending = append(c.pending, e.Event)
		default:
			s.pendingDropped.Add(1)
			s.k.OnInputsTaken(e.InvocationID, 1)
		}
	case kernel.CloseInput:
		if c := s.calls[e.InvocationID]; c != nil {
			if c.call != nil {
				_ = c.call.CloseInput()
			} else {
				c.closeInput = true
			}
		}
	case kernel.CancelInvocation:
		if c := s.calls[e.InvocationID]; c != nil {
			// The kernel has given up on it: forget it here too so a late
			// end or late output cannot reach the kernel as news. A retry
			// of the same node (after a timeout) avoids this instance.
			delete(s.calls, e.InvocationID)
			if c.call == nil {
				c.cancelled = e.Reason // cancelled as soon as it opens
				break
			}
			c.call.Cancel(e.Reason)
			s.noteFailed(c)
		}
	case kernel.EgressEvent:
		if s.cfg.Output != nil {
			_ = s.cfg.Output.Send(e.Event)
		}
	case kernel.FenceEgress:
		if s.cfg.Output != nil {
			s.cfg.Output.Fence(e.TurnID, e.Reason)
		}
	case kernel.EgressDone:
		if po, ok := s.cfg.Output.(PlaybackOutput); ok {
			po.EndOfTurn(e.TurnID)
		} else {
			// Nothing plays in real time here: it has all been played.
			_ = s.k.Ingest(eventabi.Event{Type: eventabi.TypePlaybackDone, Lane: eventabi.LaneControl, TurnID: e.TurnID})
		}
	case kernel.Record:
		if e.Record.Type == "turn_close" {
			delete(s.failed, e.Record.TurnID)
		}
		if s.cfg.Timeline != nil {
			s.cfg.Timeline.Append(e.Record)
		}
	case kernel.SessionClosed:
	}
}

// send queues one input on the call; it never waits on the plugin. The
// kernel hears it was taken when the plugin's window takes it (OnDelivered)
// or, if it could not even be queued, now: a dead instance reports through
// OnEnd, and a queue that full means the kernel's bounds were bypassed.
func (s *Session) send(invID string, c *openCall, ev eventabi.Event) {
	if err := c.call.Send(ev); err != nil {
		s.k.OnInputsTaken(invID, 1)
	}
}

// start opens an invocation on an instance of the binding's pool. The wire
// invocation id is namespaced by session: one plugin instance multiplexes
// invocations of many sessions. A retry avoids the instances earlier
// attempts of the node failed on in this turn.
func (s *Session) start(e kernel.StartInvocation) {
	invID := e.Ref.InvocationID
	wireID := s.id + "/" + invID
	inFlight := new(atomic.Int64)
	h := externalnode.Handler{
		OnEvent: func(ev eventabi.Event) {
			n := externalnode.EventBytes(ev) // as the host counted it
			if ev.InvocationID == wireID {
				ev.InvocationID = invID // back from the wire namespace
			}
			s.push(input{kind: inNodeEvent, invID: invID, ev: ev, n: n, inFlight: inFlight}, false)
		},
		OnEnd:       func(err error) { s.push(input{kind: inNodeEnd, invID: invID, err: err}, true) },
		OnDelivered: func(n int) { s.push(input{kind: inTaken, invID: invID, n: n}, true) },
		InFlight:    inFlight,
	}
	req := externalnode.OpenRequest{
		InvocationID: wireID, SessionID: s.id, TurnID: e.Ref.TurnID, NodeID: e.Ref.NodeID,
		// Every attempt of the node in the turn shares the key: an
		// idempotent plugin deduplicates a retry on it.
		Epoch: s.cfg.Kernel.Epoch, IdempotencyKey: s.id + "/" + e.Ref.TurnID + "/" + e.Ref.NodeID,
	}
	if s.cfg.Budgets != nil {
		req.Budget = s.cfg.Budgets(e.Ref.NodeID)
	}
	if e.Deadline > 0 {
		// The plan's timeout, for the plugin's information; the kernel
		// enforces it on its own clock.
		req.Deadline = time.Now().Add(time.Duration(e.Deadline - s.cfg.Kernel.Clock.Now()))
	}
	var avoid []string
	if e.Attempt > 0 {
		avoid = s.failed[e.Ref.TurnID][e.Ref.NodeID]
	}
	// Acquiring an instance can wait for a replacement to start; the
	// session loop must not (a barge-in or cancel of this session would
	// wait behind it), so the open runs on its own goroutine and inputs
	// are held until it completes.
	c := &openCall{turn: e.Ref.TurnID, node: e.Ref.NodeID}
	s.calls[invID] = c
	s.opening[invID] = c
	pool := e.Binding.Pool
	s.opens.Add(1)
	go func() {
		defer s.opens.Done()
		call, err := s.cfg.Pools.Open(pool, req, avoid, h)
		if !s.push(input{kind: inOpened, invID: invID, call: call, err: err}, true) && call != nil {
			call.Cancel("session_close") // the session ended meanwhile
		}
	}()
}

// opened completes an asynchronous open: a failure ends the invocation
// typed; a success gets the inputs held meanwhile, unless the kernel gave
// up on it (cancel) or it already ended.
func (s *Session) opened(in input) {
	c := s.opening[in.invID]
	delete(s.opening, in.invID)
	if c == nil {
		return
	}
	live := s.calls[in.invID] == c
	if in.err != nil {
		if live {
			delete(s.calls, in.invID)
			s.k.OnInvocationEnd(in.invID, kernel.InvocationResult{Err: in.err, Detail: in.err.Error()})
		}
		return
	}
	c.call = in.call
	switch {
	case c.cancelled != "":
		c.call.Cancel(c.cancelled)
		s.noteFailed(c)
	case !live:
	case c.early != nil:
		s.apply(*c.early) // now with the instance known
	default:
		for _, ev := range c.pending {
			s.send(in.invID, c, ev)
		}
		c.pending = nil
		if c.closeInput {
			_ = c.call.CloseInput()
		}
	}
}

// openCall is an invocation and where it belongs. call is nil while the
// instance is still being acquired; inputs wait in pending meanwhile.
type openCall struct {
	call       Call
	turn, node string

	pending    []eventabi.Event
	closeInput bool
	cancelled  string  // the kernel cancelled it before it opened
	early      *input  // its end, when that arrived before the open's result
	held       []input // node outputs an edge held back (ErrQueueFull), in order
}

// noteFailed remembers the instance a node's attempt failed on.
func (s *Session) noteFailed(c *openCall) {
	if c.call == nil {
		return // never reached an instance
	}
	byNode := s.failed[c.turn]
	if byNode == nil {
		byNode = map[string][]string{}
		s.failed[c.turn] = byNode
	}
	byNode[c.node] = append(byNode[c.node], c.call.Instance())
}

// release cancels whatever is still open when the session ends.
func (s *Session) release() {
	for id, c := range s.holding {
		s.dropHeld(id, c)
	}
	for id, c := range s.calls {
		delete(s.calls, id)
		if c.call == nil {
			c.cancelled = "session_close" // its open result is cancelled on arrival
			continue
		}
		c.call.Cancel("session_close")
	}
}

// ProcessClock is monotonic nanoseconds since the process started.
type ProcessClock struct{}

var processStart = time.Now()

func (ProcessClock) Now() int64 { return int64(time.Since(processStart)) }
