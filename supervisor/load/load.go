package load

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/session"
	"github.com/rspp/rspp/transports"
)

// Options drive many concurrent sessions of scripted audio: each
// session plays the utterances in turn (starting at a different one per
// session), with Gap of silence after each, until Turns utterances were
// played or Stop is closed; then its last turn may finish (Settle) and it
// is closed. When ctx ends, sessions close at once.
type Options struct {
	Sessions   int
	Utterances [][]byte // 16 kHz mono s16le PCM clips
	Gap        time.Duration
	Turns      int  // utterances per session; 0: until ctx ends
	Realtime   bool // pace frames at 20 ms, like a microphone
	Prefix     string
	// Tenants, if set, are the sessions' tenants, taken in turn: session
	// i belongs to Tenants[i%len(Tenants)].
	Tenants  []string
	Timeline session.Timeline // receives every session's records (concurrently)
	Stop     <-chan struct{}  // closed: stop feeding (nil: never)
	// Stagger delays session i's first frame by i*Stagger, so that
	// sessions do not all speak at the same instant.
	Stagger time.Duration
	// Settle bounds how long a session waits for its last turn to end
	// after its audio stopped (default 30s).
	Settle time.Duration
	// Polite sessions do not speak over the agent: after an utterance and
	// its Gap, a session keeps sending silence until its turn has ended
	// (at most Settle) before it speaks again. Tests that require every
	// turn to commit use it, so that a slow machine shows as latency
	// rather than as barge-ins.
	Polite bool

	// Stats, if set, receives latency and egress lateness (loadstats.go).
	Stats *Stats
	// TurnOpened, if set, is called (concurrently) with the time from an
	// utterance's first frame's real-time slot to the session's turn-open
	// notice at its transport: VAD onset plus whatever delayed the
	// session on the way (its loop, admission).
	TurnOpened func(time.Duration)
	// Pacer, if set, plays each session's agent audio out in real time
	// (as a live transport does): turns end once their audio has played.
	Pacer *supervisor.Pacer

	wheel *session.Wheel // the runtime's timer facility: paces the frames
}

// Result says what happened to the sessions themselves.
type Result struct {
	Sessions int
	// Lost lists sessions that could not be opened or that stopped taking
	// input before the load closed them.
	Lost []string
	// OutputFrames counts agent audio frames delivered to the transport.
	OutputFrames int64
}

const frameBytes = 640 // 20 ms at 16 kHz mono s16le

// Run opens o.Sessions sessions on rt and feeds them until done. It
// returns when every session is closed.
func Run(ctx context.Context, rt *supervisor.Runtime, o Options) Result {
	if o.Gap <= 0 {
		o.Gap = time.Second
	}
	if o.Settle <= 0 {
		o.Settle = 30 * time.Second
	}
	if o.Prefix == "" {
		o.Prefix = "load"
	}
	o.wheel = rt.Wheel()
	res := Result{Sessions: o.Sessions}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for i := range o.Sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("%s-%d", o.Prefix, i+1)
			frames, err := runLoadSession(ctx, rt, o, id, i)
			mu.Lock()
			defer mu.Unlock()
			res.OutputFrames += frames
			if err != nil {
				res.Lost = append(res.Lost, fmt.Sprintf("%s: %v", id, err))
			}
		}()
	}
	wg.Wait()
	return res
}

func runLoadSession(ctx context.Context, rt *supervisor.Runtime, o Options, id string, idx int) (int64, error) {
	tenant := ""
	if len(o.Tenants) > 0 {
		tenant = o.Tenants[idx%len(o.Tenants)]
	}
	c := newLoadConn(ctx, transports.Route{SessionID: id, TenantID: tenant}, o, idx)
	res, err := rt.ServeConn(ctx, c, supervisor.ConnOptions{Timeline: o.Timeline, Settle: o.Settle, ShutdownReason: supervisor.CloseSessionEnd, Opened: c.opened, Pacer: o.Pacer})
	if err != nil {
		return 0, err
	}
	if res.EndedItself {
		return c.out.frames(), fmt.Errorf("session ended on its own")
	}
	if res.ConnErr != nil && ctx.Err() == nil {
		return c.out.frames(), res.ConnErr
	}
	return c.out.frames(), nil
}

// loadConn is the load's scripted transport (transports.Conn): its
// inbound frames are the utterances with gaps, fed in real time when
// Realtime; agent audio is only counted. Its input ends normally after
// its utterances (or Stop), so the last turn may settle.
type loadConn struct {
	*transports.Feed
	ctx   context.Context
	route transports.Route
	o     Options
	idx   int
	out   countingOutput
	clock connClock
	sess  chan *session.Session // the opened session, once
}

