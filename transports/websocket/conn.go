package websocket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	cws "github.com/coder/websocket"

	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/kernel/fence"
	"github.com/rspp/rspp/transports"
	"github.com/rspp/rspp/transports/wav"
)

// Audio format of the wire (PROTOCOL.md).
const (
	SampleRate = wav.SampleRate
	Channels   = wav.Channels
	FrameBytes = wav.FrameBytes
)

// controlQueue bounds queued control messages per connection; a client
// that lets it fill is too slow to keep.
const controlQueue = 256

// CloseError is how a connection ended: the close code and reason sent
// (or received), and the kind (errors.Is transports.ErrBadInput,
// ErrConnectionLost or ErrClientClosed).
type CloseError struct {
	Code   cws.StatusCode
	Reason string
	Kind   error
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("websocket closed (%d %s): %s", int(e.Code), e.Code, e.Reason)
}

func (e *CloseError) Unwrap() error { return e.Kind }

// clientMsg is any client text message; which fields count depends on Type.
type clientMsg struct {
	Type       string `json:"type"`
	SampleRate *int   `json:"sample_rate,omitempty"`
	Channels   *int   `json:"channels,omitempty"`
	Tenant     string `json:"tenant,omitempty"`
	Turn       string `json:"turn,omitempty"`
	Event      string `json:"event,omitempty"`
	PlayedMs   int64  `json:"played_ms,omitempty"`
}

// serverMsg is any server text message.
type serverMsg = transports.Message

// Conn is one WebSocket connection: one session (transports.Conn).
type Conn struct {
	srv    *Server
	ws     *cws.Conn
	id     string
	remote string

	ctx    context.Context // ends once the connection is closed
	cancel context.CancelFunc

	started chan struct{} // closed on a valid start
	done    chan struct{} // closed when every goroutine ended
	wg      sync.WaitGroup
	inbound chan eventabi.Event
	idle    *time.Timer

	route transports.Route // set before started is closed
	gate  atomic.Pointer[fence.Gate]

	mu        sync.Mutex
	wake      chan struct{}
	ctrl      [][]byte
	audio     []eventabi.Event
	audioTurn string    // turn of the last audio_start written or queued
	fullSince time.Time // the send queue has been full since
	closing   bool
	closeCode cws.StatusCode
	closeWhy  string
	err       error

	frames   atomic.Int64 // audio frames received
	stats    ConnStats
	statsMu  sync.Mutex
	playback map[string]int64 // turn -> played_ms the client reported last
}

// ConnStats are one connection's counters.
type ConnStats struct {
	FramesIn, FramesOut   uint64
	FencedDropped         uint64 // queued frames dropped by a fence or refused by the gate
	QueueFull             uint64 // frames refused: send queue full
	PlaybackReports       uint64
	MaxAudioQ, MaxControl int
}

func newConn(s *Server, ws *cws.Conn, id, remote string) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{srv: s, ws: ws, id: id, remote: remote, ctx: ctx, cancel: cancel,
		started: make(chan struct{}), done: make(chan struct{}), inbound: make(chan eventabi.Event, 64),
		wake: make(chan struct{}, 1), playback: map[string]int64{}}
	// Limits are ours (read below): the library's would close with 1009
	// before we could say why.
	ws.SetReadLimit(-1)
	return c
}

func (c *Conn) start() {
	c.idle = time.AfterFunc(c.srv.opts.IdleTimeout, func() {
		c.fail(cws.StatusGoingAway, "idle timeout: no message for "+c.srv.opts.IdleTimeout.String(), transports.ErrConnectionLost)
	})
	c.wg.Add(3)
	go c.readLoop()
	go c.writeLoop()
	go c.pingLoop()
	go func() {
		c.wg.Wait()
		c.idle.Stop()
		close(c.done)
	}()
}

// ID is the session id the server gave the connection.
func (c *Conn) ID() string { return c.id }

// Route implements transports.Conn.
func (c *Conn) Route() transports.Route { return c.route }

// Inbound implements transports.Conn.
func (c *Conn) Inbound() <-chan eventabi.Event { return c.inbound }

// Bind implements transports.Conn: the client gets ready.
func (c *Conn) Bind(b transports.Binding) error {
	if b.Gate != nil {
		c.gate.Store(b.Gate)
	}
	if !c.queueCtrl(serverMsg{Type: "ready", Session: b.SessionID, Protocol: ProtocolVersion}) {
		return fmt.Errorf("%w: %s", transports.ErrConnectionLost, c.id)
	}
	return nil
}

