// Package externalnode is the process boundary for nodes and providers
// (RK-13). Author side: implement Node and call Serve; host side: Start an
// Instance and open Calls on it. Authors and the kernel never see gRPC: the
// wire mapping (proto/rspp/v1) and go-plugin live here, and errors are
// converted to and from gRPC status only here.
//
// It imports kernel/... and proto of this module, never supervisor/...,
// transports or providers: it is the boundary the supervisor and every node
// stand on.
package externalnode

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

// Info describes a node implementation.
type Info struct {
	Name    string // e.g. "espeak"
	Kind    string // "stt", "llm", "tts", "custom"
	Version string // reported version; shows up in turn bindings
	Accepts []eventabi.Type
	Emits   []eventabi.Type
	// InputWindow is how many input events of one invocation the node may
	// have waiting before the host holds further input back (0:
	// DefaultInputWindow). Inputs are granted back as Inputs() is read.
	InputWindow int
	// Caps declares what the node can serve (sample rates, streaming,
	// languages); the host's plan resolver refuses to bind it to a node
	// whose requirements it does not meet. Zero: declared nothing.
	Caps Capabilities
	// Idempotent declares that an invocation's result depends only on its
	// inputs: a repeated OPEN with the same idempotency key (a retry of
	// the node in the same turn) is answered from the first run's recorded
	// outputs and end, without running Invoke again (dedupe.go).
	Idempotent bool
}

// Capabilities is the kernel's capability declaration (see
// kernel.Capabilities; Declared is set on the wire when any field is).
type Capabilities = kernel.Capabilities

// Config is the node's configuration block from the runtime config.
type Config struct {
	NodeID string
	// Dir is the directory of the runtime's config file: relative paths in
	// the block are relative to it (use Path).
	Dir string
	// Raw is the block as JSON.
	Raw []byte
}

// Decode unmarshals the block into v, rejecting unknown fields.
func (c Config) Decode(v any) error {
	if len(c.Raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(c.Raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("config for node %q: %w", c.NodeID, err)
	}
	return nil
}

// Path resolves p against Dir unless it is absolute.
func (c Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) || c.Dir == "" {
		return p
	}
	return filepath.Join(c.Dir, p)
}

// Node is what a node author implements.
type Node interface {
	Info() Info
	// Configure is called once after start, before any Invoke.
	Configure(ctx context.Context, cfg Config) error
	// Invoke handles one invocation: read call.Inputs() until it is closed,
	// Emit outputs, return nil on success. ctx is cancelled when the runtime
	// cancels the invocation (barge-in, timeout, turn abort); return promptly.
	// Invocations of different sessions run concurrently.
	Invoke(ctx context.Context, call *Call) error
}

// Call is one invocation as the author sees it.
type Call struct {
	ID        string
	SessionID string
	TurnID    string
	NodeID    string
	// Deadline is when the runtime gives up on the invocation (the node's
	// timeout in the frozen plan); zero when none was given. Work that
	// waits (a retry's backoff) should not plan past it.
	Deadline time.Time
	// Epoch is the session's authority epoch; Emit stamps outputs with it.
	Epoch uint64
	// IdempotencyKey is stable across retries of this node in this turn.
	IdempotencyKey string

	in   chan eventabi.Event
	emit func(eventabi.Event) error
}

// Inputs yields the invocation's input events; it is closed when the runtime
// says no more input will come. On cancel it may stay open: select on
// ctx.Done() as well.
func (c *Call) Inputs() <-chan eventabi.Event { return c.in }

// Emit sends one output event. NodeID and InvocationID are always the
// call's: an output is this node's, even when it forwards an input event
// unchanged. SessionID and TurnID are filled in when empty; the runtime
// rejects events that claim another session or turn.
func (c *Call) Emit(ev eventabi.Event) error {
	if ev.SessionID == "" {
		ev.SessionID = c.SessionID
	}
	if ev.TurnID == "" {
		ev.TurnID = c.TurnID
	}
	ev.InvocationID = c.ID
	ev.NodeID = c.NodeID
	if ev.Epoch == 0 {
		ev.Epoch = c.Epoch
	}
	if ev.Lane == eventabi.LaneUnspecified {
		ev.Lane = eventabi.DefaultLane(ev.Type)
	}
	if ev.SchemaVersion == 0 {
		ev.SchemaVersion = eventabi.SchemaVersion
	}
	return c.emit(ev)
}

// EmitText emits a text-carrying event (text delta, transcript, ...).
func (c *Call) EmitText(t eventabi.Type, text string, final bool) error {
	return c.Emit(eventabi.Event{Type: t, Text: &eventabi.Text{Text: text, Final: final}})
}

// EmitAudio emits one PCM s16le frame.
func (c *Call) EmitAudio(pcm []byte, sampleRate, channels uint32) error {
	return c.Emit(eventabi.Event{Type: eventabi.TypeAudioFrame, Audio: &eventabi.Audio{PCM: pcm, SampleRate: sampleRate, Channels: channels}})
}

// NewTestCall makes a Call for unit tests of a Node without any process
// boundary: inputs are fed from in, outputs go to emit. It is a test seam
// (an in-memory harness), not a transport.
func NewTestCall(id, sessionID, turnID, nodeID string, in chan eventabi.Event, emit func(eventabi.Event) error) *Call {
	return &Call{ID: id, SessionID: sessionID, TurnID: turnID, NodeID: nodeID, in: in, emit: emit}
}

// deadlineOf is the wire's deadline as a time (zero: none).
func deadlineOf(unixNanos int64) time.Time {
	if unixNanos <= 0 {
		return time.Time{}
	}
	return time.Unix(0, unixNanos)
}
