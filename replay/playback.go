package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/kernel/record"
	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/session"
)

// Playback runs each recorded session's ingress through the real runner
// and kernel under a (possibly changed) config, with each provider
// replaced by its recorded outputs: no plugin process is started for
// them. A provider whose config digest (supervisor.ProviderDigests)
// differs from the recording's header runs for real, as its outputs would
// differ. The report compares, per turn, decisions and outputs with the
// recording.

// PlaybackOptions tune a playback.
type PlaybackOptions struct {
	Logger hclog.Logger
	// Live names providers to run for real even if unchanged.
	Live []string
	// IdleWait bounds how long playback waits for a turn to end before it
	// feeds the next utterance (default 30s).
	IdleWait time.Duration
	// Timeline, if set, receives the played sessions' records.
	Timeline session.Timeline
}

// TurnDiff is one turn whose decisions or outputs changed.
type TurnDiff struct {
	Session string
	Turn    int // ordinal of the turn in its session, from 1
	Lines   []string
}

// PlaybackReport is the outcome of a playback.
type PlaybackReport struct {
	Sessions, Turns int
	Replayed, Live  []string // providers served from the recording / run for real
	Changed         []TurnDiff
	// Unrecorded counts invocations playback had no recording for (they
	// fail as unavailable).
	Unrecorded int
}

