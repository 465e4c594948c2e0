package externalnode

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	rsppv1 "github.com/rspp/rspp/proto/rspp/v1"
)

const (
	// maxInputWindow caps what a plugin may claim as its input window.
	maxInputWindow = 4096
	// maxQueuedInputs bounds the frames one call may have waiting for
	// credit on the host. The kernel's edge bounds keep a session far
	// below it; it is the last line, not the flow control.
	maxQueuedInputs = 8192
	// controlQueue bounds cancels waiting for the Control writer.
	controlQueue = 1024
	// writeBatch is how many frames the writer takes from one call before
	// it moves on to the next ready one (round robin).
	writeBatch = 16
)

// ErrInputQueueFull: a call's host-side input queue is full (its plugin
// has granted no credit for that long). Nothing was queued.
var ErrInputQueueFull = fmt.Errorf("invocation input queue full: %w", kernel.ErrQueueFull)

// Handler receives one invocation's outputs. OnEvent and OnEnd are called
// from the instance's reader goroutine, OnDelivered from its writer: none
// may block.
type Handler struct {
	OnEvent func(eventabi.Event)
	// OnEnd is called exactly once: nil on success, else a typed error
	// (errors.Is kernel.ErrNodeCrashed, kernel.ErrNodeFailed, ...).
	OnEnd func(error)
	// OnDelivered, if set, is told that n more input events went to the
	// plugin within the invocation's window (in Send order).
	OnDelivered func(n int)
	// InFlight, if set, counts output bytes (EventBytes) handed to OnEvent
	// that the consumer has not finished with: the host adds before
	// OnEvent, the consumer subtracts when it is done with the event.
	// Past OutputBudget.MaxBytesInFlight the invocation fails.
	InFlight *atomic.Int64
}

// OpenRequest names an invocation.
type OpenRequest struct {
	InvocationID string
	SessionID    string
	TurnID       string
	NodeID       string
	Deadline     time.Time
	// Budget bounds the invocation's output (zero fields: defaults).
	Budget OutputBudget
	// Epoch is the session's authority (lease) epoch: the plugin stamps
	// the invocation's outputs with it.
	Epoch uint64
	// IdempotencyKey is the same for every attempt of one node in one
	// turn; an idempotent plugin (Info.Idempotent) deduplicates on it.
	IdempotencyKey string
}

// HostCall is one invocation as the host sees it. Send, CloseInput and
// Cancel never block: frames wait in the call's queue until the writer
// goroutine may send them (the plugin granted credit).
type HostCall struct {
	inst                 *Instance
	id, session, turn    string
	h                    Handler
	endOnce              sync.Once
	finished             chan struct{}
	finishOnce           sync.Once
	gone                 atomic.Bool // cancelled, failed or abandoned: output is dropped
	budget               *budgetState
	lastBudgetRejection  error
	budgetRejectedFrames atomic.Int64
	budgetRejectedBytes  atomic.Int64
	droppedAfterGone     atomic.Int64 // outputs that arrived after Cancel or Abandon

	// Writer state, under inst.wmu.
	out       []pending // OPEN first, then EVENTs and CLOSE_INPUT
	outArr    []pending // out's backing array from its start (push)
	credit    int
	scheduled bool // in inst.ready
	opened    bool // the OPEN frame left the queue
	closed    bool // CLOSE_INPUT queued
}

// pending is one frame of a call waiting for the writer. OPEN and
// CLOSE_INPUT (once per call) are built when queued; an EVENT keeps its
// domain event, which the writer puts on the wire through one reused
// message (wireEvent), so an input frame costs no wire objects of its own.
type pending struct {
	f  *rsppv1.DataFrame // OPEN or CLOSE_INPUT; nil: the EVENT ev
	ev eventabi.Event
}

