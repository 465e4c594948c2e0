package wsload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// FrameDuration is the audio one binary frame holds.
const FrameDuration = 20 * time.Millisecond

// Defaults of ClientConfig.
const (
	DefaultGap          = time.Second
	DefaultBargeInAfter = 400 * time.Millisecond
	DefaultReplyTimeout = 10 * time.Second
	DefaultDrainTimeout = 15 * time.Second
	// replyQuiet is how long after its last frame a turn's audio counts as
	// played out (the server paces at 20 ms; a pause this long is the end).
	replyQuiet = 250 * time.Millisecond
)

// ClientConfig is one simulated user: it speaks Utterances in turn, each in
// real time, listens to the agent's reply, and speaks again.
type ClientConfig struct {
	URL        string
	Utterances []Utterance
	// First is the index in Utterances this client starts with.
	First int
	// Gap is the silence between the end of the agent's reply and the next
	// utterance (default DefaultGap).
	Gap time.Duration
	// BargeInEvery N >= 2 makes every Nth utterance a barge-in: it starts
	// BargeInAfter into the audio of the previous turn's reply instead of
	// after it. 0 (or 1) never barges in.
	BargeInEvery int
	BargeInAfter time.Duration
	// ReplyTimeout bounds the wait for a reply before speaking again.
	ReplyTimeout time.Duration
	// Duration: no utterance starts later than this after ready; then the
	// client waits (up to DrainTimeout) for its turns to end and stops.
	Duration     time.Duration
	DrainTimeout time.Duration
	Tenant       string
	// Dial is the limit for connecting and getting `ready` (default 10 s).
	Dial time.Duration
}

func (c *ClientConfig) setDefaults() {
	if c.Gap == 0 {
		c.Gap = DefaultGap
	}
	if c.BargeInAfter == 0 {
		c.BargeInAfter = DefaultBargeInAfter
	}
	if c.ReplyTimeout == 0 {
		c.ReplyTimeout = DefaultReplyTimeout
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.Dial == 0 {
		c.Dial = 10 * time.Second
	}
}

// Turn is what one client saw of one of its session's turns. Times are
// arrival times at the client.
type Turn struct {
	ID                      string
	Opens, Actives          int
	Commits, Aborts         int
	AbortReason             string
	Transcript, Reply       string
	Frames                  int
	FirstFrame, LastFrame   time.Time
	Fenced                  bool
	FenceAt                 time.Time
	FenceReason             string
	FramesAfterFence        int
	Utterance               int // index into ClientResult.Utterances; -1: none
	firstSeen, terminalSeen time.Time
}

// Terminals is the number of terminal messages (commit or abort) of t.
func (t *Turn) Terminals() int { return t.Commits + t.Aborts }

// Spoken is one utterance as the client spoke it. Times are when the frame
// holding the event was sent.
type Spoken struct {
	Name string
	// BargeIn: spoken while the agent's audio of BargedTurn was arriving.
	BargeIn    bool
	BargedTurn string
	// Late: meant as a barge-in, but the agent's audio had ended first.
	Late                   bool
	SpeechStart, SpeechEnd time.Time
	Turn                   string // the turn the server opened for it
}

// ClientResult is everything one client measured.
type ClientResult struct {
	Session    string
	Err        error // why the session was lost; nil if it ran and closed as planned
	Turns      []*Turn
	Utterances []Spoken
	// Lateness holds, for every frame k >= 1 of every audio_start run,
	// max(0, arrival_k - (arrival_0 + 20 ms * k)).
	Lateness []time.Duration
	// Gaps holds, for every frame k >= 1 of a run, how much longer than
	// 20 ms after frame k-1 it arrived (positive part): the pacing's jitter,
	// which Lateness does not show while a pre-roll keeps the run ahead of
	// its schedule.
	Gaps []time.Duration
	// Frames that arrived with no audio_start before them (protocol breach).
	UnattributedFrames int
	ProtocolErrors     []string
	CloseStatus        websocket.StatusCode
}

// run is the current audio_start run: frames until the next audio_start or
// fence belong to turn.
type run struct {
	turn     string
	k        int
	t0, prev time.Time
}

type client struct {
	cfg  ClientConfig
	conn *websocket.Conn
	now  func() time.Time

	ctrl    chan Message  // control messages the sender writes for the reader
	changed chan struct{} // poked by the reader after every message

	mu         sync.Mutex
	res        ClientResult
	byID       map[string]*Turn
	cur        *run
	afterFence string // the turn fenced last while no run is current
	waiting    int    // utterance waiting for its turn to open; -1: none
	stopped    bool   // stop sent: a close is expected from now on
}

// RunClient connects to cfg.URL and runs one simulated user until its
// script ends or ctx ends. A session that could not start, or that the
// server closed or broke before the client stopped, has Err set.
func RunClient(ctx context.Context, cfg ClientConfig) *ClientResult {
	cfg.setDefaults()
	c := &client{cfg: cfg, now: time.Now, ctrl: make(chan Message, 64), changed: make(chan struct{}, 1),
		byID: map[string]*Turn{}, waiting: -1}
	if len(cfg.Utterances) == 0 {
		c.res.Err = errors.New("no utterance to speak")
		return &c.res
	}
	c.res.Err = c.session(ctx)
	return &c.res
}

func (c *client) session(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.Dial)
	defer cancel()
	conn, _, err := websocket.Dial(dctx, c.cfg.URL, nil)
	if err != nil {
		return fmt.Errorf("dial %s: %w", c.cfg.URL, err)
	}
	c.conn = conn
	defer conn.CloseNow()
	if err := c.writeJSON(dctx, Message{Type: TypeStart, SampleRate: SampleRate, Channels: Channels, Tenant: c.cfg.Tenant}); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	typ, b, err := conn.Read(dctx)
	if err != nil {
		return fmt.Errorf("waiting for ready: %w", err)
	}
	m, err := decodeServer(b)
	if typ != websocket.MessageText || err != nil || m.Type != TypeReady {
		return fmt.Errorf("first server message is not ready: %s %.120q (%v)", typ, b, err)
	}
	c.res.Session = m.Session

	// The reader runs until the connection ends; its context is not ctx,
	// because cancelling a Read's context closes the connection.
	readErr := make(chan error, 1)
	go func() { readErr <- c.read() }()
	speakErr := c.speak(ctx)
	if speakErr != nil {
		conn.CloseNow()
		<-readErr
		return speakErr
	}
	select {
	case err := <-readErr:
		return err
	case <-time.After(5 * time.Second):
		// The server did not close after stop: close ourselves, and say so.
		_ = conn.Close(websocket.StatusNormalClosure, "stopped")
		<-readErr
		return errors.New("server did not close the connection within 5s of stop")
	}
}

