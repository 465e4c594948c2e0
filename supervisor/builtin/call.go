package builtin

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

// defaultQueueLimit bounds the inputs one call may have waiting for its
// node. The kernel's edge bounds keep a session far below it (an input's
// edge slot comes back only once the node took it): it is the last line,
// not the flow control.
const defaultQueueLimit = 1024

// Host serves the builtin pools of a runtime: one registered Factory per
// pool key, one Call (and goroutine) per open invocation.
type Host struct {
	t     Timeouts
	limit int

	mu     sync.Mutex
	pools  map[string]*served
	calls  map[*Call]struct{}
	closed bool
	wg     sync.WaitGroup // call goroutines and their hook goroutines
}

// served is one registered pool.
type served struct {
	b      Builtin
	f      Factory
	opened int64 // calls opened, under Host.mu
	open   int   // calls running, under Host.mu
}

// NewHost makes a Host with the given hook timeouts (zero fields: the
// defaults) and per-call input queue bound (<= 0: defaultQueueLimit).
func NewHost(t Timeouts, queueLimit int) *Host {
	if queueLimit <= 0 {
		queueLimit = defaultQueueLimit
	}
	return &Host{t: t.withDefaults(), limit: queueLimit, pools: map[string]*served{}, calls: map[*Call]struct{}{}}
}

// Register serves pool with nodes of builtin b made by f.
func (h *Host) Register(pool string, b Builtin, f Factory) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.pools[pool]; ok {
		return fmt.Errorf("%w: %s", ErrDuplicate, pool)
	}
	h.pools[pool] = &served{b: b, f: f}
	return nil
}

// Serves reports whether pool is served by this host.
func (h *Host) Serves(pool string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.pools[pool]
	return ok
}

// Open starts an invocation on a fresh Node of pool's builtin. It never
// waits on the node: Init runs on the call's goroutine. Its outputs and
// its one end reach hd from that goroutine; hd's callbacks must not
// block.
func (h *Host) Open(pool string, req externalnode.OpenRequest, hd externalnode.Handler) (*Call, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, fmt.Errorf("%w: %s: %w", kernel.ErrNodeUnavailable, pool, ErrHostClosed)
	}
	s, ok := h.pools[pool]
	if !ok {
		return nil, fmt.Errorf("%w: %s: %w", kernel.ErrNodeUnavailable, pool, ErrUnknownPool)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Call{host: h, s: s, req: req, hd: hd, budget: req.Budget.WithDefaults(),
		ctx: ctx, cancelCtx: cancel, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	c.rules = kernel.NodeOutputRules{Emits: s.b.Emits,
		SessionID: req.SessionID, TurnID: req.TurnID, InvocationID: req.InvocationID, NodeID: req.NodeID,
		Node: req.NodeID, Provider: "builtin " + s.b.Name, Version: s.b.Version}
	h.calls[c] = struct{}{}
	s.opened++
	s.open++
	h.wg.Add(1)
	go c.run()
	return c, nil
}

func (h *Host) forget(c *Call) {
	h.mu.Lock()
	delete(h.calls, c)
	c.s.open--
	h.mu.Unlock()
}

// Load says how many calls of pool are running and how many were ever
// opened (ok false for a pool the host does not serve).
func (h *Host) Load(pool string) (open int, opened int64, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.pools[pool]
	if !ok {
		return 0, 0, false
	}
	return s.open, s.opened, true
}

// Close cancels every open call, refuses new ones and waits (bounded by
// wait) for the host's goroutines, including calls whose node is still
// stuck in a hook past its timeout. It reports whether they all ended. Safe to call twice.
func (h *Host) Close(wait time.Duration) bool {
	h.mu.Lock()
	h.closed = true
	calls := make([]*Call, 0, len(h.calls))
	for c := range h.calls {
		calls = append(calls, c)
	}
	h.mu.Unlock()
	for _, c := range calls {
		c.Cancel("runtime_close")
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(wait):
		return false
	}
}

// Call is one invocation of a builtin node (it implements session.Call).
// Send, CloseInput and Cancel never block on the node.
type Call struct {
	host      *Host
	s         *served
	req       externalnode.OpenRequest
	hd        externalnode.Handler
	budget    externalnode.OutputBudget
	rules     kernel.NodeOutputRules
	ctx       context.Context // cancelled by Cancel: every hook's context derives from it
	cancelCtx context.CancelFunc

	mu        sync.Mutex // the input queue
	queue     []item
	closed    bool // CloseInput queued
	cancelled bool
	reason    string
	wake      chan struct{} // cap 1: the queue changed
	stop      chan struct{} // closed by Cancel

	dmu  sync.Mutex // deliveries to hd
	gone bool       // under dmu: cancelled or ended; nothing more reaches hd

	refused atomic.Int64 // outputs the rules or the budget refused
}

// item is one queued input: an event, or the end of input.
type item struct {
	ev    eventabi.Event
	close bool
}

// Instance names what serves the call: the builtin, in this process.
func (c *Call) Instance() string { return "builtin:" + c.s.b.Name }

// Send queues one input event for the node. It fails with
// ErrInputQueueFull (kernel.ErrQueueFull) when the call already has its
// host's queue limit of inputs waiting; nothing is queued then. Input
// after CloseInput or Cancel is ignored.
func (c *Call) Send(ev eventabi.Event) error {
	c.mu.Lock()
	switch {
	case c.cancelled || c.closed:
		c.mu.Unlock()
		return nil
	case len(c.queue) >= c.host.limit:
		c.mu.Unlock()
		return fmt.Errorf("%s: %w (%d waiting)", c.Instance(), ErrInputQueueFull, c.host.limit)
	}
	c.queue = append(c.queue, item{ev: ev})
	c.mu.Unlock()
	c.signal()
	return nil
}

// CloseInput says no more input will come; it follows the queued inputs.
func (c *Call) CloseInput() error {
	c.mu.Lock()
	if c.cancelled || c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.queue = append(c.queue, item{close: true})
	c.mu.Unlock()
	c.signal()
	return nil
}

// Cancel stops the invocation and forgets it: once Cancel returns,
// nothing of the call (output, delivery credit, end) reaches the Handler.
// The node's running hook sees its context cancelled; OnCancel and
// Shutdown then run on the call's goroutine.
func (c *Call) Cancel(reason string) {
	c.dmu.Lock()
	c.gone = true // waits for a delivery in progress
	c.dmu.Unlock()
	c.mu.Lock()
	if !c.cancelled {
		c.cancelled, c.reason, c.queue = true, reason, nil
		close(c.stop)
	}
	c.mu.Unlock()
	c.cancelCtx()
}

func (c *Call) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// next waits for the next input; ok is false once the call is cancelled.
func (c *Call) next() (item, bool) {
	for {
		c.mu.Lock()
		if c.cancelled {
			c.mu.Unlock()
			return item{}, false
		}
		if len(c.queue) > 0 {
			it := c.queue[0]
			c.queue[0] = item{}
			c.queue = c.queue[1:]
			c.mu.Unlock()
			return it, true
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-c.stop:
		}
	}
}

func (c *Call) isCancelled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cancelled
}

