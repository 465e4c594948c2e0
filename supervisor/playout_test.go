package supervisor

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/kernel/fence"
	"github.com/rspp/rspp/supervisor/session"
	"github.com/rspp/rspp/transports"
)

// fakeConn is a transports.Conn that logs, in order, every frame it is
// sent and every fence; full makes Send refuse like a full send queue.
type fakeConn struct {
	mu     sync.Mutex
	log    []string // "frame:<turn>" or "fence:<turn>"
	full   bool
	inbox  chan eventabi.Event
	closed bool
}

func newFakeConn() *fakeConn { return &fakeConn{inbox: make(chan eventabi.Event)} }

func (f *fakeConn) Route() transports.Route        { return transports.Route{SessionID: "fake"} }
func (f *fakeConn) Bind(transports.Binding) error  { return nil }
func (f *fakeConn) Inbound() <-chan eventabi.Event { return f.inbox }
func (f *fakeConn) Notify(transports.Notice)       {}
func (f *fakeConn) Refuse(error)                   {}
func (f *fakeConn) Close(string)                   { f.mu.Lock(); f.closed = true; f.mu.Unlock() }
func (f *fakeConn) Err() error                     { return nil }
func (f *fakeConn) setFull(v bool)                 { f.mu.Lock(); f.full = v; f.mu.Unlock() }
func (f *fakeConn) Fence(turn, _ string)           { f.add("fence:" + turn) }
func (f *fakeConn) add(s string)                   { f.mu.Lock(); f.log = append(f.log, s); f.mu.Unlock() }
func (f *fakeConn) entries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}
func (f *fakeConn) Send(ev eventabi.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.full {
		return transports.ErrQueueFull
	}
	f.log = append(f.log, "frame:"+ev.TurnID)
	return nil
}

func (f *fakeConn) frames(turn string) int {
	n := 0
	for _, e := range f.entries() {
		if e == "frame:"+turn {
			n++
		}
	}
	return n
}

// fakeMono is a settable kernel clock.
type fakeMono struct{ ns int64 }

func (f *fakeMono) Now() int64 { return f.ns }

// fakePosts records what a playout posts back to its session.
type fakePosts struct {
	mu  sync.Mutex
	evs []eventabi.Event
}

func (p *fakePosts) post(ev eventabi.Event) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.evs = append(p.evs, ev)
	return true
}

func (p *fakePosts) types(turn string) []eventabi.Type {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []eventabi.Type
	for _, ev := range p.evs {
		if ev.TurnID == turn {
			out = append(out, ev.Type)
		}
	}
	return out
}

func agentFrame(turn string) eventabi.Event {
	return eventabi.Event{Type: eventabi.TypeAudioFrame, TurnID: turn, Audio: &eventabi.Audio{PCM: make([]byte, 640), SampleRate: 16000, Channels: 1}}
}

type playoutRig struct {
	pacer *Pacer
	conn  *fakeConn
	posts *fakePosts
	gate  *fence.Gate
	pl    *Playout
	t0    time.Time
}

func newPlayoutRig(frames int) *playoutRig {
	r := &playoutRig{pacer: newPacer(), conn: newFakeConn(), posts: &fakePosts{}, gate: fence.NewGate(0), t0: time.Unix(1000, 0)}
	r.pl = r.pacer.NewPlayout(PlayoutConfig{Conn: r.conn, Gate: r.gate, Post: r.posts.post, Frames: frames})
	return r
}

func (r *playoutRig) at(d time.Duration) { r.pacer.step(r.t0.Add(d)) }