func (c *client) writeJSON(ctx context.Context, m Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return c.conn.Write(ctx, websocket.MessageText, b)
}

// read consumes server messages until the connection ends. It returns nil
// if the connection ended after stop was sent, else why it was lost.
func (c *client) read() error {
	for {
		typ, b, err := c.conn.Read(context.Background())
		at := c.now()
		if err != nil {
			c.mu.Lock()
			stopped := c.stopped
			c.res.CloseStatus = websocket.CloseStatus(err)
			c.mu.Unlock()
			c.poke()
			if stopped {
				return nil
			}
			return fmt.Errorf("connection lost: %w", err)
		}
		c.mu.Lock()
		if typ == websocket.MessageBinary {
			c.frame(b, at)
		} else if err := c.text(b, at); err != nil {
			c.mu.Unlock()
			c.poke()
			return err
		}
		c.mu.Unlock()
		c.poke()
	}
}

func (c *client) poke() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func (c *client) turn(id string, at time.Time) *Turn {
	t := c.byID[id]
	if t == nil {
		t = &Turn{ID: id, Utterance: -1, firstSeen: at}
		c.byID[id] = t
		c.res.Turns = append(c.res.Turns, t)
	}
	return t
}

func (c *client) protocolError(format string, args ...any) {
	c.res.ProtocolErrors = append(c.res.ProtocolErrors, fmt.Sprintf(format, args...))
}

// text handles a control message; mu is held. An `error` message ends the
// session (the server closes after it).
func (c *client) text(b []byte, at time.Time) error {
	m, err := decodeServer(b)
	if err != nil {
		c.protocolError("%v", err)
		return nil
	}
	switch m.Type {
	case TypeReady:
		c.protocolError("second ready")
	case TypeError:
		return fmt.Errorf("server error: %s", m.Reason)
	case TypeTurn:
		t := c.turn(m.Turn, at)
		switch m.State {
		case StateOpen:
			t.Opens++
			if c.waiting >= 0 && t.Utterance < 0 {
				t.Utterance = c.waiting
				c.res.Utterances[c.waiting].Turn = t.ID
				c.waiting = -1
			}
		case StateActive:
			t.Actives++
		case StateCommit:
			t.Commits++
			t.terminalSeen = at
		case StateAbort:
			t.Aborts++
			t.AbortReason = m.Reason
			t.terminalSeen = at
		}
	case TypeTranscript:
		if m.Final {
			c.turn(m.Turn, at).Transcript = m.Text
		}
	case TypeReply:
		c.turn(m.Turn, at).Reply = m.Text
	case TypeAudioStart:
		c.turn(m.Turn, at)
		c.cur, c.afterFence = &run{turn: m.Turn}, ""
	case TypeFence:
		t := c.turn(m.Turn, at)
		if !t.Fenced {
			t.Fenced, t.FenceAt, t.FenceReason = true, at, m.Reason
		}
		if c.cur != nil && c.cur.turn == m.Turn {
			c.cur = nil
		}
		if c.cur == nil {
			c.afterFence = m.Turn
		}
	}
	return nil
}

// frame handles a binary frame arriving at at; mu is held.
func (c *client) frame(b []byte, at time.Time) {
	if len(b) != FrameBytes {
		c.protocolError("binary frame of %d bytes, want %d", len(b), FrameBytes)
		return
	}
	if c.cur == nil {
		if c.afterFence != "" {
			c.byID[c.afterFence].FramesAfterFence++
		} else {
			c.res.UnattributedFrames++
		}
		return
	}
	t := c.byID[c.cur.turn]
	if t.Fenced {
		t.FramesAfterFence++
		return
	}
	if t.Frames == 0 {
		c.sendCtrl(Message{Type: TypePlayback, Turn: t.ID, Event: "started"})
		t.FirstFrame = at
	}
	t.Frames++
	t.LastFrame = at
	r := c.cur
	if r.k == 0 {
		r.t0 = at
	} else {
		late := at.Sub(r.t0.Add(time.Duration(r.k) * FrameDuration))
		c.res.Lateness = append(c.res.Lateness, max(late, 0))
		c.res.Gaps = append(c.res.Gaps, max(at.Sub(r.prev)-FrameDuration, 0))
	}
	r.k++
	r.prev = at
}

// sendCtrl queues m for the sender; a full queue drops it (playback
// reports are advisory, and the reader must never block).
func (c *client) sendCtrl(m Message) {
	select {
	case c.ctrl <- m:
	default:
	}
}
