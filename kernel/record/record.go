// Package record is the kernel's recording layer (RK-11 timebase and
// determinism bridge, OR-02 evidence). A Session wraps a kernel session:
// every input it takes is recorded (level full) with the clock reading
// the kernel saw and the answers of the session's injected collaborators
// (bindings, admission, authority, ids), every record the kernel emits
// is stamped with wall and media time, and each turn gets a determinism
// context record. The same code runs in replay mode, where those answers
// come from the recording, so a resimulated session emits the same
// records byte for byte.
//
// Like the kernel it does no I/O, starts no goroutine and reads no clock
// of its own: records go to a Sink the caller provides.
//
// It imports only kernel and kernel/eventabi of this module.
package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

// Derived record types (emitted by this layer, not the kernel).
const (
	TypeInput       = "input"
	TypeDeterminism = "determinism"
	TypeLevel       = "recording_level"
)

// IsReplayed says whether a record is reproduced by resimulation: the
// kernel's own records (Seq > 0) and this layer's derived ones. Records
// other components add to the same timeline (a playout's playout_end)
// and the inputs themselves are not.
func IsReplayed(rec kernel.TimelineRecord) bool {
	if rec.Attrs["sealed_by"] != "" {
		return false // appended after its runtime died (supervisor.SealTimeline): no kernel made it
	}
	return rec.Seq > 0 || rec.Type == TypeDeterminism || rec.Type == TypeLevel
}

// Policy is the recording level of a session and its deterministic
// downgrade rule.
type Policy struct {
	// Level is kernel.LevelFull (default) or kernel.LevelControl.
	Level string
	// Budget bounds the bytes of full-level evidence (input records, as
	// counted by InputBytes) one session may record; the input that would
	// cross it downgrades the session to control for the rest of its life,
	// recorded as a recording_level record. Counted in bytes of recorded
	// inputs only, so the same inputs downgrade at the same point. 0: no
	// bound.
	Budget int64
}

// Sink receives the input records as they are taken.
type Sink func(kernel.TimelineRecord)

// Options configure a recording Session.
type Options struct {
	Policy Policy
	// WallAnchor is the unix time (ns) at monotonic 0 of the session's
	// clock: records get WallNanos = WallAnchor + MonoNanos (0: no wall
	// time).
	WallAnchor int64
	// Sink receives input records (level full). Nil: none recorded.
	Sink Sink
}

// Deterministic marks an IDs implementation whose ids follow from the
// order of calls alone (they are then not recorded).
type Deterministic interface{ Deterministic() bool }

// Session is a kernel session with its recording. Methods other than the
// inputs and Ready are the kernel's own.
type Session struct {
	*kernel.Session

	id     string
	clk    *latched
	pol    Policy
	level  string
	anchor int64
	sink   Sink
	replay *replayOracle // nil when recording

	n        uint64 // inputs taken
	ready    int    // non-empty Ready calls since the last input record
	spent    int64  // full-level bytes recorded
	media    int64  // ingress audio taken, ns
	tick     int64  // clock of a tick not recorded yet; -1 none
	answers  []kernel.OracleAnswer
	derived  []kernel.TimelineRecord // queued for the next Ready
	joins    string
	nondet   string
	inputSeq uint64 // n of the input being taken
}

// latched is the clock the kernel reads: fixed for the duration of one
// input, so that the recorded reading is exactly what the kernel saw.
type latched struct {
	src kernel.Clock
	now int64
}

func (l *latched) Now() int64 { return l.now }

// Open creates the kernel session of cfg and records its opening.
func Open(cfg kernel.SessionConfig, o Options) (*Session, error) {
	if cfg.Clock == nil {
		return nil, fmt.Errorf("%w: no clock", kernel.ErrConfig)
	}
	pol := o.Policy
	switch pol.Level {
	case "":
		pol.Level = kernel.LevelFull
	case kernel.LevelFull, kernel.LevelControl:
	default:
		return nil, fmt.Errorf("%w: recording level %q (want full or control)", kernel.ErrConfig, pol.Level)
	}
	if cfg.WallAnchor == 0 {
		cfg.WallAnchor = o.WallAnchor // the kernel stamps its events with it too
	}
	s := &Session{clk: &latched{src: cfg.Clock}, pol: pol, level: pol.Level, anchor: cfg.WallAnchor, sink: o.Sink, tick: -1}
	if s.sink == nil {
		s.level = kernel.LevelControl // nowhere to record inputs
	}
	return s.open(cfg, nil)
}

