package supervisor

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/kernel/fence"
	"github.com/rspp/rspp/supervisor/session"
	"github.com/rspp/rspp/transports"
)

// FrameDuration is the media duration of one egress audio frame.
const FrameDuration = 20 * time.Millisecond

// Playout defaults.
const (
	// DefaultPlayoutFrames bounds the agent audio a live session holds
	// unplayed: 10 s of 20 ms frames (320 KB).
	DefaultPlayoutFrames = 500
	// DefaultPreRoll frames go out at once when a turn's audio starts, so
	// the client has a small buffer against network jitter; the rest
	// follows at one frame per 20 ms.
	DefaultPreRoll = 3
)

// ErrPlayoutFull is a playout buffer with no room: the frame was not
// taken (errors.Is transports.ErrQueueFull).
var ErrPlayoutFull = fmt.Errorf("playout buffer full: %w", transports.ErrQueueFull)

// Pacer is the one clock that paces agent audio out for every live
// session of a runtime: a single goroutine that wakes every 20 ms and
// lets each playout with audio send what is due. Sessions with nothing to
// play cost it nothing.
type Pacer struct {
	frame time.Duration

	mu      sync.Mutex
	active  map[*Playout]struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	running bool // run was started (NewPacer)
	ticks   atomic.Uint64
	list    []*Playout // step's snapshot of active, reused every tick
}

// NewPacer starts the pacing goroutine; Close stops it.
func NewPacer() *Pacer {
	p := newPacer()
	p.running = true
	go p.run()
	return p
}

// newPacer is a pacer without its goroutine (tests drive step).
func newPacer() *Pacer {
	return &Pacer{frame: FrameDuration, active: map[*Playout]struct{}{}, stop: make(chan struct{}), done: make(chan struct{})}
}

func (p *Pacer) run() {
	defer close(p.done)
	t := time.NewTicker(p.frame)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.step(now)
		}
	}
}

// step lets every active playout send what is due at now.
func (p *Pacer) step(now time.Time) {
	p.ticks.Add(1)
	p.mu.Lock()
	list := p.list[:0]
	for pl := range p.active {
		list = append(list, pl)
	}
	p.mu.Unlock()
	defer func() { clear(list); p.list = list[:0] }()
	for _, pl := range list {
		if idle := pl.pump(now); idle {
			p.mu.Lock()
			// Re-check under the pacer lock: a frame queued since pump
			// returned re-registered it (activate) and must stay.
			if pl.idle() {
				delete(p.active, pl)
			}
			p.mu.Unlock()
		}
	}
}

func (p *Pacer) activate(pl *Playout) {
	p.mu.Lock()
	p.active[pl] = struct{}{}
	p.mu.Unlock()
}

func (p *Pacer) remove(pl *Playout) {
	p.mu.Lock()
	delete(p.active, pl)
	p.mu.Unlock()
}

// Active is how many playouts have audio to send.
func (p *Pacer) Active() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.active)
}

// Close stops the pacer. Safe to call twice.
func (p *Pacer) Close() {
	p.once.Do(func() { close(p.stop) })
	if p.running {
		<-p.done
	}
}

// PlayoutConfig configures one session's playout.
type PlayoutConfig struct {
	Conn transports.Conn
	Gate *fence.Gate
	// Post hands an output signal back to the session without waiting
	// (session.Session.Post).
	Post func(ev eventabi.Event) bool
	// Played, if set, reports egress events of a turn played or dropped
	// here (session.Session.EgressPlayed): the kernel's egress credit.
	Played func(turn string, n int)
	// Timeline, if set, gets a playout_end record when a turn is fenced
	// (reason fenced, attr frames: how many of its frames went out), at
	// the time its last frame went to the connection, on Clock (the
	// kernel's: session.ProcessClock by default). Fence runs on the session
	// loop, which writes the kernel's records too.
	Timeline  session.Timeline
	SessionID string
	Clock     kernel.Clock
	// Frames bounds buffered audio (0: DefaultPlayoutFrames).
	Frames int
	// PreRoll frames go out at once at the start of a run (0:
	// DefaultPreRoll; -1: none).
	PreRoll int
}