// Send implements transports.Conn: an audio frame is queued for the
// writer; other egress is not part of the protocol and is ignored.
func (c *Conn) Send(ev eventabi.Event) error {
	if ev.Type != eventabi.TypeAudioFrame || ev.Audio == nil {
		return nil
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return fmt.Errorf("%w: %s", transports.ErrConnectionLost, c.id)
	}
	if len(c.audio) >= c.srv.opts.SendQueue {
		now := time.Now()
		if c.fullSince.IsZero() {
			c.fullSince = now
		}
		slow := now.Sub(c.fullSince) > c.srv.opts.SlowReaderGrace
		c.mu.Unlock()
		c.statsMu.Lock()
		c.stats.QueueFull++
		c.statsMu.Unlock()
		if slow {
			c.fail(cws.StatusPolicyViolation, "client too slow to read its audio: send queue full for "+c.srv.opts.SlowReaderGrace.String(), transports.ErrConnectionLost)
		}
		return transports.ErrQueueFull
	}
	c.fullSince = time.Time{}
	c.audio = append(c.audio, ev)
	n := len(c.audio)
	c.mu.Unlock()
	c.statsMu.Lock()
	c.stats.MaxAudioQ = max(c.stats.MaxAudioQ, n)
	c.statsMu.Unlock()
	c.kick()
	return nil
}

// Fence implements transports.Conn: queued frames of the turn are
// dropped and the client is told to drop what it holds, before any later
// audio.
func (c *Conn) Fence(turnID, reason string) {
	c.mu.Lock()
	var dropped int
	c.audio, dropped = transports.DropTurn(c.audio, turnID)
	if c.audioTurn == turnID {
		c.audioTurn = ""
	}
	c.mu.Unlock()
	c.statsMu.Lock()
	c.stats.FencedDropped += uint64(dropped)
	c.statsMu.Unlock()
	c.queueCtrl(serverMsg{Type: "fence", Turn: turnID, Reason: reason})
}

// Notify implements transports.Conn.
func (c *Conn) Notify(n transports.Notice) {
	if m, ok := transports.NoticeMessage(n); ok {
		c.queueCtrl(m)
	}
}

// Refuse implements transports.Conn: the runtime refused the input.
func (c *Conn) Refuse(err error) {
	c.fail(cws.StatusPolicyViolation, err.Error(), transports.ErrBadInput)
}

// Close implements transports.Conn: the session is over; the connection
// closes normally (1000), unless it is already closing for another reason.
func (c *Conn) Close(reason string) {
	code := cws.StatusNormalClosure
	if reason == "server shutting down" {
		code = cws.StatusGoingAway
	}
	c.closeWith(code, reason, nil)
	<-c.done
}

// Err implements transports.Conn.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Stats returns the connection's counters.
func (c *Conn) Stats() ConnStats {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	s := c.stats
	s.FramesIn = uint64(c.frames.Load())
	return s
}

// fail closes the connection for cause: the client gets an error
// message with the reason, then the close frame with code.
func (c *Conn) fail(code cws.StatusCode, reason string, kind error) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	m, _ := json.Marshal(serverMsg{Type: "error", Reason: reason})
	// The error goes out before anything still queued.
	c.ctrl = append([][]byte{m}, c.ctrl...)
	c.audio = nil
	c.mu.Unlock()
	c.closeWith(code, reason, kind)
}

// closeWith starts closing: the writer writes what control is queued,
// then the close frame. The first cause wins.
func (c *Conn) closeWith(code cws.StatusCode, reason string, kind error) {
	c.mu.Lock()
	if !c.closing {
		c.closing, c.closeCode, c.closeWhy = true, code, truncate(reason, 120)
		if c.err == nil && kind != nil {
			c.err = &CloseError{Code: code, Reason: reason, Kind: kind}
		}
	}
	c.mu.Unlock()
	c.kick()
}

// lost records that the connection broke under us (read/ping error).
func (c *Conn) lost(err error) {
	c.mu.Lock()
	if c.err == nil {
		kind := transports.ErrConnectionLost
		code := cws.CloseStatus(err)
		c.err = &CloseError{Code: code, Reason: err.Error(), Kind: kind}
	}
	if !c.closing {
		c.closing, c.closeCode, c.closeWhy = true, cws.StatusGoingAway, "connection lost"
	}
	c.mu.Unlock()
	c.kick()
}

