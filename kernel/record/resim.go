package record

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/rspp/rspp/kernel"
)

// ErrDiverged: a resimulated session did not take its recorded inputs the
// way the recording says (another kernel, a changed config or a
// recording that is not complete).
var ErrDiverged = errors.New("resimulation diverged")

// ErrNotRecorded: the session has no level-full recording to rebuild it
// from.
var ErrNotRecorded = errors.New("session not recorded at level full")

// ErrIncomplete: the recording has a hole (inputs missing while the
// session recorded at level full): it cannot be rebuilt past it.
var ErrIncomplete = errors.New("recording incomplete")

// Resimulated is a session rebuilt from its recorded inputs.
type Resimulated struct {
	// Records are the records the rebuilt session emitted, in order: the
	// kernel's and this layer's derived ones (IsReplayed).
	Records []kernel.TimelineRecord
	// Inputs is how many recorded inputs were taken.
	Inputs int
	// Complete: the recording covers the whole session (it closed while
	// still at level full). Otherwise Records are the prefix the recorded
	// inputs determine.
	Complete bool
	// Effects counts the other effects, by kind, for the curious.
	Effects int
}

// Resimulate rebuilds one session from its input records (type "input",
// in recorded order) by feeding a fresh kernel session exactly what the
// recorded one took: the same inputs, clock readings, collaborator
// answers and Ready calls. Err is the first divergence, if any.
func Resimulate(inputs []kernel.TimelineRecord) (Resimulated, error) {
	var res Resimulated
	if len(inputs) == 0 || inputs[0].Input == nil || inputs[0].Input.Kind != kernel.InputOpen {
		return res, ErrNotRecorded
	}
	open := inputs[0].Input
	var cfg kernel.SessionConfig
	if err := json.Unmarshal(open.Config, &cfg); err != nil {
		return res, fmt.Errorf("%w: session config: %v", ErrDiverged, err)
	}
	for _, o := range open.Oracles {
		switch o {
		case "binding":
			cfg.Bindings = placeholder{}
		case "admission":
			cfg.Admission = placeholder{}
		case "authority":
			cfg.Authority = placeholder{}
		case "id":
			cfg.IDs = placeholder{}
		}
	}
	rep := &replayOracle{now: inputs[0].MonoNanos, cur: open}
	s := &Session{clk: &latched{}, pol: Policy{Level: open.Level, Budget: open.Budget}, level: open.Level, anchor: open.WallAnchor, tick: -1}
	if s.level == "" {
		s.level = kernel.LevelFull
	}
	cfg.Clock = s.clk
	if _, err := s.open(cfg, rep); err != nil {
		return res, fmt.Errorf("%w: open: %v", ErrDiverged, err)
	}
	res.Inputs = 1
	collect := func() bool {
		effs := s.Ready()
		for _, e := range effs {
			if r, ok := e.(kernel.Record); ok {
				res.Records = append(res.Records, r.Record)
			} else {
				res.Effects++
			}
		}
		return len(effs) > 0
	}
	prev := open.N
	for _, rec := range inputs[1:] {
		in := rec.Input
		if in == nil {
			continue
		}
		if in.N != prev+1 {
			if s.Level() == kernel.LevelFull {
				// Not a recorded downgrade: a hole in the evidence.
				return res, fmt.Errorf("%w: inputs %d..%d not recorded", ErrIncomplete, prev+1, in.N-1)
			}
			break
		}
		prev = in.N
		for i := 0; i < in.Ready; i++ {
			if !collect() {
				rep.diverged("Ready %d of %d before %s returned nothing", i+1, in.Ready, in.Kind)
			}
		}
		if rep.err != nil {
			return res, rep.err
		}
		rep.cur, rep.pos, rep.now = in, 0, rec.MonoNanos
		if err := apply(s, in); err != nil {
			rep.diverged("%v", err)
		}
		res.Inputs++
		if rep.err != nil {
			return res, rep.err
		}
	}
	if s.tick >= 0 {
		// A recorded tick is taken in the Ready after it (it had effects).
		collect()
	}
	switch {
	case s.Closed() && s.Level() == kernel.LevelFull:
		res.Complete = true
		for collect() {
		}
	case s.Level() != kernel.LevelFull && len(s.derived) > 0:
		// Downgraded by the last recorded input: the next Ready begins
		// with the recording_level record, which follows from the inputs
		// alone (what else it holds may depend on inputs not recorded).
		for _, e := range s.Ready() {
			r, ok := e.(kernel.Record)
			if !ok || r.Record.Type != TypeLevel {
				break
			}
			res.Records = append(res.Records, r.Record)
		}
	}
	return res, rep.err
}

func apply(s *Session, in *kernel.InputRecord) error {
	needEvent := func() error {
		if in.Event == nil {
			return fmt.Errorf("%s input without its event", in.Kind)
		}
		return nil
	}
	switch in.Kind {
	case kernel.InputIngest:
		if err := needEvent(); err != nil {
			return err
		}
		_ = s.Ingest(*in.Event)
	case kernel.InputNodeEvent:
		if err := needEvent(); err != nil {
			return err
		}
		_ = s.OnNodeEvent(in.Inv, *in.Event)
	case kernel.InputNodeEnd:
		s.OnInvocationEnd(in.Inv, Result(in.Err))
	case kernel.InputTaken:
		s.OnInputsTaken(in.Inv, in.Count)
	case kernel.InputPlayed:
		if err := needEvent(); err != nil {
			return err
		}
		s.OnEgressPlayed(in.Event.TurnID, in.Count)
	case kernel.InputTick:
		s.Tick()
	case kernel.InputClose:
		s.Close(in.Reason)
	case kernel.InputCancel:
		_ = s.Cancel(in.Scope, in.Target, in.Reason)
	default:
		return fmt.Errorf("unknown input kind %q", in.Kind)
	}
	return nil
}

// placeholder stands in for a recorded collaborator: the oracle wrapping
// it answers from the recording and never calls it.
type placeholder struct{}

func (placeholder) Binding(string) (kernel.Binding, bool)   { return kernel.Binding{}, false }
func (placeholder) Admit(kernel.TurnIntent) kernel.Decision { return kernel.Decision{} }
func (placeholder) CurrentEpoch(string) uint64              { return 0 }
func (placeholder) NewID(string) string                     { return "" }