// Frames go out at one per 20 ms of the pacer's clock after a pre-roll
// of DefaultPreRoll (+1 for the frame due at the start), never faster.
func TestPlayoutPacesFramesAfterPreRoll(t *testing.T) {
	r := newPlayoutRig(0)
	for range 10 {
		if err := r.pl.Send(agentFrame("t1")); err != nil {
			t.Fatal(err)
		}
	}
	want := DefaultPreRoll + 1
	r.at(0)
	if got := r.conn.frames("t1"); got != want {
		t.Fatalf("at start: %d frames out, want %d", got, want)
	}
	r.at(9 * time.Millisecond) // before the next slot: nothing more is due
	if got := r.conn.frames("t1"); got != want {
		t.Fatalf("at 9ms: %d frames out, want %d", got, want)
	}
	r.at(19 * time.Millisecond) // a jittery tick just before its slot sends it
	want++
	if got := r.conn.frames("t1"); got != want {
		t.Fatalf("at 19ms: %d frames out, want %d", got, want)
	}
	want--
	for k := 1; k <= 6; k++ {
		r.at(time.Duration(k) * FrameDuration)
		if got := r.conn.frames("t1"); got != want+k {
			t.Fatalf("at %d ms: %d frames out, want %d", k*20, got, want+k)
		}
	}
	// Audio after the buffer ran dry starts a new run, with its pre-roll.
	r.pl.Send(agentFrame("t1"))
	r.pl.Send(agentFrame("t1"))
	r.at(9 * FrameDuration)
	if got := r.conn.frames("t1"); got != 12 {
		t.Fatalf("after late tick: %d frames out, want 12", got)
	}
	if r.pacer.Active() != 0 {
		t.Fatalf("drained playout still active: %d", r.pacer.Active())
	}
}

// The fence drops every buffered frame of the turn at once; the turn's
// later frames are refused by the gate; the connection is fenced after
// its last frame of the turn; the next turn's audio plays.
func TestPlayoutFenceDropsTurnAtOnce(t *testing.T) {
	r := newPlayoutRig(0)
	tl := &session.Collector{}
	clk := &fakeMono{ns: 5}
	r.pl.cfg.Timeline, r.pl.cfg.SessionID, r.pl.cfg.Clock = tl, "s", clk
	for range 20 {
		r.pl.Send(agentFrame("t1"))
	}
	r.at(0)
	before := r.conn.frames("t1")
	clk.ns = 99
	r.pl.Fence("t1", "barge_in")
	recs := tl.Records()
	if len(recs) != 1 || recs[0].Type != "playout_end" || recs[0].Reason != "fenced" || recs[0].TurnID != "t1" ||
		recs[0].MonoNanos != 5 || recs[0].Attrs["frames"] != strconv.Itoa(before) {
		t.Fatalf("playout_end: %+v (sent %d)", recs, before)
	}
	if st := r.pl.Stats(); st.Buffered != 0 || st.FencedOut != uint64(20-before) {
		t.Fatalf("after fence: %+v (sent %d before)", st, before)
	}
	if err := r.pl.Send(agentFrame("t1")); !errors.Is(err, kernel.ErrFenced) {
		t.Fatalf("send after fence: %v", err)
	}
	if err := r.gate.Admit(&eventabi.Event{TurnID: "t1"}); !errors.Is(err, kernel.ErrFenced) {
		t.Fatal("the session's gate is not fenced")
	}
	r.pl.Send(agentFrame("t2"))
	for k := range 5 {
		r.at(time.Duration(k+1) * FrameDuration)
	}
	log := r.conn.entries()
	fenceAt := -1
	for i, e := range log {
		switch {
		case e == "fence:t1":
			fenceAt = i
		case e == "frame:t1" && fenceAt >= 0:
			t.Fatalf("frame of t1 after its fence: %v", log)
		}
	}
	if fenceAt < 0 || r.conn.frames("t1") != before || r.conn.frames("t2") != 1 {
		t.Fatalf("log %v", log)
	}
}

// output_accepted when the first frame is taken, playback_started when
// it goes out, playback_done once the turn's last frame went out after
// EndOfTurn — and at once for a turn with nothing buffered.
func TestPlayoutSignals(t *testing.T) {
	r := newPlayoutRig(0)
	for range 6 {
		r.pl.Send(agentFrame("t1"))
	}
	if got := r.posts.types("t1"); len(got) != 1 || got[0] != eventabi.TypeOutputAccepted {
		t.Fatalf("after send: %v", got)
	}
	r.pl.EndOfTurn("t1")
	r.at(0)
	if got := r.posts.types("t1"); len(got) != 2 || got[1] != eventabi.TypePlaybackStarted {
		t.Fatalf("after first tick: %v", got)
	}
	r.at(FrameDuration)
	if got := r.posts.types("t1"); len(got) != 2 {
		t.Fatalf("playback_done with a frame still buffered: %v", got)
	}
	r.at(2 * FrameDuration)
	if got := r.posts.types("t1"); len(got) != 3 || got[2] != eventabi.TypePlaybackDone {
		t.Fatalf("after the last frame: %v", got)
	}
	r.pl.EndOfTurn("t2")
	if got := r.posts.types("t2"); len(got) != 1 || got[0] != eventabi.TypePlaybackDone {
		t.Fatalf("empty turn: %v", got)
	}
	// A fenced turn never reports playback_done.
	r.pl.Send(agentFrame("t3"))
	r.pl.EndOfTurn("t3")
	r.pl.Fence("t3", "barge_in")
	r.at(3 * FrameDuration)
	for _, ty := range r.posts.types("t3") {
		if ty == eventabi.TypePlaybackDone || ty == eventabi.TypePlaybackStarted {
			t.Fatalf("fenced turn reported %s", ty)
		}
	}
}

