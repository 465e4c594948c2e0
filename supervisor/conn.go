package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/kernel/fence"
	"github.com/rspp/rspp/supervisor/session"
	"github.com/rspp/rspp/transports"
)

// Session close reasons of connections.
const (
	CloseSessionEnd     = "session_close"   // the input ended (end of file); the last turn finished first
	CloseClient         = "client_close"    // the client ended the session
	CloseConnectionLost = "connection_lost" // the connection was lost
	CloseBadInput       = "bad_input"       // the connection was closed for bad input
	CloseShutdown       = "shutdown"        // the runtime is stopping
)

// ConnOptions shape how a connection's session runs.
type ConnOptions struct {
	// Pacer, if set, makes the session live: its agent audio goes out in
	// real time through a playout, and a turn ends only once its audio
	// has played, so the user can barge in while it plays. Nil sends
	// egress to the connection as the kernel emits it (the file
	// transport).
	Pacer *Pacer
	// PlayoutFrames bounds a live session's buffered audio (0:
	// DefaultPlayoutFrames).
	PlayoutFrames int
	// SessionID names the session when the route does not.
	SessionID string
	Timeline  session.Timeline
	// Observe also sees every node output the kernel accepted.
	Observe func(nodeID string, ev eventabi.Event)
	// Settle bounds the wait for the last turn after the input ended
	// normally (0: until it ends or ctx does).
	Settle time.Duration
	// ShutdownReason is the session_close reason when ctx ends first
	// ("": CloseShutdown).
	ShutdownReason string
	// Opened, if set, is called with the session once it is open.
	Opened func(s *session.Session)
}

// ConnResult is how a connection's session ended.
type ConnResult struct {
	SessionID string
	// Reason is the session's session_close reason.
	Reason string
	// ConnErr is how the connection ended (transports.Conn.Err).
	ConnErr error
	// Playout are the live session's playout counters.
	Playout PlayoutStats
	// EndedItself: the session closed on its own (a session-scope cancel),
	// not because the connection or the runtime ended it.
	EndedItself bool
}

// ServeConn runs one session on a transport connection: it opens the
// session the route asks for, binds it to the connection, feeds it the
// connection's inbound frames and sends its egress, fenced by the
// session's one gate, until the connection ends:
//   - input ended normally (end of file): the last turn finishes, then the
//     session closes with session_close;
//   - the client ended the session: it closes at once with client_close;
//   - the connection was lost: an open turn aborts and the session closes
//     with connection_lost;
//   - ctx ended: the session closes at once with shutdown.
//
// Input the kernel refuses ends only this connection (Refuse) and closes
// the session with bad_input.
func (rt *Runtime) ServeConn(ctx context.Context, c transports.Conn, o ConnOptions) (ConnResult, error) {
	route := c.Route()
	id := route.SessionID
	if id == "" {
		id = o.SessionID
	}
	res := ConnResult{SessionID: id}
	if id == "" {
		c.Close("no session id")
		return res, fmt.Errorf("serve conn: no session id")
	}
	gate := fence.NewGate(0)
	n := &noticer{conn: c, next: o.Timeline, live: o.Pacer != nil, observe: o.Observe}
	var (
		out     session.Output = gatedOutput{conn: c, gate: gate}
		playout *Playout
		post    postBox
	)
	if o.Pacer != nil {
		playout = o.Pacer.NewPlayout(PlayoutConfig{Conn: c, Gate: gate, Post: post.post, Played: post.played, Frames: o.PlayoutFrames,
			Timeline: o.Timeline, SessionID: id})
		out = playout
	}
	sess, err := rt.OpenSession(SessionOptions{ID: id, TenantID: route.TenantID, Output: out, Timeline: n, Observe: n.observeNode,
		AwaitPlayback: playout != nil, Gate: gate})
	if err != nil {
		c.Refuse(err)
		c.Close("session refused")
		return res, err
	}
	post.set(sess)
	// Each inbound frame goes to the session; input it refuses ends the
	// connection. A feed-driven connection (transports.Feed: a file, the
	// load) has its producer do this itself, on its own goroutine, through
	// a session.Stream (the verdict on a frame is collected with the next
	// one); others send frames on Inbound for the loop below.
	var end connEnd
	refused := func(err error) error {
		switch {
		case err == nil:
		case errors.Is(err, session.ErrClosed):
			if end.decide("session_closed", true) {
				c.Refuse(fmt.Errorf("%w: session %s", kernel.ErrSessionClosed, id))
			}
		default:
			if end.decide(CloseBadInput, false) {
				c.Refuse(fmt.Errorf("%w: %w", transports.ErrBadInput, err))
			}
		}
		return err
	}
	var stream *session.Stream
	if d, ok := c.(directInbound); ok {
		stream = sess.Stream()
		d.Direct(func(ev eventabi.Event) error { return refused(stream.Ingest(ev)) })
	}
	if err := c.Bind(transports.Binding{SessionID: id, Gate: gate}); err != nil {
		// The connection ended before its session was bound (bad input
		// or loss right after start).
		res.Reason = closeReason(c.Err())
		if res.Reason == CloseSessionEnd {
			res.Reason = CloseConnectionLost
		}
		sess.Close(res.Reason)
		if playout != nil {
			playout.Close()
		}
		c.Close(res.Reason)
		res.ConnErr = c.Err()
		return res, nil
	}
	if o.Opened != nil {
		o.Opened(sess)
	}
	shutdown := o.ShutdownReason
	if shutdown == "" {
		shutdown = CloseShutdown
	}
	in := c.Inbound()
loop:
	for {
		select {
		case <-ctx.Done():
			end.decide(shutdown, false)
			break loop
		case ev, ok := <-in:
			if !ok {
				if stream != nil {
					// The producer has returned: its last frame's verdict.
					_ = refused(stream.Flush())
				}
				break loop
			}
			if refused(sess.Ingest(ev)) != nil {
				break loop
			}
		}
	}
	reason, endedItself := end.result()
	res.EndedItself = endedItself
	if reason == "" {
		reason = closeReason(c.Err())
		if reason == CloseSessionEnd {
			var settle <-chan time.Time
			if o.Settle > 0 {
				t := time.NewTimer(o.Settle)
				defer t.Stop()
				settle = t.C
			}
			select {
			case <-sess.Idle():
			case <-settle:
			case <-ctx.Done():
				reason = shutdown
			}
		}
	}
	sess.Close(reason)
	if playout != nil {
		playout.Close()
		res.Playout = playout.Stats()
	}
	c.Close(reason)
	recordGateStale(o.Timeline, id, gate)
	res.Reason = reason
	res.ConnErr = c.Err()
	return res, nil
}

