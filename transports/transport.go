// Package transports is the seam between the runtime and the transports
// that carry a session's media and control (RK-12, the spec's
// TransportAdapter). A transport accepts connections; each connection is
// one session: the runtime binds a session to it, reads its inbound
// frames, sends it egress and fences it. The file transport (one WAV in,
// one WAV out) and the WebSocket transport implement it alike, so that
// `rspp run` and `rspp serve` drive every transport through one path
// (supervisor.ServeConn).
//
// A transport owns its wire format and its connection's I/O. It never
// decides turns (the kernel does) and never paces agent audio itself: a
// live transport is handed frames at real time by the supervisor's
// playout and writes them as they come.
//
// Transports import kernel/eventabi, kernel/fence and transports/...; never
// supervisor/..., which drives them.
package transports

import (
	"errors"

	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/kernel/fence"
)

// Route is what a connection asks for when it opens its session.
type Route struct {
	// SessionID, if set, is the session id the transport chose (the file
	// transport's); "" lets the runtime name the session.
	SessionID string
	TenantID  string
}

// Binding is what the runtime tells a connection once its session is
// open.
type Binding struct {
	SessionID string
	// Gate is the session's one egress fence. The runtime fences it first;
	// a connection that queues output of its own (a send queue, a socket
	// buffer it writes from) must Admit each event against it right before
	// it goes out, so nothing of a fenced turn leaves after the fence.
	Gate *fence.Gate
}

// Notice is session information a transport may show its client: turn
// lifecycle, the recognised text, the reply text. Transports without a
// control channel ignore them.
type Notice struct {
	Kind  string // NoticeTurn, NoticeTranscript, NoticeReply
	Turn  string
	State string // turn: open, active, commit, abort
	// Reason is why a turn aborted.
	Reason string
	// LatencyMs is, on commit/abort, the time since the user's end of
	// speech (-1 when the turn ended before the user stopped speaking).
	LatencyMs int64
	Text      string
	Final     bool
}

// Notice kinds.
const (
	NoticeTurn       = "turn"
	NoticeTranscript = "transcript"
	NoticeReply      = "reply"
)

// Conn is one connection of a transport, carrying one session.
//
// Calls come from the runtime: Bind once, then Inbound is read until it
// is closed; Send, Fence and Notify are called from the session's
// goroutines and must never block on the connection's I/O.
type Conn interface {
	// Route is what the connection asked for.
	Route() Route
	// Bind says the session is open (a live transport tells its client).
	Bind(b Binding) error
	// Inbound carries the connection's ingress (audio frames and control
	// events) in order. It is closed when the connection ends; Err then
	// says why.
	Inbound() <-chan eventabi.Event
	// Send queues one egress event (agent audio, text) for the client. A
	// transport whose queue is full returns an error wrapping
	// ErrQueueFull and keeps nothing of the event.
	Send(ev eventabi.Event) error
	// Fence drops everything the connection still holds of turnID and
	// tells the client to drop what it holds; nothing of the turn goes out
	// after it returns.
	Fence(turnID, reason string)
	// Notify shows the client session information. It never blocks.
	Notify(n Notice)
	// Refuse ends the connection because the runtime refused its input
	// (err names what was wrong). Only this connection is affected.
	Refuse(err error)
	// Close ends the connection from the runtime's side (session over,
	// shutdown). Safe to call twice; it returns once the connection's
	// goroutines have ended.
	Close(reason string)
	// Err, once Inbound is closed, says how the connection ended: nil when
	// its input ended normally (end of file: the last turn may finish),
	// wrapping ErrClientClosed when the client ended the session,
	// ErrConnectionLost when the connection was lost, ErrBadInput when it
	// was closed for bad input.
	Err() error
}

// Sentinel errors of the seam.
var (
	// ErrQueueFull: a connection's send queue has no room; nothing was
	// queued.
	ErrQueueFull = errors.New("transport: send queue full")
	// ErrConnectionLost: the connection ended without its client ending
	// the session (network, idle timeout, a client too slow to read).
	ErrConnectionLost = errors.New("transport: connection lost")
	// ErrClientClosed: the client ended the session (a stop message).
	ErrClientClosed = errors.New("transport: client ended the session")
	// ErrBadInput: the connection was closed because its input was bad
	// (the error names what was wrong).
	ErrBadInput = errors.New("transport: bad input")
	// ErrListenerClosed: the listener accepts no more connections.
	ErrListenerClosed = errors.New("transport: listener closed")
)