// Playout is one live session's real-time egress: the runner hands it
// the kernel's egress (Send, Fence) on the session loop, never waiting;
// the pacer sends audio on to the connection at one frame per 20 ms
// after a short pre-roll. It reports control.output_accepted when it
// takes a turn's first frame and control.playback_started when that
// frame goes out. Fence consults and closes the session's one gate: what
// was buffered of the turn is dropped at once, and the connection's
// writer admits against the same gate, so nothing of the turn goes out
// afterwards.
//
// Every frame sent on (or dropped) is reported played (Played): the
// kernel keeps egress counted against its edge until then
// (kernel.SessionConfig.AwaitPlayback), so a burst of agent audio waits
// in the runner, held back with ErrQueueFull, instead of piling up here.
// The buffer bound (DefaultPlayoutFrames) is above the egress edge's
// capacity; a frame past it is refused with ErrPlayoutFull and counted.
type Playout struct {
	cfg   PlayoutConfig
	pacer *Pacer

	mu        sync.Mutex
	buf       []eventabi.Event // audio in play order; buf[head:] unplayed
	head      int
	runTurn   string          // turn of the current run of frames
	runStart  time.Time       // when the current run started
	runSent   int             // frames of the run sent
	accepted  string          // last turn output_accepted was reported for
	started   string          // last turn playback_started was reported for
	ended     map[string]bool // turns whose egress is complete (EndOfTurn), frames still buffered
	lastTurn  string          // turn of the last frame sent on
	lastAt    int64           // pool.Clock reading when it went
	lastN     int             // frames of lastTurn sent
	closed    bool
	full      uint64 // frames refused: buffer full
	fencedOut uint64 // frames dropped by a fence
	sent      uint64
	connFull  uint64 // pacer found the connection's queue full
}

// NewPlayout registers a session's playout with the pacer.
func (p *Pacer) NewPlayout(cfg PlayoutConfig) *Playout {
	if cfg.Frames <= 0 {
		cfg.Frames = DefaultPlayoutFrames
	}
	switch {
	case cfg.PreRoll == 0:
		cfg.PreRoll = DefaultPreRoll
	case cfg.PreRoll < 0:
		cfg.PreRoll = 0
	}
	if cfg.Gate == nil {
		cfg.Gate = fence.NewGate(0)
	}
	if cfg.Clock == nil {
		cfg.Clock = session.ProcessClock{}
	}
	return &Playout{cfg: cfg, pacer: p}
}

// Send takes one egress event from the session loop. Audio is buffered
// for pacing; anything else (text routed to egress) goes to the
// connection at once. Output of a fenced turn is refused.
func (pl *Playout) Send(ev eventabi.Event) error {
	if err := pl.cfg.Gate.Admit(&ev); err != nil {
		return err
	}
	if ev.Type != eventabi.TypeAudioFrame || ev.Audio == nil {
		pl.played(ev.TurnID, 1)
		return pl.cfg.Conn.Send(ev)
	}
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		return transports.ErrConnectionLost
	}
	if len(pl.buf)-pl.head >= pl.cfg.Frames {
		pl.full++
		pl.mu.Unlock()
		pl.played(ev.TurnID, 1) // dropped: its credit is not owed
		return ErrPlayoutFull
	}
	if pl.head > 0 && pl.head == len(pl.buf) {
		clear(pl.buf)
		pl.buf, pl.head = pl.buf[:0], 0
	}
	pl.buf = append(pl.buf, ev)
	first := pl.accepted != ev.TurnID
	pl.accepted = ev.TurnID
	pl.mu.Unlock()
	pl.pacer.activate(pl)
	if first {
		pl.signal(eventabi.TypeOutputAccepted, ev.TurnID)
	}
	return nil
}

// Fence drops everything buffered of turnID at once; the gate refuses
// the rest of it from now on, here and in the connection's writer.
func (pl *Playout) Fence(turnID, reason string) {
	pl.cfg.Gate.Fence(turnID, reason)
	pl.mu.Lock()
	kept := pl.buf[:pl.head]
	for _, ev := range pl.buf[pl.head:] {
		if ev.TurnID == turnID {
			pl.fencedOut++
			continue
		}
		kept = append(kept, ev)
	}
	clear(pl.buf[len(kept):])
	pl.buf = kept
	if pl.runTurn == turnID {
		pl.runTurn = ""
	}
	delete(pl.ended, turnID)
	rec := kernel.TimelineRecord{SessionID: pl.cfg.SessionID, TurnID: turnID, Type: "playout_end", Reason: "fenced",
		MonoNanos: pl.cfg.Clock.Now(), Attrs: map[string]string{"frames": "0", "source": "playout"}}
	if pl.lastTurn == turnID {
		rec.MonoNanos, rec.Attrs["frames"] = pl.lastAt, strconv.Itoa(pl.lastN)
	}
	pl.mu.Unlock()
	pl.cfg.Conn.Fence(turnID, reason)
	if pl.cfg.Timeline != nil {
		pl.cfg.Timeline.Append(rec)
	}
}