// Open starts an invocation on the instance. It only queues the OPEN: the
// writer sends it, so Open never waits on the plugin.
func (i *Instance) Open(req OpenRequest, h Handler) (*HostCall, error) {
	c := &HostCall{inst: i, id: req.InvocationID, session: req.SessionID, turn: req.TurnID, h: h,
		finished: make(chan struct{}), credit: i.info.InputWindow,
		budget: newBudgetState(req.NodeID, req.Budget)}
	i.mu.Lock()
	if i.dead != nil {
		err := i.dead
		i.mu.Unlock()
		return nil, err
	}
	if _, dup := i.calls[req.InvocationID]; dup {
		i.mu.Unlock()
		return nil, fmt.Errorf("externalnode: invocation %q already open", req.InvocationID)
	}
	i.calls[req.InvocationID] = c
	i.mu.Unlock()
	f := &rsppv1.DataFrame{Kind: rsppv1.DataFrame_KIND_OPEN, InvocationId: req.InvocationID, SessionId: req.SessionID, TurnId: req.TurnID, NodeId: req.NodeID,
		AuthorityEpoch: req.Epoch, IdempotencyKey: req.IdempotencyKey}
	if !req.Deadline.IsZero() {
		f.DeadlineUnixNs = req.Deadline.UnixNano()
	}
	i.wmu.Lock()
	c.push(pending{f: f})
	i.scheduleLocked(c)
	i.wmu.Unlock()
	i.wakeWriter()
	return c, nil
}

// ID is the invocation id.
func (c *HostCall) ID() string { return c.id }

// Finished is closed when the plugin is done with the call: it sent END,
// the instance died, or the plugin never heard of it. A call cancelled or
// failed on the host stays unfinished until then (kill grace watches it).
func (c *HostCall) Finished() <-chan struct{} { return c.finished }

// Send queues one input event. It fails with ErrInputQueueFull when the
// call has maxQueuedInputs frames waiting for credit, and with the
// instance's error when it is dead.
func (c *HostCall) Send(ev eventabi.Event) error {
	return c.queue(pending{ev: ev})
}

// CloseInput says no more input will come; it follows the queued inputs.
func (c *HostCall) CloseInput() error {
	return c.queue(pending{f: &rsppv1.DataFrame{Kind: rsppv1.DataFrame_KIND_CLOSE_INPUT, InvocationId: c.id}})
}

func (c *HostCall) queue(f pending) error {
	i := c.inst
	if err := i.Err(); err != nil {
		return err
	}
	i.wmu.Lock()
	switch {
	case c.gone.Load() || c.closed:
		i.wmu.Unlock()
		return nil // nothing more goes to a call that is over or closed
	case len(c.out) >= maxQueuedInputs:
		i.wmu.Unlock()
		return ErrInputQueueFull
	}
	c.closed = f.f != nil && f.f.Kind == rsppv1.DataFrame_KIND_CLOSE_INPUT
	c.push(f)
	i.scheduleLocked(c)
	i.wmu.Unlock()
	i.wakeWriter()
	return nil
}

// push appends f to the queue (under inst.wmu). A drained queue starts
// again at the front of its array, so a call fed one frame at a time
// allocates no array per frame.
func (c *HostCall) push(f pending) {
	if len(c.out) == 0 {
		c.out = c.outArr[:0]
	}
	before := cap(c.out)
	c.out = append(c.out, f)
	if cap(c.out) != before { // a new array, which out starts
		c.outArr = c.out[:0]
	}
}

// dropQueued forgets the queued frames (under inst.wmu), releasing their
// payloads from the array push keeps.
func (c *HostCall) dropQueued() {
	clear(c.out)
	c.out = nil
}

// Cancel asks the plugin to stop the invocation. It travels on the Control
// stream, so it is never queued behind this invocation's audio; queued
// input of the call is dropped. A call whose OPEN never left the host ends
// here and now, cancelled.
func (c *HostCall) Cancel(reason string) error {
	i := c.inst
	i.wmu.Lock()
	opened := c.opened
	c.dropQueued()
	i.wmu.Unlock()
	c.gone.Store(true)
	if !opened {
		i.forget(c)
		c.end(fmt.Errorf("%w: %s", kernel.ErrCancelled, reason))
		c.finish()
		return nil
	}
	return i.sendControl(&rsppv1.ControlRequest{Kind: rsppv1.ControlRequest_KIND_CANCEL, InvocationId: c.id, Reason: reason})
}

// Abandon forgets the call on the host side: later output is dropped and
// OnEnd is not called. Used after the kernel has already given up on it.
func (c *HostCall) Abandon() {
	c.endOnce.Do(func() {})
	c.gone.Store(true)
	i := c.inst
	i.wmu.Lock()
	c.dropQueued()
	i.wmu.Unlock()
	i.forget(c)
	c.finish()
}