// directInbound is a connection whose producer can hand its frames to the
// session itself (transports.Feed.Direct).
type directInbound interface {
	Direct(deliver func(eventabi.Event) error)
}

// connEnd is how ServeConn decided a connection ends, decided once: by
// the first refused input (on the loop, or on a direct producer's
// goroutine) or by ctx.
type connEnd struct {
	mu          sync.Mutex
	reason      string
	endedItself bool
}

// decide sets the ending unless one was set; it reports whether it did.
func (e *connEnd) decide(reason string, endedItself bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.reason != "" {
		return false
	}
	e.reason, e.endedItself = reason, endedItself
	return true
}

func (e *connEnd) result() (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reason, e.endedItself
}

// closeReason is the session_close reason for how a connection ended.
func closeReason(connErr error) string {
	switch {
	case connErr == nil:
		return CloseSessionEnd
	case errors.Is(connErr, transports.ErrClientClosed):
		return CloseClient
	case errors.Is(connErr, transports.ErrBadInput):
		return CloseBadInput
	default:
		return CloseConnectionLost
	}
}

// gatedOutput sends egress to a connection as the kernel emits it,
// through the session's gate (the file transport: nothing is buffered
// here to drop at a fence).
type gatedOutput struct {
	conn transports.Conn
	gate *fence.Gate
}

func (g gatedOutput) Send(ev eventabi.Event) error {
	if err := g.gate.Admit(&ev); err != nil {
		return err
	}
	return g.conn.Send(ev)
}

func (g gatedOutput) Fence(turnID, reason string) {
	g.gate.Fence(turnID, reason)
	g.conn.Fence(turnID, reason)
}

// postBox lets a playout created before its session post to it once
// the session is open.
type postBox struct {
	s atomic.Pointer[session.Session]
}

func (p *postBox) set(s *session.Session) { p.s.Store(s) }

func (p *postBox) played(turn string, n int) {
	if s := p.s.Load(); s != nil {
		s.EgressPlayed(turn, n)
	}
}

func (p *postBox) post(ev eventabi.Event) bool {
	if s := p.s.Load(); s != nil {
		return s.Post(ev)
	}
	return false
}

// noticer turns a session's timeline records and node outputs into the
// connection's notices (turn lifecycle, transcript, reply) and passes
// records on. It runs on the session loop: Notify never blocks.
type noticer struct {
	conn    transports.Conn
	next    session.Timeline
	live    bool
	observe func(nodeID string, ev eventabi.Event)

	mu        sync.Mutex
	speechEnd map[string]int64 // turn -> mono ns of the user's end of speech
}

func (n *noticer) Append(rec kernel.TimelineRecord) {
	if n.next != nil {
		n.next.Append(rec)
	}
	switch rec.Type {
	case "turn_open":
		n.conn.Notify(transports.Notice{Kind: transports.NoticeTurn, Turn: rec.TurnID, State: "open"})
	case "turn_active":
		n.conn.Notify(transports.Notice{Kind: transports.NoticeTurn, Turn: rec.TurnID, State: "active"})
	case "speech_end":
		n.mu.Lock()
		if n.speechEnd == nil {
			n.speechEnd = map[string]int64{}
		}
		n.speechEnd[rec.TurnID] = rec.MonoNanos
		n.mu.Unlock()
	case "turn_commit", "turn_abort":
		state := "commit"
		if rec.Type == "turn_abort" {
			state = "abort"
		}
		lat := int64(-1)
		n.mu.Lock()
		if at, ok := n.speechEnd[rec.TurnID]; ok {
			lat = (rec.MonoNanos - at) / 1e6
			delete(n.speechEnd, rec.TurnID)
		}
		n.mu.Unlock()
		n.conn.Notify(transports.Notice{Kind: transports.NoticeTurn, Turn: rec.TurnID, State: state, Reason: rec.Reason, LatencyMs: lat})
	}
}

func (n *noticer) observeNode(nodeID string, ev eventabi.Event) {
	if n.observe != nil {
		n.observe(nodeID, ev)
	}
	if ev.Text == nil {
		return
	}
	switch ev.Type {
	case eventabi.TypeTranscriptFinal, eventabi.TypeTranscriptPartial:
		n.conn.Notify(transports.Notice{Kind: transports.NoticeTranscript, Turn: ev.TurnID, Text: ev.Text.Text, Final: ev.Type == eventabi.TypeTranscriptFinal})
	case eventabi.TypeTextFinal:
		n.conn.Notify(transports.Notice{Kind: transports.NoticeReply, Turn: ev.TurnID, Text: ev.Text.Text, Final: true})
	}
}