func (s *Session) open(cfg kernel.SessionConfig, rep *replayOracle) (*Session, error) {
	s.replay = rep
	if cfg.IDs == nil {
		cfg.IDs = &kernel.CounterIDs{}
	}
	var oracles []string
	if cfg.Bindings != nil {
		oracles = append(oracles, "binding")
		cfg.Bindings = bindingOracle{s, cfg.Bindings}
	}
	if cfg.Admission != nil {
		oracles = append(oracles, "admission")
		cfg.Admission = admissionOracle{s, cfg.Admission}
	}
	if cfg.Authority != nil {
		oracles = append(oracles, "authority")
		cfg.Authority = authorityOracle{s, cfg.Authority}
	}
	if d, ok := cfg.IDs.(Deterministic); !ok || !d.Deterministic() {
		oracles = append(oracles, "id")
		cfg.IDs = idOracle{s, cfg.IDs}
	}
	s.joins = joinRule(cfg.Graph)
	s.nondet = "ingress,provider_outputs,invocation_ends,flow_credit,timing"
	for _, o := range oracles {
		if o != "id" {
			s.nondet += "," + o
		}
	}
	cfg.Clock = s.clk
	s.id = cfg.SessionID
	in := kernel.InputRecord{Kind: kernel.InputOpen, WallAnchor: s.anchor, Oracles: oracles, Level: s.level, Budget: s.pol.Budget}
	if s.recording() {
		raw, err := snapshot(cfg)
		if err != nil {
			return nil, err
		}
		in.Config = raw
	}
	s.begin()
	k, err := kernel.NewSession(cfg)
	if err != nil {
		return nil, err
	}
	s.Session = k
	s.finish(&in, nil)
	return s, nil
}

// Level is the session's current recording level.
func (s *Session) Level() string { return s.level }

// begin starts one input: the clock is read once for it.
func (s *Session) begin() {
	s.n++
	s.inputSeq = s.n
	s.tick = -1 // a tick that had no effect changed nothing: not recorded
	if s.replay != nil {
		s.clk.now = s.replay.now
	} else {
		s.clk.now = s.clk.src.Now()
	}
	s.answers = s.answers[:0]
}

// recording says whether inputs are being recorded live.
func (s *Session) recording() bool { return s.replay == nil && s.level == kernel.LevelFull }

// unrecorded ends an input that goes nowhere (live at level control):
// all finish would do is restart the count of Ready calls, so no record
// is built for it (one allocation per frame otherwise).
func (s *Session) unrecorded() bool {
	if s.replay == nil && s.level != kernel.LevelFull {
		s.ready = 0
		return true
	}
	return false
}

// finish records the input just taken.
func (s *Session) finish(in *kernel.InputRecord, verdict error) {
	if verdict != nil {
		in.Verdict = verdict.Error()
	}
	in.N = s.n
	in.Ready = s.ready
	s.ready = 0
	if len(s.answers) > 0 {
		in.Oracle = append([]kernel.OracleAnswer(nil), s.answers...)
	}
	s.account(in)
}

// account records an input (level full) and counts it against the
// budget: the input that reaches the budget is the last one recorded, and
// the session goes on at level control (a recorded, deterministic
// downgrade: it follows from the inputs alone).
func (s *Session) account(in *kernel.InputRecord) {
	var size int64
	if s.replay != nil {
		size = s.replay.check(in)
	} else if s.level == kernel.LevelFull {
		size = InputBytes(in)
		s.sink(kernel.TimelineRecord{SessionID: s.id, Type: TypeInput, MonoNanos: s.clk.now,
			WallNanos: s.wall(s.clk.now), MediaNanos: s.media, Input: in})
	}
	if s.level != kernel.LevelFull {
		return
	}
	s.spent += size
	if s.pol.Budget > 0 && s.spent >= s.pol.Budget {
		s.downgrade("budget", size)
	}
}

func (s *Session) downgrade(why string, size int64) {
	s.level = kernel.LevelControl
	s.derived = append(s.derived, kernel.TimelineRecord{Type: TypeLevel, Reason: "downgrade: " + why, MonoNanos: s.clk.now,
		Attrs: map[string]string{"from": kernel.LevelFull, "to": kernel.LevelControl, "at_input": strconv.FormatUint(s.n, 10),
			"spent_bytes": strconv.FormatInt(s.spent, 10), "input_bytes": strconv.FormatInt(size, 10),
			"budget_bytes": strconv.FormatInt(s.pol.Budget, 10)}})
}

func (s *Session) wall(mono int64) int64 {
	if s.anchor == 0 {
		return 0
	}
	return s.anchor + mono
}