// A full playout refuses (typed) rather than growing; a connection whose
// queue is full keeps its frame in the playout: nothing is lost.
func TestPlayoutBounds(t *testing.T) {
	r := newPlayoutRig(4)
	for range 4 {
		if err := r.pl.Send(agentFrame("t1")); err != nil {
			t.Fatal(err)
		}
	}
	err := r.pl.Send(agentFrame("t1"))
	if !errors.Is(err, ErrPlayoutFull) || !errors.Is(err, transports.ErrQueueFull) {
		t.Fatalf("full: %v", err)
	}
	r.conn.setFull(true)
	r.at(0)
	if r.conn.frames("t1") != 0 || r.pl.Stats().Buffered != 4 {
		t.Fatalf("conn full: %+v", r.pl.Stats())
	}
	r.conn.setFull(false)
	r.at(FrameDuration)
	if got := r.conn.frames("t1"); got != 4 {
		t.Fatalf("after the conn drained: %d frames", got)
	}
}

// One pacer serves many sessions; a session with nothing to play leaves
// its active set.
func TestPacerSharedAcrossPlayouts(t *testing.T) {
	p := newPacer()
	var conns []*fakeConn
	for range 50 {
		c := newFakeConn()
		conns = append(conns, c)
		pl := p.NewPlayout(PlayoutConfig{Conn: c, PreRoll: -1})
		pl.Send(agentFrame("t"))
		pl.Send(agentFrame("t"))
	}
	if p.Active() != 50 {
		t.Fatalf("active %d", p.Active())
	}
	t0 := time.Unix(0, 0)
	p.step(t0)
	for i, c := range conns {
		if c.frames("t") != 1 {
			t.Fatalf("conn %d: %d frames at start", i, c.frames("t"))
		}
	}
	p.step(t0.Add(FrameDuration))
	if p.Active() != 0 {
		t.Fatalf("active after drain %d", p.Active())
	}
	p.Close()
	p.Close()
}

// The running pacer's goroutine stops on Close.
func TestPacerCloseStopsGoroutine(t *testing.T) {
	p := NewPacer()
	c := newFakeConn()
	pl := p.NewPlayout(PlayoutConfig{Conn: c})
	pl.Send(agentFrame("t"))
	deadline := time.Now().Add(10 * time.Second)
	for c.frames("t") == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if c.frames("t") != 1 {
		t.Fatal("running pacer sent nothing")
	}
	p.Close()
	p.Close()
	select {
	case <-p.done:
	default:
		t.Fatal("pacer goroutine still running after Close")
	}
}

// Every frame sent on, or refused as over the bound, is reported played
// (the kernel's egress credit); buffered ones are not, yet.
func TestPlayoutReportsPlayedCredit(t *testing.T) {
	r := newPlayoutRig(6)
	var mu sync.Mutex
	played := map[string]int{}
	r.pl.cfg.Played = func(turn string, n int) { mu.Lock(); played[turn] += n; mu.Unlock() }
	for range 7 { // the 7th is over the bound
		r.pl.Send(agentFrame("t1"))
	}
	mu.Lock()
	if played["t1"] != 1 {
		t.Fatalf("before any tick: %v", played)
	}
	mu.Unlock()
	r.at(0)
	mu.Lock()
	if played["t1"] != 1+DefaultPreRoll+1 {
		t.Fatalf("after the first tick: %v", played)
	}
	mu.Unlock()
	r.at(2 * FrameDuration)
	mu.Lock()
	defer mu.Unlock()
	if played["t1"] != 7 {
		t.Fatalf("after drain: %v", played)
	}
}