// run is the call's goroutine: Init, one OnEvent per input in order, then
// OnInputClosed (or OnCancel) and Shutdown. Every hook runs here, so a
// node is never called concurrently; a hook that overruns its timeout
// ends the call from its timer (the node may stay stuck in it: this
// goroutine is then Host.Close's to wait for).
func (c *Call) run() {
	defer c.host.wg.Done()
	defer c.host.forget(c)
	defer c.cancelCtx()
	t := c.host.t
	var node Node
	err := c.hook(c.ctx, t.Init, "init", func(ctx context.Context, _ Emit) error {
		node = c.s.f()
		return node.Init(ctx, Config{SessionID: c.req.SessionID, TurnID: c.req.TurnID, NodeID: c.req.NodeID, InvocationID: c.req.InvocationID})
	})
	if err == nil {
		err = c.serve(node)
	}
	// The end goes out before the clean-up: a slow Shutdown must not
	// hold the turn.
	c.end(err)
	if node == nil {
		return
	}
	if c.isCancelled() {
		c.mu.Lock()
		reason := c.reason
		c.mu.Unlock()
		// Its own context: the invocation's is already cancelled.
		_ = c.hook(context.Background(), t.Cancel, "on_cancel", func(ctx context.Context, _ Emit) error { return node.OnCancel(ctx, reason) })
	}
	_ = c.hook(context.Background(), t.Shutdown, "shutdown", func(ctx context.Context, _ Emit) error { return node.Shutdown(ctx) })
}

// serve feeds the node its inputs until its input closes, a hook fails or
// the call is cancelled.
func (c *Call) serve(node Node) error {
	t := c.host.t
	for {
		it, ok := c.next()
		if !ok {
			return nil
		}
		if it.close {
			if ic, ok := node.(InputCloser); ok {
				return c.hook(c.ctx, t.Event, "on_input_closed", ic.OnInputClosed)
			}
			return nil
		}
		c.delivered()
		ev := it.ev
		if err := c.hook(c.ctx, t.Event, "on_event", func(ctx context.Context, emit Emit) error { return node.OnEvent(ctx, ev, emit) }); err != nil {
			return err
		}
	}
}

// delivered tells the session the node took one more input (its edge
// slot comes back).
func (c *Call) delivered() {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if !c.gone && c.hd.OnDelivered != nil {
		c.hd.OnDelivered(1)
	}
}