// EndOfTurn takes the kernel's EgressDone: once the last buffered frame
// of the turn has gone out (now, if none is left), the playout reports
// control.playback_done and the turn may commit.
func (pl *Playout) EndOfTurn(turnID string) {
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		return
	}
	if !pl.holds(turnID) {
		pl.mu.Unlock()
		pl.signal(eventabi.TypePlaybackDone, turnID)
		return
	}
	if pl.ended == nil {
		pl.ended = map[string]bool{}
	}
	pl.ended[turnID] = true
	pl.mu.Unlock()
}

// holds reports whether a frame of turn is buffered (pl.mu held).
func (pl *Playout) holds(turn string) bool {
	for _, ev := range pl.buf[pl.head:] {
		if ev.TurnID == turn {
			return true
		}
	}
	return false
}

// pump sends the frames due at now; it reports whether nothing is left.
func (pl *Playout) pump(now time.Time) (idle bool) {
	var startedTurn string
	sent := map[string]int{}
	pl.mu.Lock()
	for pl.head < len(pl.buf) && !pl.closed {
		ev := pl.buf[pl.head]
		if ev.TurnID != pl.runTurn {
			// A new run: a new turn's audio, or audio after the buffer
			// ran dry (the client's buffer ran dry too).
			pl.runTurn, pl.runStart, pl.runSent = ev.TurnID, now, 0
		}
		// Rounded, not floored: a tick that fires a little before its
		// slot (ticker jitter) must still send that slot's frame, or it
		// goes out a whole tick late.
		due := pl.cfg.PreRoll + 1 + int((now.Sub(pl.runStart)+pl.pacer.frame/2)/pl.pacer.frame)
		if pl.runSent >= due {
			break
		}
		if pl.cfg.Gate.Admit(&ev) != nil {
			pl.buf[pl.head] = eventabi.Event{}
			pl.head++
			pl.fencedOut++
			continue
		}
		if err := pl.cfg.Conn.Send(ev); err != nil {
			// The connection's queue is full (a slow client): keep the
			// frame and try again next tick; the connection decides
			// when the client is too slow to keep.
			pl.connFull++
			break
		}
		pl.buf[pl.head] = eventabi.Event{}
		pl.head++
		pl.runSent++
		pl.sent++
		sent[ev.TurnID]++
		if pl.lastTurn != ev.TurnID {
			pl.lastTurn, pl.lastN = ev.TurnID, 0
		}
		pl.lastN++
		pl.lastAt = pl.cfg.Clock.Now()
		if pl.started != ev.TurnID {
			pl.started = ev.TurnID
			startedTurn = ev.TurnID
		}
	}
	var done []string
	for turn := range pl.ended {
		if !pl.holds(turn) {
			delete(pl.ended, turn)
			done = append(done, turn)
		}
	}
	if pl.head == len(pl.buf) {
		// Ran dry: the next frame starts a new run (pre-roll again).
		pl.runTurn = ""
		clear(pl.buf)
		pl.buf, pl.head = pl.buf[:0], 0
		idle = true
	}
	pl.mu.Unlock()
	for turn, n := range sent {
		pl.played(turn, n)
	}
	if startedTurn != "" {
		pl.signal(eventabi.TypePlaybackStarted, startedTurn)
	}
	for _, turn := range done {
		pl.signal(eventabi.TypePlaybackDone, turn)
	}
	return idle
}

func (pl *Playout) idle() bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.head == len(pl.buf) || pl.closed
}

func (pl *Playout) played(turn string, n int) {
	if pl.cfg.Played != nil && n > 0 {
		pl.cfg.Played(turn, n)
	}
}

// signal posts an output signal of turn to the session.
func (pl *Playout) signal(typ eventabi.Type, turn string) {
	if pl.cfg.Post == nil {
		return
	}
	pl.cfg.Post(eventabi.Event{Type: typ, Lane: eventabi.LaneControl, SchemaVersion: eventabi.SchemaVersion, TurnID: turn})
}

// PlayoutStats are a playout's counters.
type PlayoutStats struct {
	Sent      uint64 // frames handed to the connection
	Buffered  int    // frames waiting
	Full      uint64 // frames refused: buffer full
	FencedOut uint64 // frames dropped by a fence
	ConnFull  uint64 // ticks the connection's queue had no room
}

// Stats returns the playout's counters.
func (pl *Playout) Stats() PlayoutStats {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return PlayoutStats{Sent: pl.sent, Buffered: len(pl.buf) - pl.head, Full: pl.full, FencedOut: pl.fencedOut, ConnFull: pl.connFull}
}

// Close drops what is buffered and leaves the pacer. Safe to call twice.
func (pl *Playout) Close() {
	pl.mu.Lock()
	pl.closed = true
	clear(pl.buf)
	pl.buf, pl.head = nil, 0
	pl.mu.Unlock()
	pl.pacer.remove(pl)
}