// InputBytes is the size an input record is counted at for the budget:
// a deterministic estimate of its encoded size (payload bytes as base64,
// text as is, plus a fixed envelope).
func InputBytes(in *kernel.InputRecord) int64 {
	n := int64(160 + len(in.Inv) + len(in.Reason) + len(in.Verdict) + len(in.Config))
	if ev := in.Event; ev != nil {
		n += 200 + int64(len(ev.ID)+len(ev.Type)+len(ev.SessionID)+len(ev.TurnID)+len(ev.NodeID)+len(ev.InvocationID))
		if ev.Audio != nil {
			n += int64(len(ev.Audio.PCM)+2) / 3 * 4
		}
		if ev.Text != nil {
			n += int64(len(ev.Text.Text))
		}
		if ev.Control != nil {
			n += int64(len(ev.Control.Signal) + len(ev.Control.Scope) + len(ev.Control.Reason))
		}
	}
	if in.Err != nil {
		n += int64(len(in.Err.Text) + len(in.Err.Detail) + 16*len(in.Err.Kinds))
	}
	for _, a := range in.Oracle {
		n += int64(32 + len(a.Key) + len(a.Value))
	}
	return n
}

// Ingest is kernel.Session.Ingest, recorded.
func (s *Session) Ingest(ev eventabi.Event) error {
	s.begin()
	err := s.Session.Ingest(ev)
	if err == nil && ev.Type == eventabi.TypeAudioFrame {
		s.media += ev.Audio.DurationNanos()
	}
	if s.unrecorded() {
		return err
	}
	s.finish(&kernel.InputRecord{Kind: kernel.InputIngest, Event: s.eventPtr(ev)}, err)
	return err
}

// OnNodeEvent is kernel.Session.OnNodeEvent, recorded.
func (s *Session) OnNodeEvent(inv string, ev eventabi.Event) error {
	s.begin()
	err := s.Session.OnNodeEvent(inv, ev)
	if s.unrecorded() {
		return err
	}
	s.finish(&kernel.InputRecord{Kind: kernel.InputNodeEvent, Inv: inv, Event: s.eventPtr(ev)}, err)
	return err
}

// OnInvocationEnd is kernel.Session.OnInvocationEnd, recorded.
func (s *Session) OnInvocationEnd(inv string, res kernel.InvocationResult) {
	s.begin()
	s.Session.OnInvocationEnd(inv, res)
	in := &kernel.InputRecord{Kind: kernel.InputNodeEnd, Inv: inv}
	if res.Err != nil || res.Detail != "" {
		in.Err = recordError(res)
	}
	s.finish(in, nil)
}

// OnInputsTaken is kernel.Session.OnInputsTaken, recorded.
func (s *Session) OnInputsTaken(inv string, n int) {
	s.begin()
	s.Session.OnInputsTaken(inv, n)
	if s.unrecorded() {
		return
	}
	s.finish(&kernel.InputRecord{Kind: kernel.InputTaken, Inv: inv, Count: n}, nil)
}

// OnEgressPlayed is kernel.Session.OnEgressPlayed, recorded.
func (s *Session) OnEgressPlayed(turn string, n int) {
	s.begin()
	s.Session.OnEgressPlayed(turn, n)
	if s.unrecorded() {
		return
	}
	s.finish(&kernel.InputRecord{Kind: kernel.InputPlayed, Event: &eventabi.Event{TurnID: turn}, Count: n}, nil)
}

// Cancel is kernel.Session.Cancel, recorded.
func (s *Session) Cancel(scope, target, reason string) error {
	s.begin()
	err := s.Session.Cancel(scope, target, reason)
	s.finish(&kernel.InputRecord{Kind: kernel.InputCancel, Scope: scope, Target: target, Reason: reason}, err)
	return err
}

// Close is kernel.Session.Close, recorded.
func (s *Session) Close(reason string) {
	if s.Session.Closed() {
		return
	}
	s.begin()
	s.Session.Close(reason)
	s.finish(&kernel.InputRecord{Kind: kernel.InputClose, Reason: reason}, nil)
}

// Tick is kernel.Session.Tick. A tick is recorded only once the Ready
// after it returns effects: one that changed nothing is not evidence.
func (s *Session) Tick() {
	if s.Session.Closed() {
		return
	}
	s.begin()
	s.n-- // numbered when recorded
	s.Session.Tick()
	s.tick = s.clk.now
}

// Ready is kernel.Session.Ready; the records among the effects are
// stamped (wall, media time) and followed by this layer's derived ones.
func (s *Session) Ready() []kernel.Effect {
	out := s.Session.Ready()
	if len(out) == 0 && len(s.derived) == 0 {
		return out
	}
	if s.tick >= 0 {
		// The tick had effects: it is an input (with the answers the
		// kernel asked for during it).
		s.tick = -1
		s.n++
		in := &kernel.InputRecord{N: s.n, Kind: kernel.InputTick, Ready: s.ready}
		if len(s.answers) > 0 {
			in.Oracle = append([]kernel.OracleAnswer(nil), s.answers...)
		}
		s.ready = 0
		s.account(in)
	}
	s.ready++
	// Stamp the records in place; a new slice only when derived records
	// join them (queued ones first, a determinism record after each
	// turn_open).
	opens := 0
	for i, e := range out {
		if r, ok := e.(kernel.Record); ok {
			out[i] = kernel.Record{Record: s.stamp(r.Record)}
			if r.Record.Type == "turn_open" {
				opens++
			}
		}
	}
	if opens == 0 && len(s.derived) == 0 {
		return out
	}
	res := make([]kernel.Effect, 0, len(out)+len(s.derived)+opens)
	for _, d := range s.derived {
		res = append(res, kernel.Record{Record: s.stamp(d)})
	}
	s.derived = s.derived[:0]
	for _, e := range out {
		res = append(res, e)
		if r, ok := e.(kernel.Record); ok && r.Record.Type == "turn_open" {
			res = append(res, kernel.Record{Record: s.stamp(s.determinism(r.Record))})
		}
	}
	return res
}