func (c *Conn) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Conn) queueCtrl(m serverMsg) bool {
	b, err := json.Marshal(m)
	if err != nil {
		return false
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	if len(c.ctrl) >= controlQueue {
		c.mu.Unlock()
		c.fail(cws.StatusPolicyViolation, "client too slow to read: control queue full", transports.ErrConnectionLost)
		return false
	}
	c.ctrl = append(c.ctrl, b)
	n := len(c.ctrl)
	c.mu.Unlock()
	c.statsMu.Lock()
	c.stats.MaxControl = max(c.stats.MaxControl, n)
	c.statsMu.Unlock()
	c.kick()
	return true
}

// readLoop reads client messages until the connection ends; it is the
// only sender on inbound and closes it.
func (c *Conn) readLoop() {
	defer c.wg.Done()
	defer close(c.inbound)
	limit := c.srv.opts.MaxMessageBytes
	for {
		typ, r, err := c.ws.Reader(c.ctx)
		if err != nil {
			c.lost(err)
			return
		}
		data, err := io.ReadAll(io.LimitReader(r, limit+1))
		if err != nil {
			c.lost(err)
			return
		}
		if int64(len(data)) > limit {
			c.fail(cws.StatusMessageTooBig, fmt.Sprintf("message too big: over %d bytes", limit), transports.ErrBadInput)
			return
		}
		c.idle.Reset(c.srv.opts.IdleTimeout)
		var ev *eventabi.Event
		switch typ {
		case cws.MessageBinary:
			ev = c.audioIn(data)
		case cws.MessageText:
			ev = c.controlIn(data)
		}
		if c.isClosing() {
			return
		}
		if ev == nil {
			continue
		}
		select {
		case c.inbound <- *ev:
		case <-c.ctx.Done():
			return
		}
	}
}

func (c *Conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

func (c *Conn) isStarted() bool {
	select {
	case <-c.started:
		return true
	default:
		return false
	}
}

// audioIn checks one binary message: exactly one 20 ms frame, after start.
func (c *Conn) audioIn(data []byte) *eventabi.Event {
	if !c.isStarted() {
		c.fail(cws.StatusPolicyViolation, "audio before start", transports.ErrBadInput)
		return nil
	}
	if len(data) != FrameBytes {
		c.fail(cws.StatusUnsupportedData, fmt.Sprintf("binary frame of %d bytes: want %d (20 ms of 16 kHz mono s16le)", len(data), FrameBytes), transports.ErrBadInput)
		return nil
	}
	n := c.frames.Add(1) - 1
	return &eventabi.Event{
		Type: eventabi.TypeAudioFrame, Lane: eventabi.LaneData, SchemaVersion: eventabi.SchemaVersion,
		MediaNanos: n * int64(20*time.Millisecond),
		Audio:      &eventabi.Audio{PCM: data, SampleRate: SampleRate, Channels: Channels},
	}
}

// badInput is why a client message closes its connection.
type badInput struct {
	code   cws.StatusCode
	reason string
}

// parseControl decodes and checks one client text message (PROTOCOL.md);
// started says whether the session's start came already.
func parseControl(data []byte, started bool) (clientMsg, *badInput) {
	var m clientMsg
	if err := json.Unmarshal(data, &m); err != nil {
		return m, &badInput{cws.StatusPolicyViolation, "invalid JSON: " + err.Error()}
	}
	switch m.Type {
	case "start":
		switch {
		case started:
			return m, &badInput{cws.StatusPolicyViolation, "second start"}
		case m.SampleRate == nil || *m.SampleRate != SampleRate:
			return m, &badInput{cws.StatusUnsupportedData, fmt.Sprintf("start: sample_rate %s: want %d", optInt(m.SampleRate), SampleRate)}
		case m.Channels == nil || *m.Channels != Channels:
			return m, &badInput{cws.StatusUnsupportedData, fmt.Sprintf("start: channels %s: want %d", optInt(m.Channels), Channels)}
		}
	case "playback":
		switch {
		case !started:
			return m, &badInput{cws.StatusPolicyViolation, "playback before start"}
		case m.Turn == "":
			return m, &badInput{cws.StatusPolicyViolation, "playback: no turn"}
		case m.Event != "started" && m.Event != "position" && m.Event != "done":
			return m, &badInput{cws.StatusPolicyViolation, fmt.Sprintf("playback: event %q: want started, position or done", truncate(m.Event, 40))}
		}
	case "stop":
	case "":
		return m, &badInput{cws.StatusPolicyViolation, "message without type"}
	default:
		return m, &badInput{cws.StatusPolicyViolation, fmt.Sprintf("unknown type %q", truncate(m.Type, 40))}
	}
	return m, nil
}

// controlIn handles one text message.
func (c *Conn) controlIn(data []byte) *eventabi.Event {
	m, bad := parseControl(data, c.isStarted())
	if bad != nil {
		c.fail(bad.code, bad.reason, transports.ErrBadInput)
		return nil
	}
	switch m.Type {
	case "start":
		c.route = transports.Route{SessionID: c.id, TenantID: m.Tenant}
		close(c.started)
	case "playback":
		c.statsMu.Lock()
		c.stats.PlaybackReports++
		if len(c.playback) < 64 || c.playback[m.Turn] != 0 {
			c.playback[m.Turn] = m.PlayedMs
		}
		c.statsMu.Unlock()
	case "stop":
		c.mu.Lock()
		if c.err == nil {
			c.err = &CloseError{Code: cws.StatusNormalClosure, Reason: "stop", Kind: transports.ErrClientClosed}
		}
		c.mu.Unlock()
		c.closeWith(cws.StatusNormalClosure, "stop", nil)
	}
	return nil
}

// writeLoop is the connection's one writer: control first (fence before
// any later audio), then audio, each frame admitted against the
// session's gate right before it goes out; then the close frame.
func (c *Conn) writeLoop() {
	defer c.wg.Done()
	defer c.cancel()
	for {
		select {
		case <-c.wake:
		case <-c.ctx.Done():
			return
		}
		for {
			c.mu.Lock()
			if len(c.ctrl) > 0 {
				m := c.ctrl[0]
				c.ctrl[0] = nil
				c.ctrl = c.ctrl[1:]
				c.mu.Unlock()
				if err := c.write(cws.MessageText, m); err != nil {
					c.lost(err)
					c.finish()
					return
				}
				continue
			}
			if c.closing {
				code, why := c.closeCode, c.closeWhy
				c.mu.Unlock()
				c.finishWith(code, why)
				return
			}
			if len(c.audio) == 0 {
				c.mu.Unlock()
				break
			}
			ev := c.audio[0]
			c.audio[0] = eventabi.Event{}
			c.audio = c.audio[1:]
			if len(c.audio) == 0 {
				c.audio = nil
			}
			var start []byte
			if ev.TurnID != c.audioTurn {
				c.audioTurn = ev.TurnID
				start, _ = json.Marshal(serverMsg{Type: "audio_start", Turn: ev.TurnID})
			}
			c.mu.Unlock()
			if g := c.gate.Load(); g != nil && g.Admit(&ev) != nil {
				c.statsMu.Lock()
				c.stats.FencedDropped++
				c.statsMu.Unlock()
				continue
			}
			if start != nil {
				if err := c.write(cws.MessageText, start); err != nil {
					c.lost(err)
					c.finish()
					return
				}
			}
			if err := c.write(cws.MessageBinary, ev.Audio.PCM); err != nil {
				c.lost(err)
				c.finish()
				return
			}
			c.statsMu.Lock()
			c.stats.FramesOut++
			c.statsMu.Unlock()
		}
	}
}

func (c *Conn) write(typ cws.MessageType, p []byte) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.srv.opts.WriteTimeout)
	defer cancel()
	return c.ws.Write(ctx, typ, p)
}

// finishWith sends the close frame (the handshake is bounded by the
// library: 5 s to write, 5 s for the peer's answer).
func (c *Conn) finishWith(code cws.StatusCode, why string) {
	_ = c.ws.Close(code, why)
}

// finish drops a broken connection without a handshake.
func (c *Conn) finish() { _ = c.ws.CloseNow() }

// pingLoop keeps the connection alive and notices a dead peer.
func (c *Conn) pingLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.srv.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.srv.opts.PingTimeout)
		err := c.ws.Ping(ctx)
		cancel()
		if err != nil {
			if c.ctx.Err() == nil && !errors.Is(err, context.Canceled) {
				c.lost(fmt.Errorf("ping: %w", err))
			}
			return
		}
	}
}

func optInt(p *int) string {
	if p == nil {
		return "missing"
	}
	return fmt.Sprint(*p)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
