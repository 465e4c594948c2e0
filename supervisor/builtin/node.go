// Package builtin runs in-process nodes behind the same contract external
// (plugin) nodes implement: Init, OnEvent with emit, OnCancel, Shutdown. It
// enforces a timeout on every hook and shapes every failure (error, panic,
// hang) into one of the kernel's typed invocation outcomes, so the kernel
// applies the same failure policy whether a node runs in this process or in
// its own.
//
// Unlike the kernel core, the host deals in wall time: a hook runs on its own
// goroutine so a hang can be timed out. Every such goroutine is owned by the
// Host and Close waits for them (bounded).
package builtin

import (
	"context"
	"errors"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

// Emit hands one output event to the runtime. It returns an error once the
// invocation can no longer emit (cancelled, timed out, ended).
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
// (an STT emitting its final transcript) implements it. The invocation ends
// when it returns.
type InputCloser interface {
	OnInputClosed(ctx context.Context, emit Emit) error
}

// Config is what a node learns at Init.
type Config struct {
	Ref     kernel.InvocationRef
	Binding kernel.Binding
	Attempt int
}

// Factory makes a fresh Node for one invocation.
type Factory func() Node

// Timeouts bound each hook. Zero fields take the defaults.
type Timeouts struct {
	Init, Event, Cancel, Shutdown time.Duration
}

// DefaultTimeouts are the hook bounds used for zero Timeouts fields.
var DefaultTimeouts = Timeouts{Init: 2 * time.Second, Event: 5 * time.Second, Cancel: 500 * time.Millisecond, Shutdown: time.Second}

// Errors of the host. ErrHookTimeout also matches kernel.ErrNodeTimeout.
var (
	ErrHookTimeout  = errors.New("node hook timed out")
	ErrDuplicate    = errors.New("node pool already registered")
	ErrUnknownPool  = errors.New("no in-process node for pool")
	ErrNotStarted   = errors.New("invocation not started on this host")
	ErrEmitAfterEnd = errors.New("emit after the invocation ended")
)
