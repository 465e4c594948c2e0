package builtin

import (
	"context"
	"fmt"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

// StreamFunc is a node written in the streaming style plugin authors use
// (externalnode.Node.Invoke): read in until it is closed, emit outputs,
// return nil on success. ctx is cancelled when the invocation is.
type StreamFunc func(ctx context.Context, cfg Config, in <-chan eventabi.Event, emit Emit) error

// Stream adapts a StreamFunc to the hook contract, so the same streaming
// code runs in-process under the host's hook timeouts and failure shaping.
// Outputs emitted between hooks are handed over at the next hook; the
// input-closed hook waits for the function to return and hands over all.
func Stream(f StreamFunc) Factory { return func() Node { return &streamNode{f: f} } }

type streamNode struct {
	f        StreamFunc
	in       chan eventabi.Event
	cancel   context.CancelFunc
	finished chan struct{} // closed when f returned; err is then set
	err      error
	inClosed bool
	out      outbox // emitted, not yet handed over; sealed when f returned
}

func (n *streamNode) Init(ctx context.Context, cfg Config) error {
	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.in, n.cancel, n.finished = make(chan eventabi.Event, 64), cancel, make(chan struct{})
	go func() {
		defer close(n.finished)
		defer func() {
			if r := recover(); r != nil {
				n.err = fmt.Errorf("%w: panic in stream: %v", kernel.ErrNodeCrashed, r)
			}
			n.out.seal()
		}()
		n.err = n.f(run, cfg, n.in, n.out.emit)
	}()
	return nil
}

func (n *streamNode) flush(emit Emit) {
	for _, ev := range n.out.take() {
		_ = emit(ev)
	}
}

func (n *streamNode) OnEvent(ctx context.Context, ev eventabi.Event, emit Emit) error {
	defer n.flush(emit)
	select {
	case n.in <- ev:
		return nil
	case <-n.finished:
		if n.err != nil {
			return n.err
		}
		return fmt.Errorf("%w: stream returned before its input closed", kernel.ErrProtocol)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *streamNode) OnInputClosed(ctx context.Context, emit Emit) error {
	defer n.flush(emit)
	if !n.inClosed {
		n.inClosed = true
		close(n.in)
	}
	select {
	case <-n.finished:
		return n.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *streamNode) OnCancel(context.Context, string) error {
	n.cancel()
	return nil
}

// Shutdown cancels the stream and waits for it (bounded by the hook timeout).
func (n *streamNode) Shutdown(ctx context.Context) error {
	if n.cancel == nil {
		return nil
	}
	n.cancel()
	select {
	case <-n.finished:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