func (c *HostCall) end(err error) {
	c.endOnce.Do(func() {
		if c.h.OnEnd != nil {
			c.h.OnEnd(err)
		}
	})
}

func (c *HostCall) finish() { c.finishOnce.Do(func() { close(c.finished) }) }

// DroppedAfterCancel counts output frames that arrived after Cancel (or
// Abandon) and were dropped: what a node emitted after it was told to stop,
// plus whatever was already on its way.
func (c *HostCall) DroppedAfterCancel() int64 { return c.droppedAfterGone.Load() }

// BudgetRejectedFrames counts output frames dropped after the call failed
// its output budget (the plugin went on emitting).
func (c *HostCall) BudgetRejectedFrames() int64 { return c.budgetRejectedFrames.Load() }

func (i *Instance) forget(c *HostCall) {
	i.mu.Lock()
	if i.calls[c.id] == c {
		delete(i.calls, c.id)
	}
	i.mu.Unlock()
}

// ForeignFrames counts output frames whose event claimed another
// invocation, session or turn than the call it travelled on (dropped).
func (i *Instance) ForeignFrames() int64 { return i.foreign.Load() }

// LastForeign describes the last such frame ("" if none).
func (i *Instance) LastForeign() string {
	s, _ := i.lastForeign.Load().(string)
	return s
}

func foreignField(c *HostCall, ev *eventabi.Event) string {
	switch {
	case ev.SessionID != "" && ev.SessionID != c.session:
		return fmt.Sprintf("session %q", ev.SessionID)
	case ev.TurnID != "" && ev.TurnID != c.turn:
		return fmt.Sprintf("turn %q", ev.TurnID)
	case ev.InvocationID != "" && ev.InvocationID != c.id:
		return fmt.Sprintf("invocation %q", ev.InvocationID)
	}
	return ""
}

func (i *Instance) sendControl(req *rsppv1.ControlRequest) error {
	req.Seq = i.ctrlSeq.Add(1)
	select {
	case <-i.done:
		return fmt.Errorf("%s: cancel: %w", i.name, kernel.ErrNodeUnavailable)
	case i.ctrlq <- req:
		return nil
	default:
		return fmt.Errorf("%s: control queue full (%d cancels the plugin has not read): %w", i.name, controlQueue, kernel.ErrNodeUnavailable)
	}
}

// sendable: the call's next frame may go now (OPEN and CLOSE_INPUT need no
// credit, an EVENT needs one).
func (c *HostCall) sendable() bool {
	return len(c.out) > 0 && (c.out[0].f != nil || c.credit > 0)
}

func (i *Instance) scheduleLocked(c *HostCall) {
	if !c.scheduled && c.sendable() {
		c.scheduled = true
		i.ready = append(i.ready, c)
	}
}

func (i *Instance) wakeWriter() {
	select {
	case i.wwake <- struct{}{}:
	default:
	}
}

// nextBatch takes up to writeBatch sendable frames of the first ready call.
func (i *Instance) nextBatch(buf []pending) (*HostCall, []pending, int) {
	i.wmu.Lock()
	defer i.wmu.Unlock()
	for len(i.ready) > 0 {
		c := i.ready[0]
		i.ready[0] = nil
		i.ready = i.ready[1:]
		events := 0
		for len(buf) < writeBatch && c.sendable() {
			f := c.out[0]
			c.out[0] = pending{}
			c.out = c.out[1:]
			switch {
			case f.f == nil:
				c.credit--
				events++
			case f.f.Kind == rsppv1.DataFrame_KIND_OPEN:
				c.opened = true
			}
			buf = append(buf, f)
		}
		if c.sendable() {
			i.ready = append(i.ready, c)
		} else {
			c.scheduled = false
		}
		if len(buf) > 0 {
			return c, buf, events
		}
	}
	return nil, buf, 0
}