func (s *Session) stamp(rec kernel.TimelineRecord) kernel.TimelineRecord {
	if rec.SessionID == "" {
		rec.SessionID = s.id
	}
	if rec.Seq == 0 && rec.MonoNanos == 0 {
		rec.MonoNanos = s.clk.now
	}
	rec.WallNanos = s.wall(rec.MonoNanos)
	rec.MediaNanos = s.media
	return rec
}

// determinism is the turn's determinism context: what it was decided
// from. The kernel draws no randomness; seed is the turn's own stable
// seed for any node that needs one (derived from session and turn id).
func (s *Session) determinism(open kernel.TimelineRecord) kernel.TimelineRecord {
	h := fnv.New64a()
	h.Write([]byte(open.SessionID + "/" + open.TurnID))
	return kernel.TimelineRecord{Type: TypeDeterminism, TurnID: open.TurnID, Attrs: map[string]string{
		"seed":             fmt.Sprintf("%016x", h.Sum64()),
		"merge_rule":       s.joins,
		"order_input":      strconv.FormatUint(s.inputSeq, 10),
		"order_seq":        strconv.FormatUint(open.Seq, 10),
		"nondeterministic": s.nondet,
		"level":            s.level,
	}, MonoNanos: open.MonoNanos}
}

// joinRule names how each node with several upstreams merges them.
func joinRule(g kernel.GraphSpec) string {
	ups := map[string]int{}
	for _, e := range g.Edges {
		ups[e.To]++
	}
	var parts []string
	for _, n := range g.Nodes {
		if ups[n.ID] > 1 {
			j := n.Join
			if j == "" {
				j = "all"
			}
			parts = append(parts, n.ID+"="+j)
		}
	}
	sort.Strings(parts)
	rule := "single_loop_arrival_order"
	if len(parts) > 0 {
		rule += ";" + strings.Join(parts, ",")
	}
	return rule
}

func (s *Session) eventPtr(ev eventabi.Event) *eventabi.Event {
	if !s.recording() {
		return nil
	}
	if ev.Audio != nil {
		a := *ev.Audio
		a.PCM = append([]byte(nil), a.PCM...) // the transport may reuse its buffer
		ev.Audio = &a
	}
	return &ev
}

func recordError(res kernel.InvocationResult) *kernel.RecordedError {
	re := &kernel.RecordedError{Detail: res.Detail}
	if res.Err != nil {
		re.Text = res.Err.Error()
		for _, k := range kernel.ErrorKinds {
			if errors.Is(res.Err, k.Err) {
				re.Kinds = append(re.Kinds, k.Name)
			}
		}
	}
	return re
}

// ReplayedError is a recorded error rebuilt: the same text, matching the
// same typed kinds.
type ReplayedError struct{ rec *kernel.RecordedError }

func (e ReplayedError) Error() string { return e.rec.Text }

func (e ReplayedError) Is(target error) bool {
	for _, k := range kernel.ErrorKinds {
		if k.Err == target {
			for _, n := range e.rec.Kinds {
				if n == k.Name {
					return true
				}
			}
		}
	}
	return false
}

// Result rebuilds an invocation result from its recording.
func Result(re *kernel.RecordedError) kernel.InvocationResult {
	if re == nil {
		return kernel.InvocationResult{}
	}
	res := kernel.InvocationResult{Detail: re.Detail}
	if re.Text != "" || len(re.Kinds) > 0 {
		res.Err = ReplayedError{re}
	}
	return res
}

// snapshot encodes cfg without its interface, func and chan fields (the
// collaborators, whose answers are recorded instead).
func snapshot(cfg kernel.SessionConfig) (json.RawMessage, error) {
	v := reflect.ValueOf(&cfg).Elem()
	for i := 0; i < v.NumField(); i++ {
		switch f := v.Field(i); f.Kind() {
		case reflect.Interface, reflect.Func, reflect.Chan:
			if f.CanSet() {
				f.Set(reflect.Zero(f.Type()))
			}
		}
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("record: session config: %w", err)
	}
	return raw, nil
}