func newLoadConn(ctx context.Context, route transports.Route, o Options, idx int) *loadConn {
	return &loadConn{Feed: transports.NewFeed(), ctx: ctx, route: route, o: o, idx: idx, sess: make(chan *session.Session, 1),
		clock: connClock{stats: o.Stats, turnOpened: o.TurnOpened}}
}

func (c *loadConn) opened(s *session.Session) { c.sess <- s }

func (c *loadConn) Route() transports.Route { return c.route }
func (c *loadConn) Send(ev eventabi.Event) error {
	if ev.Type == eventabi.TypeAudioFrame {
		c.clock.out(ev.TurnID, time.Now())
	}
	return c.out.Send(ev)
}
func (c *loadConn) Fence(string, string) {}
func (c *loadConn) Notify(n transports.Notice) {
	if n.Kind == transports.NoticeTurn && n.State == "open" {
		c.clock.turnOpen(time.Now())
	}
}

// Bind starts the script once the session is open, after the session's
// stagger.
func (c *loadConn) Bind(transports.Binding) error {
	c.Start(c.ctx, func(ctx context.Context, emit func(eventabi.Event) error) error {
		var sess *session.Session
		select {
		case sess = <-c.sess:
		case <-ctx.Done():
			return nil
		}
		select {
		case <-c.o.wheel.At(time.Now().Add(time.Duration(c.idx) * c.o.Stagger)):
		case <-ctx.Done():
			return nil
		case <-c.o.Stop:
			return nil
		}
		return feed(ctx, loadTarget{emit: emit, sess: sess, clock: &c.clock}, c.o, c.idx)
	})
	return nil
}

// feedTarget is where feed sends frames, and whose turn it watches.
type feedTarget interface {
	Ingest(ev eventabi.Event) error
	ActiveTurn() string
	// Speaking says when an utterance's first frame is due; Spoke when
	// its last one was.
	Speaking(at time.Time)
	Spoke(at time.Time)
}

// loadTarget hands frames to a loadConn's feed.
type loadTarget struct {
	emit  func(eventabi.Event) error
	sess  *session.Session
	clock *connClock
}

func (t loadTarget) Speaking(at time.Time) { t.clock.speaking(at) }
func (t loadTarget) Spoke(at time.Time)    { t.clock.spoke(at) }

func (t loadTarget) Ingest(ev eventabi.Event) error { return t.emit(ev) }

func (t loadTarget) ActiveTurn() string { return t.sess.ActiveTurn() }

// feed plays utterances with silence between, with continuous media time.
func feed(ctx context.Context, sess feedTarget, o Options, idx int) error {
	silence := silenceOf(int(o.Gap/(20*time.Millisecond)) * frameBytes)
	quiet := silenceOf(frameBytes)
	start := time.Now()
	var n int64 // frames sent
	// Frames' audio headers come from slabs: one allocation per 64 frames
	// instead of one per frame (the kernel may hold a frame for a while,
	// so each gets its own header).
	var slab []eventabi.Audio
	// send ingests one frame, paced like a microphone when Realtime. It
	// returns done when ctx ended.
	send := func(frame []byte) (done bool, err error) {
		if ctx.Err() != nil {
			return true, nil
		}
		if o.Realtime {
			// One shared timer facility paces every session's frames
			// (no timer per frame).
			if at := start.Add(time.Duration(n) * 20 * time.Millisecond); time.Until(at) > 0 {
				select {
				case <-o.wheel.At(at):
				case <-ctx.Done():
					return true, nil
				}
			}
		}
		if len(slab) == 0 {
			slab = make([]eventabi.Audio, 64)
		}
		audio := &slab[0]
		slab = slab[1:]
		*audio = eventabi.Audio{PCM: frame, SampleRate: 16000, Channels: 1}
		ev := eventabi.Event{
			Type: eventabi.TypeAudioFrame, Lane: eventabi.LaneData, SchemaVersion: eventabi.SchemaVersion,
			MediaNanos: n * int64(20*time.Millisecond),
			Audio:      audio,
		}
		n++
		if o.Stats != nil {
			o.Stats.FramesIn.Add(1)
		}
		if err := sess.Ingest(ev); err != nil {
			if errors.Is(err, session.ErrClosed) {
				return false, err
			}
			return false, fmt.Errorf("frame %d: %w", n, err)
		}
		return false, nil
	}
	for turn := 0; o.Turns == 0 || turn < o.Turns; turn++ {
		if len(o.Utterances) == 0 {
			return errors.New("no utterances")
		}
		select {
		case <-o.Stop: // stop between utterances, never inside one
			return nil
		default:
		}
		if o.Polite && turn > 0 {
			for deadline := time.Now().Add(o.Settle); sess.ActiveTurn() != "" && time.Now().Before(deadline); {
				if done, err := send(quiet); done || err != nil {
					return err
				}
			}
		}
		clip := o.Utterances[(idx+turn)%len(o.Utterances)]
		sess.Speaking(start.Add(time.Duration(n) * 20 * time.Millisecond))
		for i, pcm := range [][]byte{clip, silence} {
			for off := 0; off+frameBytes <= len(pcm); off += frameBytes {
				if done, err := send(pcm[off : off+frameBytes]); done || err != nil {
					return err
				}
			}
			if i == 0 {
				sess.Spoke(start.Add(time.Duration(n) * 20 * time.Millisecond))
			}
		}
	}
	return nil
}

