package builtin

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

// Host runs in-process nodes, one Node per invocation.
type Host struct {
	t         Timeouts
	factories map[string]Factory // by binding pool
	running   map[string]*running
	owned     map[string]bool // invocations ever started here (bounded FIFO)
	ownedFIFO []string
	wg        sync.WaitGroup // hook goroutines
}

const maxOwned = 4096

type running struct {
	node Node
	cfg  Config
}

// New makes a Host with the given hook timeouts.
func New(t Timeouts) *Host {
	d := DefaultTimeouts
	for _, p := range []struct {
		dst *time.Duration
		def time.Duration
	}{{&t.Init, d.Init}, {&t.Event, d.Event}, {&t.Cancel, d.Cancel}, {&t.Shutdown, d.Shutdown}} {
		if *p.dst <= 0 {
			*p.dst = p.def
		}
	}
	return &Host{t: t, factories: map[string]Factory{}, running: map[string]*running{}, owned: map[string]bool{}}
}

// Register serves pool (kernel.Binding.Pool) with nodes made by f.
func (h *Host) Register(pool string, f Factory) error {
	if _, ok := h.factories[pool]; ok {
		return fmt.Errorf("%w: %s", ErrDuplicate, pool)
	}
	h.factories[pool] = f
	return nil
}

// Serves reports whether pool runs on this host.
func (h *Host) Serves(pool string) bool { _, ok := h.factories[pool]; return ok }

// Start makes and initialises the node of an invocation.
func (h *Host) Start(ctx context.Context, st kernel.StartInvocation) error {
	f, ok := h.factories[st.Binding.Pool]
	if !ok {
		return fmt.Errorf("%w: %s: %w", kernel.ErrNodeUnavailable, st.Binding.Pool, ErrUnknownPool)
	}
	h.own(st.Ref.InvocationID)
	r := &running{node: f(), cfg: Config{Ref: st.Ref, Binding: st.Binding, Attempt: st.Attempt}}
	if err := h.call(ctx, h.t.Init, "init", func(ctx context.Context) error { return r.node.Init(ctx, r.cfg) }); err != nil {
		h.shutdown(ctx, r)
		return err
	}
	h.running[st.Ref.InvocationID] = r
	return nil
}

// Deliver runs OnEvent; outputs emitted during the hook are returned.
func (h *Host) Deliver(ctx context.Context, inv string, ev eventabi.Event) ([]eventabi.Event, error) {
	r, ok := h.running[inv]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotStarted, inv)
	}
	out := &outbox{}
	err := h.call(ctx, h.t.Event, "on_event", func(ctx context.Context) error { return r.node.OnEvent(ctx, ev, out.emit) })
	return out.close(), err
}

// CloseInput ends the invocation's input: OnInputClosed (if the node has
// it), then Shutdown. The invocation is over when it returns.
func (h *Host) CloseInput(ctx context.Context, inv string) ([]eventabi.Event, error) {
	r, ok := h.running[inv]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotStarted, inv)
	}
	out := &outbox{}
	var err error
	if c, ok := r.node.(InputCloser); ok {
		err = h.call(ctx, h.t.Event, "on_input_closed", func(ctx context.Context) error { return c.OnInputClosed(ctx, out.emit) })
	}
	h.end(ctx, inv)
	return out.close(), err
}

// Cancel runs OnCancel then Shutdown; the invocation is over.
func (h *Host) Cancel(ctx context.Context, inv, reason string) error {
	r, ok := h.running[inv]
	if !ok {
		return nil // already over: cancel is idempotent
	}
	err := h.call(ctx, h.t.Cancel, "on_cancel", func(ctx context.Context) error { return r.node.OnCancel(ctx, reason) })
	h.end(ctx, inv)
	return err
}

// Owns reports whether the invocation was started on this host (it may
// have ended since: effects for it are still the host's to swallow).
func (h *Host) Owns(inv string) bool { return h.owned[inv] }

func (h *Host) own(inv string) {
	h.owned[inv] = true
	h.ownedFIFO = append(h.ownedFIFO, inv)
	if len(h.ownedFIFO) > maxOwned {
		delete(h.owned, h.ownedFIFO[0])
		h.ownedFIFO = h.ownedFIFO[1:]
	}
}

// end drops an invocation (Shutdown best effort).
func (h *Host) end(ctx context.Context, inv string) {
	if r, ok := h.running[inv]; ok {
		delete(h.running, inv)
		h.shutdown(ctx, r)
	}
}

func (h *Host) shutdown(ctx context.Context, r *running) {
	_ = h.call(ctx, h.t.Shutdown, "shutdown", r.node.Shutdown)
}

// Close shuts every running node down and waits (bounded by wait) for hook
// goroutines, including ones abandoned by a timeout. It reports whether
// they all ended.
func (h *Host) Close(ctx context.Context, wait time.Duration) bool {
	for inv := range h.running {
		h.end(ctx, inv)
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

// call runs one hook under a timeout and shapes its outcome.
func (h *Host) call(ctx context.Context, d time.Duration, hook string, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	done := make(chan error, 1)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("%w: panic in %s: %v", kernel.ErrNodeCrashed, hook, r)
			}
		}()
		done <- fn(ctx)
	}()
	select {
	case err := <-done:
		return Shape(hook, err)
	case <-ctx.Done():
		return fmt.Errorf("%w: %w: %s hook timeout after %s", kernel.ErrNodeTimeout, ErrHookTimeout, hook, d)
	}
}

// Shape maps a hook's error onto the kernel's typed outcomes: kernel kinds
// pass through, context deadline becomes ErrNodeTimeout, cancellation
// ErrCancelled, anything else ErrNodeFailed.
func Shape(hook string, err error) error {
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

// outbox collects emitted events while a hook runs and refuses any after.
type outbox struct {
	mu     sync.Mutex
	events []eventabi.Event
	closed bool
}

func (o *outbox) emit(ev eventabi.Event) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return ErrEmitAfterEnd
	}
	o.events = append(o.events, ev)
	return nil
}

// seal refuses any later emit.
func (o *outbox) seal() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
}

// take hands over what was emitted so far.
func (o *outbox) take() []eventabi.Event {
	o.mu.Lock()
	defer o.mu.Unlock()
	evs := o.events
	o.events = nil
	return evs
}

// close seals and hands over everything.
func (o *outbox) close() []eventabi.Event {
	o.seal()
	return o.take()
}