// Write prints the report: the changed turns, then a summary.
func (r PlaybackReport) Write(w io.Writer) {
	for _, d := range r.Changed {
		fmt.Fprintf(w, "changed: session %s turn %d\n", d.Session, d.Turn)
		for _, l := range d.Lines {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	live := "none"
	if len(r.Live) > 0 {
		live = strings.Join(r.Live, ",")
	}
	fmt.Fprintf(w, "playback: %d sessions, %d turns; providers from the recording: %s; run for real: %s; unrecorded invocations: %d\n",
		r.Sessions, r.Turns, strings.Join(r.Replayed, ","), live, r.Unrecorded)
	fmt.Fprintf(w, "playback: %d turns changed\n", len(r.Changed))
}

// Playback plays the timeline back under cfg.
func Playback(ctx context.Context, tl *Timeline, cfg *config.Config, o PlaybackOptions) (PlaybackReport, error) {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.IdleWait <= 0 {
		o.IdleWait = 30 * time.Second
	}
	var rep PlaybackReport
	live := map[string]bool{}
	for _, p := range o.Live {
		live[p] = true
	}
	now := supervisor.ProviderDigests(cfg)
	for _, name := range cfg.ProviderNames() {
		if tl.Header != nil {
			if was, ok := tl.Header.Attrs["provider."+name]; !ok || was != now[name] {
				live[name] = true
			}
		}
		if live[name] {
			rep.Live = append(rep.Live, name)
		} else {
			rep.Replayed = append(rep.Replayed, name)
		}
	}
	var rt *supervisor.Runtime
	if len(rep.Live) > 0 {
		lc, err := liveConfig(cfg, live)
		if err != nil {
			return rep, err
		}
		rt, err = supervisor.Start(ctx, lc, supervisor.Options{Logger: o.Logger})
		if err != nil {
			return rep, fmt.Errorf("playback: starting the providers that run for real (%v): %w", rep.Live, err)
		}
		defer rt.Close()
	}
	for _, s := range tl.Sessions {
		rec := index(s)
		if !rec.recorded {
			continue // not recorded at level full: nothing to play
		}
		rep.Sessions++
		played, err := playSession(ctx, rec, cfg, rt, live, o)
		if err != nil {
			return rep, fmt.Errorf("playback: session %s: %w", s.ID, err)
		}
		rep.Unrecorded += played.unrecorded
		n := max(len(rec.turns), len(played.turns))
		rep.Turns += n
		for i := 0; i < n; i++ {
			var a, b turnSummary
			if i < len(rec.turns) {
				a = *rec.turns[i]
			}
			if i < len(played.turns) {
				b = *played.turns[i]
			}
			if lines := a.diff(b); len(lines) > 0 {
				rep.Changed = append(rep.Changed, TurnDiff{Session: s.ID, Turn: i + 1, Lines: lines})
			}
		}
	}
	return rep, nil
}

// liveConfig is cfg with only the providers that run for real (a
// pipeline of them alone, so that validation and pool start see only
// them).
func liveConfig(cfg *config.Config, live map[string]bool) (*config.Config, error) {
	lc := *cfg
	lc.Providers = map[string]*config.Provider{}
	lc.Pipeline = config.Pipeline{}
	for name, p := range cfg.Providers {
		if live[name] {
			lc.Providers[name] = p
		}
	}
	for _, n := range cfg.Pipeline.Nodes {
		if live[cfg.Resolve(n.Provider)] {
			lc.Pipeline.Nodes = append(lc.Pipeline.Nodes, n)
			lc.Pipeline.Edges = append(lc.Pipeline.Edges, config.Edge{From: kernel.Ingress, To: n.ID}, config.Edge{From: n.ID, To: kernel.Egress})
		}
	}
	if len(lc.Providers) == 0 {
		return nil, fmt.Errorf("playback: no provider to run for real")
	}
	return &lc, nil
}

// turnSummary is what a turn decided and produced. Decisions are kept
// per node, in order (the order between nodes failing at about the same
// time is timing, not a decision), and the turn's terminal.
type turnSummary struct {
	decisions map[string][]string // node -> its failure decisions
	terminal  string
	outputs   map[string][]string // node -> outputs (text, or audio as frames/bytes)
}

func newTurn() *turnSummary {
	return &turnSummary{decisions: map[string][]string{}, outputs: map[string][]string{}}
}

func (t *turnSummary) decide(r kernel.TimelineRecord) {
	switch r.Type {
	case "turn_commit", "turn_abort":
		t.terminal = r.Type + " " + r.Reason
	case "invocation_fail":
		t.decisions[r.NodeID] = append(t.decisions[r.NodeID], r.Attrs["decision"]+" ("+r.Attrs["kind"]+")")
	case "provider_switch":
		t.decisions[r.NodeID] = append(t.decisions[r.NodeID], "switch "+r.Attrs["from"]+" -> "+r.Attrs["to"])
	case "branch_fallback":
		t.decisions[r.NodeID] = append(t.decisions[r.NodeID], "branch "+r.Attrs["branch"])
	}
}

func (t turnSummary) decisionLine() string {
	nodes := make([]string, 0, len(t.decisions))
	for n := range t.decisions {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	parts := make([]string, 0, len(nodes)+1)
	for _, n := range nodes {
		parts = append(parts, n+": "+strings.Join(t.decisions[n], ", "))
	}
	if t.terminal != "" {
		parts = append(parts, t.terminal)
	}
	return strings.Join(parts, "; ")
}

func (t *turnSummary) output(node string, ev eventabi.Event) {
	switch {
	case ev.Text != nil && (ev.Type == eventabi.TypeTextFinal || ev.Type == eventabi.TypeTranscriptFinal):
		t.outputs[node] = append(t.outputs[node], string(ev.Type)+": "+strconv.Quote(ev.Text.Text))
	case ev.Audio != nil:
		// Audio in one summary line per node: frames and bytes.
		o := t.outputs[node]
		frames, bytes := 0, 0
		if len(o) == 1 && strings.HasPrefix(o[0], "audio: ") {
			fmt.Sscanf(o[0], "audio: %d frames %d bytes", &frames, &bytes)
			o = o[:0]
		}
		t.outputs[node] = append(o, fmt.Sprintf("audio: %d frames %d bytes", frames+1, bytes+len(ev.Audio.PCM)))
	}
}

func (t turnSummary) diff(o turnSummary) []string {
	var lines []string
	if a, b := t.decisionLine(), o.decisionLine(); a != b {
		lines = append(lines, "decisions: - "+orNone(a), "decisions: + "+orNone(b))
	}
	nodes := map[string]bool{}
	for n := range t.outputs {
		nodes[n] = true
	}
	for n := range o.outputs {
		nodes[n] = true
	}
	keys := make([]string, 0, len(nodes))
	for n := range nodes {
		keys = append(keys, n)
	}
	sort.Strings(keys)
	for _, n := range keys {
		if a, b := strings.Join(t.outputs[n], " | "), strings.Join(o.outputs[n], " | "); a != b {
			lines = append(lines, n+": - "+orNone(a), n+": + "+orNone(b))
		}
	}
	return lines
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// recordedInv is one recorded invocation: what its provider produced and
// how it ended.
type recordedInv struct {
	turn    int
	node    string
	outputs []eventabi.Event
	// after[i]: how many of its inputs the invocation had taken when it
	// produced outputs[i]; endAfter likewise for its end. Playback gives
	// each output once the call has had as many inputs (or its input
	// closed): the recorded causality, not the recorded timing.
	after    []int
	end      *kernel.RecordedError
	ended    bool
	endAfter int
	taken    int // while indexing
}

type invKey struct {
	turn    int
	node    string
	attempt int
}

// ingress is one recorded transport input, with whether the recorded
// session had finished a turn since the previous one (playback waits for
// its own turn to end there).
type ingress struct {
	ev      eventabi.Event
	closed  int // turns the recorded session had closed before it
	outputs int // node outputs it had accepted before it
}

type recording struct {
	id       string
	tenant   string
	recorded bool
	reason   string // session_close reason
	turns    []*turnSummary
	invs     map[invKey]*recordedInv
	bindings map[string]kernel.Binding
	ingress  []ingress
}

// index gathers what playback needs from one recorded session.
func index(s *Session) *recording {
	rec := &recording{id: s.ID, invs: map[invKey]*recordedInv{}, bindings: map[string]kernel.Binding{}}
	turnNo := map[string]int{}
	byInv := map[string]*recordedInv{}
	var cur *turnSummary
	closed, outputs := 0, 0
	for _, l := range s.Lines {
		r := l.Rec
		if in := r.Input; in != nil {
			rec.recorded = rec.recorded || in.Kind == kernel.InputOpen
			for _, a := range in.Oracle {
				if a.Kind == "binding" {
					var ba struct {
						Binding kernel.Binding `json:"binding"`
						OK      bool           `json:"ok"`
					}
					if json.Unmarshal(a.Value, &ba) == nil && ba.OK {
						if _, seen := rec.bindings[a.Key]; !seen {
							rec.bindings[a.Key] = ba.Binding
						}
					}
				}
			}
			switch in.Kind {
			case kernel.InputIngest:
				if in.Event == nil {
					continue
				}
				switch in.Event.Type {
				case eventabi.TypePlaybackDone, eventabi.TypeOutputAccepted, eventabi.TypePlaybackStarted:
					continue // the transport's own signals: playback's transport makes its own
				}
				rec.ingress = append(rec.ingress, ingress{ev: *in.Event, closed: closed, outputs: outputs})
			case kernel.InputNodeEvent:
				if in.Verdict == "" {
					outputs++
				}
				if ri := byInv[in.Inv]; ri != nil && in.Event != nil && in.Verdict != kernel.ErrQueueFull.Error() {
					ri.outputs = append(ri.outputs, *in.Event)
					ri.after = append(ri.after, ri.taken)
				}
			case kernel.InputNodeEnd:
				if ri := byInv[in.Inv]; ri != nil && !ri.ended {
					ri.ended, ri.end, ri.endAfter = true, in.Err, ri.taken
				}
			case kernel.InputTaken:
				if ri := byInv[in.Inv]; ri != nil {
					ri.taken += in.Count
				}
			}
			continue
		}
		switch r.Type {
		case "session_open":
			rec.tenant = r.Attrs["tenant_id"]
		case "session_close":
			rec.reason = r.Reason
		case "turn_open":
			cur = newTurn()
			rec.turns = append(rec.turns, cur)
			turnNo[r.TurnID] = len(rec.turns)
		case "invocation_start":
			attempt, _ := strconv.Atoi(r.Attrs["attempt"])
			ri := &recordedInv{turn: turnNo[r.TurnID], node: r.NodeID}
			byInv[r.InvocationID] = ri
			rec.invs[invKey{turnNo[r.TurnID], r.NodeID, attempt}] = ri
		case "turn_close":
			closed++
		}
		if n := turnNo[r.TurnID]; n > 0 {
			rec.turns[n-1].decide(r)
		}
	}
	// The outputs the kernel accepted, per turn: from the recorded node
	// events with no verdict.
	for _, l := range s.Lines {
		in := l.Rec.Input
		if in == nil || in.Kind != kernel.InputNodeEvent || in.Verdict != "" || in.Event == nil {
			continue
		}
		if ri := byInv[in.Inv]; ri != nil && ri.turn > 0 {
			rec.turns[ri.turn-1].output(ri.node, *in.Event)
		}
	}
	return rec
}

// played is what the playback of one session produced.
type played struct {
	mu         sync.Mutex
	turns      []*turnSummary
	turnNo     map[string]int
	opens      map[[2]string]int // (turn id, node) -> opens so far
	unrecorded int
	tee        session.Timeline
	closed     int           // turns closed
	outputs    int           // node outputs accepted
	closeWake  chan struct{} // closed and replaced at every turn_close and output
}

func (p *played) Append(r kernel.TimelineRecord) {
	if p.tee != nil {
		p.tee.Append(r)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.Type == "turn_open" {
		p.turns = append(p.turns, newTurn())
		p.turnNo[r.TurnID] = len(p.turns)
	}
	if n := p.turnNo[r.TurnID]; n > 0 {
		p.turns[n-1].decide(r)
	}
	if r.Type == "turn_close" {
		p.closed++
		p.notify()
	}
}

func (p *played) notify() {
	close(p.closeWake)
	p.closeWake = make(chan struct{})
}

// progress is how many turns closed and outputs were accepted, and a
// channel closed at the next of either.
func (p *played) progress() (int, int, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed, p.outputs, p.closeWake
}

func (p *played) observe(node string, ev eventabi.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := p.turnNo[ev.TurnID]; n > 0 {
		p.turns[n-1].output(node, ev)
	}
	p.outputs++
	p.notify()
}

func playSession(ctx context.Context, rec *recording, cfg *config.Config, rt *supervisor.Runtime, live map[string]bool, o PlaybackOptions) (*played, error) {
	pl := &played{turnNo: map[string]int{}, opens: map[[2]string]int{}, tee: o.Timeline, closeWake: make(chan struct{})}
	pools := &playbackPools{rec: rec, pl: pl, rt: rt}
	binds := &playbackBindings{rec: rec, rt: rt, live: live}
	s, err := session.Open(session.Config{
		Kernel: kernel.SessionConfig{SessionID: rec.id, TenantID: rec.tenant, Epoch: 1, Graph: cfg.Graph(), Bindings: binds,
			VAD: cfg.KernelVAD(), UnknownEventPolicy: cfg.Gateway.UnknownEvents},
		Pools: pools, Output: discard{}, Timeline: pl, Observe: pl.observe, Tick: time.Duration(cfg.Runtime.TickInterval),
		Recording: playedLevel(o.Timeline),
	})
	if err != nil {
		return nil, err
	}
	// Before each ingress event the recorded session had closed some
	// turns and accepted some node outputs: playback waits (bounded) until
	// it has as well, so that the user speaks (or barges in) at the same
	// point of the conversation as in the recording, however fast the
	// replayed providers answer.
	const outputWait = 2 * time.Second
	waitFor := func(in ingress) error {
		closedBy := time.NewTimer(o.IdleWait)
		defer closedBy.Stop()
		outputsBy := time.NewTimer(outputWait)
		defer outputsBy.Stop()
		needOutputs := true
		for {
			closed, outputs, wake := pl.progress()
			if closed >= in.closed && (!needOutputs || outputs >= in.outputs) {
				return nil
			}
			select {
			case <-wake:
			case <-outputsBy.C:
				needOutputs = false // the played session produced fewer: it diverged
			case <-closedBy.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	last := ingress{}
	for _, in := range rec.ingress {
		if in.closed != last.closed || in.outputs != last.outputs {
			if err := waitFor(in); err != nil {
				s.Close("playback_cancelled")
				return nil, err
			}
		}
		last = in
		if err := s.Ingest(in.ev); err == session.ErrClosed {
			break
		}
	}
	if err := waitFor(ingress{closed: len(rec.turns)}); err != nil {
		s.Close("playback_cancelled")
		return nil, err
	}
	reason := rec.reason
	if reason == "" {
		reason = "playback_end"
	}
	s.Close(reason)
	pl.mu.Lock()
	pl.unrecorded = pools.unrecorded
	pl.mu.Unlock()
	return pl, nil
}

// playedLevel records the played sessions' inputs only if their
// timeline goes somewhere.
func playedLevel(tl session.Timeline) record.Policy {
	if tl == nil {
		return record.Policy{Level: kernel.LevelControl}
	}
	return record.Policy{Level: kernel.LevelFull}
}

type discard struct{}

func (discard) Send(eventabi.Event) error { return nil }
func (discard) Fence(string, string)      {}

// playbackBindings binds each provider to its recorded binding (version,
// declared types) on a replay pool, or to the live runtime's.
type playbackBindings struct {
	rec  *recording
	rt   *supervisor.Runtime
	live map[string]bool
}

const replayPool = "replay:"

func (b *playbackBindings) Binding(p string) (kernel.Binding, bool) {
	if b.live[p] && b.rt != nil {
		return b.rt.BindingFor(p, b.rec.tenant, b.rec.id)
	}
	bd, ok := b.rec.bindings[p]
	if !ok {
		bd = kernel.Binding{Provider: p, Version: "unrecorded"}
	}
	bd.Pool = replayPool + p
	return bd, true
}

// playbackPools serves replay pools from the recording and hands live
// ones to the runtime.
type playbackPools struct {
	rec        *recording
	pl         *played
	rt         *supervisor.Runtime
	mu         sync.Mutex
	unrecorded int
}

func (p *playbackPools) Open(pool string, req externalnode.OpenRequest, avoid []string, h externalnode.Handler) (session.Call, error) {
	if !strings.HasPrefix(pool, replayPool) {
		if p.rt == nil {
			return nil, fmt.Errorf("%w: no live runtime for pool %s", kernel.ErrNodeUnavailable, pool)
		}
		return p.rt.Open(pool, req, avoid, h)
	}
	p.pl.mu.Lock()
	turn := p.pl.turnNo[req.TurnID]
	k := [2]string{req.TurnID, req.NodeID}
	attempt := p.pl.opens[k]
	p.pl.opens[k]++
	p.pl.mu.Unlock()
	ri := p.rec.invs[invKey{turn, req.NodeID, attempt}]
	if ri == nil {
		p.mu.Lock()
		p.unrecorded++
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: no recorded output of node %s in turn %d attempt %d", kernel.ErrNodeUnavailable, req.NodeID, turn, attempt)
	}
	c := &replayCall{inv: ri, req: req, h: h}
	go c.advance(0) // what it produced before taking any input
	return c, nil
}

// replayCall plays one recorded invocation: each output once the call
// has taken as many inputs as the recorded one had when it produced it,
// everything once its input closes; its end likewise (an invocation the
// recorded kernel gave up on never ends).
type replayCall struct {
	inv *recordedInv
	req externalnode.OpenRequest
	h   externalnode.Handler

	mu        sync.Mutex
	delivered int
	next      int  // outputs given so far
	ended     bool // end given
	gone      bool // cancelled
}

func (c *replayCall) Instance() string { return "replay" }

func (c *replayCall) Send(eventabi.Event) error {
	if c.h.OnDelivered != nil {
		c.h.OnDelivered(1)
	}
	c.advance(1)
	return nil
}

func (c *replayCall) CloseInput() error {
	c.advance(1 << 30)
	return nil
}

func (c *replayCall) Cancel(string) {
	c.mu.Lock()
	c.gone = true
	c.mu.Unlock()
}

// advance counts n more inputs taken and gives what they release.
func (c *replayCall) advance(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delivered += n
	for !c.gone && c.next < len(c.inv.outputs) && c.inv.after[c.next] <= c.delivered {
		ev := c.inv.outputs[c.next]
		c.next++
		// Correlated to this invocation, as its plugin would.
		ev.SessionID, ev.TurnID, ev.NodeID, ev.InvocationID = c.req.SessionID, c.req.TurnID, c.req.NodeID, c.req.InvocationID
		ev.Epoch, ev.Sequence = 0, 0
		if c.h.InFlight != nil {
			c.h.InFlight.Add(int64(externalnode.EventBytes(ev)))
		}
		c.h.OnEvent(ev) // queues on the session; never waits
	}
	if !c.gone && !c.ended && c.inv.ended && c.next == len(c.inv.outputs) && c.inv.endAfter <= c.delivered {
		c.ended = true
		if c.h.OnEnd != nil {
			c.h.OnEnd(Result(c.inv.end))
		}
	}
}

// Result is a recorded end as the runner hands it to the kernel.
func Result(re *kernel.RecordedError) error { return record.Result(re).Err }