// hook runs fn under timeout d (its context derives from base) and
// shapes its outcome. Past d, the hook's timer seals its emit and ends
// the call as a timeout at once, whether or not fn ever returns; a panic
// is recovered as a crash.
func (c *Call) hook(base context.Context, d time.Duration, name string, fn func(context.Context, Emit) error) (err error) {
	label := "builtin " + c.s.b.Name + " " + name
	ctx, cancel := context.WithTimeout(base, d)
	defer cancel()
	em := &emitter{c: c}
	timedOut := func() error {
		return fmt.Errorf("%w: %w: %s after %s", kernel.ErrNodeTimeout, ErrHookTimeout, label, d)
	}
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			em.seal()
			c.end(timedOut())
		}
	})
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: panic in %s: %v", kernel.ErrNodeCrashed, label, r)
		}
		em.seal()
		if !stop() && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = timedOut() // the timer has ended the call already
			return
		}
		c.dmu.Lock()
		if err == nil && em.err != nil {
			err = em.err // an output budget failure ends the call
		}
		c.dmu.Unlock()
		err = shape(label, err)
	}()
	return fn(ctx, em.emit)
}

// end reports the call's one end, unless it was cancelled.
func (c *Call) end(err error) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.gone {
		return
	}
	c.gone = true
	if c.hd.OnEnd != nil {
		c.hd.OnEnd(err)
	}
}

// emitter is one hook's emit: it refuses output once the hook returned
// or timed out.
type emitter struct {
	c      *Call
	sealed bool  // under c.dmu
	err    error // under c.dmu: the budget failure that ended the call
}

func (e *emitter) seal() {
	e.c.dmu.Lock()
	e.sealed = true
	e.c.dmu.Unlock()
}

// emit stamps the output with the call's ids (as externalnode.Call.Emit
// does for a plugin), checks it against the rules the kernel applies to
// every node output and the invocation's output budget, then hands it on.
func (e *emitter) emit(ev eventabi.Event) error {
	c := e.c
	if ev.SessionID == "" {
		ev.SessionID = c.req.SessionID
	}
	if ev.TurnID == "" {
		ev.TurnID = c.req.TurnID
	}
	ev.InvocationID, ev.NodeID = c.req.InvocationID, c.req.NodeID
	if ev.Epoch == 0 {
		ev.Epoch = c.req.Epoch
	}
	if ev.Lane == eventabi.LaneUnspecified {
		ev.Lane = eventabi.DefaultLane(ev.Type)
	}
	if ev.SchemaVersion == 0 {
		ev.SchemaVersion = eventabi.SchemaVersion
	}
	rules := c.rules
	if rule, err := rules.Check(&ev); rule != kernel.OutputOK {
		c.refused.Add(1)
		if err == nil {
			return nil // dropped by policy
		}
		return fmt.Errorf("%w: %s output refused: %w", kernel.ErrProtocol, c.Instance(), err)
	}
	n := externalnode.EventBytes(ev)
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if e.sealed || c.gone {
		return ErrEmitAfterEnd
	}
	var inFlight int64
	if c.hd.InFlight != nil {
		inFlight = c.hd.InFlight.Add(int64(n))
	}
	if err := c.admit(n, inFlight); err != nil {
		if c.hd.InFlight != nil {
			c.hd.InFlight.Add(-int64(n))
		}
		c.refused.Add(1)
		e.err = err
		return err
	}
	if c.hd.OnEvent != nil {
		c.hd.OnEvent(ev)
	}
	return nil
}

// admit applies the invocation's event-size and in-flight budgets (the
// rates bound what crosses a process boundary; an in-process node's
// outputs cost no decoding).
func (c *Call) admit(n int, inFlight int64) error {
	b := c.budget
	switch {
	case n > b.MaxEventBytes:
		return &externalnode.BudgetError{Node: c.req.NodeID, Budget: externalnode.BudgetMaxEventBytes,
			Limit: strconv.Itoa(b.MaxEventBytes) + " B", Seen: strconv.Itoa(n) + " B"}
	case inFlight > b.MaxBytesInFlight:
		return &externalnode.BudgetError{Node: c.req.NodeID, Budget: externalnode.BudgetBytesInFlight,
			Limit: strconv.FormatInt(b.MaxBytesInFlight, 10) + " B", Seen: strconv.FormatInt(inFlight, 10) + " B"}
	}
	return nil
}

// shape maps a hook's error onto the kernel's typed outcomes: kernel kinds
// pass through, context deadline becomes ErrNodeTimeout, cancellation
// ErrCancelled, anything else ErrNodeFailed.
func shape(hook string, err error) error {
	if err == nil {
		return nil
	}
	for _, k := range []error{kernel.ErrNodeCrashed, kernel.ErrNodeTimeout, kernel.ErrNodeFailed, kernel.ErrNodeUnavailable,
		kernel.ErrProtocol, kernel.ErrResourceLimit, kernel.ErrCancelled} {
		if errors.Is(err, k) {
			return err
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %s: timeout: %v", kernel.ErrNodeTimeout, hook, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%w: %s: %v", kernel.ErrCancelled, hook, err)
	}
	return fmt.Errorf("%w: %s: %v", kernel.ErrNodeFailed, hook, err)
}
