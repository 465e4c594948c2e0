package transports

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rspp/rspp/kernel/eventabi"
)

// Feed is the inbound half of a connection whose frames come from a
// producer it runs itself (a file, a script) rather than from a client:
// Start runs the producer once on its own goroutine; Inbound carries what
// it emits and is closed when it returns; Refuse and Close stop it; Err
// says how it ended (nil: its input ended normally). Conns embed it for
// their Inbound, Refuse, Close and Err.
type Feed struct {
	in      chan eventabi.Event
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	err     error
	started bool
	deliver func(eventabi.Event) error // Direct's; nil: frames go on in
}

// NewFeed makes a feed that has not started.
func NewFeed() *Feed {
	return &Feed{in: make(chan eventabi.Event), stop: make(chan struct{}), done: make(chan struct{})}
}

// Start runs produce once (later calls do nothing). produce hands each
// frame to emit, which waits for the session to take it; both end when
// ctx does: at Refuse, Close or the end of parent. An error produce returns
// while ctx is live becomes Err.
func (f *Feed) Start(parent context.Context, produce func(ctx context.Context, emit func(eventabi.Event) error) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started {
		return
	}
	f.started = true
	go f.run(parent, produce)
}

// Direct makes the producer hand each frame to deliver itself, on its own
// goroutine, instead of sending it on Inbound for a reader to pass on: one
// goroutine hop (two wake-ups) less per frame. deliver's error ends the
// producer as a cancelled emit does (it does not become Err: the one who
// delivers says why with Refuse); Inbound then carries no frames and is
// closed when the producer returns. It must be called before Start (later
// calls do nothing).
func (f *Feed) Direct(deliver func(eventabi.Event) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.started {
		f.deliver = deliver
	}
}

func (f *Feed) run(parent context.Context, produce func(context.Context, func(eventabi.Event) error) error) {
	defer close(f.done)
	defer close(f.in)
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	go func() {
		select {
		case <-f.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	emit := func(ev eventabi.Event) error {
		select {
		case f.in <- ev:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if deliver := f.deliver; deliver != nil { // set before Start, under mu: read-only now
		emit = func(ev eventabi.Event) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := deliver(ev); err != nil {
				return fmt.Errorf("%w: %w", errDelivery, err)
			}
			return nil
		}
	}
	if err := produce(ctx, emit); err != nil && ctx.Err() == nil && !errors.Is(err, errDelivery) {
		f.setErr(err)
	}
}

// errDelivery marks a Direct deliver's error on its way out of produce.
var errDelivery = errors.New("feed: frame refused")

// Inbound implements Conn.
func (f *Feed) Inbound() <-chan eventabi.Event { return f.in }

// Refuse implements Conn: the producer stops, Err says why.
func (f *Feed) Refuse(err error) {
	f.setErr(err)
	f.halt()
}

// Close implements Conn: it stops the producer and waits for it. Safe to
// call twice.
func (f *Feed) Close(string) {
	f.halt()
	f.mu.Lock()
	started := f.started
	f.mu.Unlock()
	if started {
		<-f.done
	}
}

// Err implements Conn.
func (f *Feed) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *Feed) halt() { f.once.Do(func() { close(f.stop) }) }

func (f *Feed) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}
