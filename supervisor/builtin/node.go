// Package builtin runs trusted built-in nodes inside the supervisor
// process (RK-05's in-process node host): a provider configured with
// `builtin: NAME` instead of `binary:` is served here, with no process,
// cgroup envelope, socket or pool. The session driver reaches it through
// the same interface it opens plugin invocations with (session.Pools:
// Host.Open returns a Call with Send / CloseInput / Cancel / Instance),
// so the kernel applies the same plan, timeouts and failure policy
// whether a node runs here or in a plugin process.
//
// It holds the node contract (Node: Init, OnEvent with emit, OnCancel,
// Shutdown; optional InputCloser), the Call that runs one invocation on a
// goroutine of its own behind a bounded input queue, hook timeouts and
// failure shaping (error, panic, hang -> the kernel's typed
// outcomes), the output checks of a plugin's outputs (the kernel's
// NodeOutputRules and the host's output budget), the registry of the
// built-ins a config may name (Lookup) and the built-ins themselves
// (textfilter.go, passthrough.go).
//
// Unlike the kernel core it deals in goroutines and wall time: every
// goroutine it starts is owned by the Host, and Host.Close waits for
// them (bounded). It may import kernel/... and externalnode (for the
// Handler / OpenRequest / OutputBudget types the session driver speaks);
// it must not import the rest of supervisor, transports or providers: a
// built-in is product code, not a linked plugin.
package builtin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

// Emit hands one output event to the runtime. It returns an error when the
// output is refused (the Event ABI, the node's declared emits, its output
// budget) or once the invocation can no longer emit (cancelled, timed
// out, ended).
type Emit func(eventabi.Event) error

// Node is the in-process node contract. One Node value serves one
// invocation; it is never called concurrently.
type Node interface {
	Init(ctx context.Context, cfg Config) error
	OnEvent(ctx context.Context, ev eventabi.Event, emit Emit) error
	OnCancel(ctx context.Context, reason string) error
	Shutdown(ctx context.Context) error
}

// InputCloser is optional: a node that flushes at the end of its input
// implements it. The invocation ends when it returns.
type InputCloser interface {
	OnInputClosed(ctx context.Context, emit Emit) error
}

// Config is what a node learns at Init.
type Config struct {
	SessionID, TurnID, NodeID, InvocationID string
}

// Factory makes a fresh Node for one invocation.
type Factory func() Node

// Timeouts bound each hook. Zero fields take the defaults.
type Timeouts struct {
	Init, Event, Cancel, Shutdown time.Duration
}

// defaultTimeouts are the hook bounds used for zero Timeouts fields.
var defaultTimeouts = Timeouts{Init: 2 * time.Second, Event: 5 * time.Second, Cancel: 500 * time.Millisecond, Shutdown: time.Second}

func (t Timeouts) withDefaults() Timeouts {
	d := defaultTimeouts
	for _, p := range []struct {
		dst *time.Duration
		def time.Duration
	}{{&t.Init, d.Init}, {&t.Event, d.Event}, {&t.Cancel, d.Cancel}, {&t.Shutdown, d.Shutdown}} {
		if *p.dst <= 0 {
			*p.dst = p.def
		}
	}
	return t
}

// Errors of the host. ErrHookTimeout also matches kernel.ErrNodeTimeout,
// ErrInputQueueFull kernel.ErrQueueFull.
var (
	ErrHookTimeout    = errors.New("builtin node hook timed out")
	ErrDuplicate      = errors.New("builtin pool already registered")
	ErrUnknownPool    = errors.New("no builtin node serves pool")
	ErrEmitAfterEnd   = errors.New("emit after the hook or invocation ended")
	ErrInputQueueFull = fmt.Errorf("builtin node input queue full: %w", kernel.ErrQueueFull)
	ErrHostClosed     = errors.New("builtin host closed")
)