// countingOutput is a transport that only counts the agent's audio.
type countingOutput struct {
	mu sync.Mutex
	n  int64
}

func (c *countingOutput) Send(ev eventabi.Event) error {
	if ev.Type == eventabi.TypeAudioFrame {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
	return nil
}

func (c *countingOutput) Fence(string, string) {}

func (c *countingOutput) frames() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Terminals is what the timeline says about turn lifecycles.
type Terminals struct {
	Sessions     int            // sessions with a session_open record
	Closed       int            // sessions with a session_close record
	Opened       int            // turns with a turn_open record
	Committed    int            // turns whose terminal is turn_commit
	Aborted      int            // turns whose terminal is turn_abort
	AbortReasons map[string]int // reason -> turns
	// Wrong lists turns (session/turn) that had other than exactly one
	// terminal, or a terminal without a turn_open (a TerminalCounter keeps
	// the first 100); WrongCount counts them all.
	Wrong      []string
	WrongCount int
}

// CountTerminals counts turn_open against turn_commit/turn_abort per turn
// from the records themselves, so it can disagree with any counter.
func CountTerminals(recs []kernel.TimelineRecord) Terminals {
	type turn struct {
		open, commit, abort int
	}
	t := Terminals{AbortReasons: map[string]int{}}
	turns := map[string]*turn{}
	var order []string
	get := func(k string) *turn {
		x := turns[k]
		if x == nil {
			x = &turn{}
			turns[k] = x
			order = append(order, k)
		}
		return x
	}
	for _, r := range recs {
		k := r.SessionID + "/" + r.TurnID
		switch r.Type {
		case "session_open":
			t.Sessions++
		case "session_close":
			t.Closed++
		case "turn_open":
			get(k).open++
		case "turn_commit":
			get(k).commit++
		case "turn_abort":
			get(k).abort++
			t.AbortReasons[AbortClass(r.Reason)]++
		}
	}
	for _, k := range order {
		x := turns[k]
		t.Opened += x.open
		switch {
		case x.open != 1 || x.commit+x.abort != 1:
			t.Wrong = append(t.Wrong, fmt.Sprintf("%s: %d open, %d commit, %d abort", k, x.open, x.commit, x.abort))
			t.WrongCount++
		case x.commit == 1:
			t.Committed++
		default:
			t.Aborted++
		}
	}
	return t
}

// AbortClass shortens an abort reason to its class for reports: the text
// before the first ':' after the node name ("node tts failed: ...").
func AbortClass(reason string) string {
	for _, kind := range []struct{ needle, class string }{
		{"timed out", "node timeout"}, {"timeout", "node timeout"}, {") hung:", "node hung (killed)"},
		{"signal:", "node crashed (signal)"}, {"exit status", "node crashed (exit)"}, {"resource limit", "resource limit"},
		{"circuit open", "provider circuit open"}, {"unavailable", "node unavailable"}, {"protocol", "node protocol"},
		{"crashed", "node crashed"}, {"stream broken", "node crashed (stream)"},
	} {
		if strings.Contains(reason, kind.needle) {
			return kind.class
		}
	}
	return reason
}

// silenceOf returns n bytes of silence shared by every session (read
// only: frames are sliced from it and never written), instead of one
// gap's worth (64 KiB for 2 s) per session.
func silenceOf(n int) []byte {
	silenceMu.Lock()
	defer silenceMu.Unlock()
	if len(silenceBuf) < n {
		silenceBuf = make([]byte, n)
	}
	return silenceBuf[:n:n]
}

var (
	silenceMu  sync.Mutex
	silenceBuf []byte
)
