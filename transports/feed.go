package transports

import (
	"context"
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
	if err := produce(ctx, emit); err != nil && ctx.Err() == nil {
		f.setErr(err)
	}
}

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