// writeData is the only sender on the Data stream. A plugin that stops
// reading the whole stream blocks this goroutine only; Kill unblocks it.
func (i *Instance) writeData() {
	defer i.loops.Done()
	var (
		buf  []pending
		wire wireEvent
	)
	for {
		select {
		case <-i.wwake:
		case <-i.streamCtx.Done():
			return
		}
		for {
			c, frames, events := i.nextBatch(buf[:0])
			if c == nil {
				break
			}
			for k := range frames {
				f := frames[k].f
				if f == nil {
					f = wire.frame(c.id, &frames[k].ev)
				}
				if err := i.data.Send(f); err != nil {
					return // the reader sees the stream break and marks the instance dead
				}
			}
			clear(frames)
			buf = frames
			if events > 0 && c.h.OnDelivered != nil && !c.gone.Load() {
				c.h.OnDelivered(events)
			}
		}
	}
}

// writeControl is the only sender on the Control stream.
func (i *Instance) writeControl() {
	defer i.loops.Done()
	for {
		select {
		case req := <-i.ctrlq:
			if err := i.ctrl.Send(req); err != nil {
				return
			}
		case <-i.streamCtx.Done():
			return
		}
	}
}

func (i *Instance) readData() {
	defer i.loops.Done()
	for {
		f, err := i.data.Recv()
		if err != nil {
			if i.streamCtx.Err() == nil {
				i.markDead(i.deathCause(err))
			}
			return
		}
		i.mu.Lock()
		c := i.calls[f.InvocationId]
		if c != nil && f.Kind == rsppv1.DataFrame_KIND_END {
			delete(i.calls, f.InvocationId)
		}
		i.mu.Unlock()
		if c == nil {
			continue // late output of a cancelled or unknown invocation
		}
		switch f.Kind {
		case rsppv1.DataFrame_KIND_EVENT:
			i.onEvent(c, fromWire(f.Event))
		case rsppv1.DataFrame_KIND_CREDIT:
			i.wmu.Lock()
			c.credit = min(c.credit+int(f.Credit), maxQueuedInputs)
			i.scheduleLocked(c)
			i.wmu.Unlock()
			i.wakeWriter()
		case rsppv1.DataFrame_KIND_END:
			var err error
			if f.Error != nil {
				err = &InvocationError{Kind: f.Error.Kind, Message: f.Error.Message, Code: f.Error.Code}
			}
			c.end(err)
			c.finish()
		}
	}
}

// stopFlooding gives up on an instance that ignores a budget cancel: it
// stops reading its streams and ends every call on it with a FloodError;
// its owner kills the process (Done, Err).
func (i *Instance) stopFlooding(c *HostCall, frames, bytes int64) {
	i.markDead(&FloodError{Instance: i.name, Pid: i.Pid(), Invocation: c.id, Frames: frames, Bytes: bytes, Budget: c.lastBudgetRejection})
	i.streamCancel()
}

// onEvent routes one output of c after the ownership and budget checks.
func (i *Instance) onEvent(c *HostCall, ev eventabi.Event) {
	if c.gone.Load() {
		if c.lastBudgetRejection != nil {
			frames := c.budgetRejectedFrames.Add(1)
			bytes := c.budgetRejectedBytes.Add(int64(EventBytes(ev)))
			if frames >= FloodKillFrames || bytes >= FloodKillBytes {
				i.stopFlooding(c, frames, bytes)
			}
		} else {
			c.droppedAfterGone.Add(1)
		}
		return
	}
	if what := foreignField(c, &ev); what != "" {
		// A call emits into its own invocation only: whatever it claims,
		// it is dropped here, before any session sees it.
		i.foreign.Add(1)
		i.lastForeign.Store(fmt.Sprintf("%s on invocation %q carries %s", ev.Type, c.id, what))
		return
	}
	n := EventBytes(ev)
	var inFlight int64
	if c.h.InFlight != nil {
		inFlight = c.h.InFlight.Add(int64(n))
	}
	if err := c.budget.admit(time.Now(), n, inFlight); err != nil {
		if c.h.InFlight != nil {
			c.h.InFlight.Add(-int64(n))
		}
		c.lastBudgetRejection = err
		c.gone.Store(true)
		i.wmu.Lock()
		c.dropQueued()
		i.wmu.Unlock()
		c.end(err)
		// Tell the plugin to stop; the call stays known until its END so
		// a plugin that ignores the cancel is still seen as hung.
		_ = i.sendControl(&rsppv1.ControlRequest{Kind: rsppv1.ControlRequest_KIND_CANCEL, InvocationId: c.id, Reason: "output_budget"})
		return
	}
	if c.h.OnEvent != nil {
		c.h.OnEvent(ev)
	}
}
