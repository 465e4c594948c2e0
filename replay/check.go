package replay

import (
	"fmt"
	"io"
	"sort"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/record"
)

// Replay-critical evidence of one accepted turn (OR-02, invariant 14):
// at every level its control evidence — turn_open, its determinism
// context, exactly one terminal (turn_commit or turn_abort) and
// turn_close; while the session records at level full, also every input
// the session took up to the turn's close, without a gap (a level
// downgrade is recorded evidence, a hole is not).

// TurnEvidence is the check of one accepted turn.
type TurnEvidence struct {
	Session, Turn string
	Level         string   // the session's level when the turn closed
	Missing       []string // what is missing; empty: complete
}

// CheckReport is OR-02 completeness over a timeline.
type CheckReport struct {
	Sessions int
	Turns    []TurnEvidence // every accepted turn, by session then order
}

// Incomplete lists the turns with missing evidence.
func (r CheckReport) Incomplete() []TurnEvidence {
	var out []TurnEvidence
	for _, t := range r.Turns {
		if len(t.Missing) > 0 {
			out = append(out, t)
		}
	}
	return out
}

// OK: every accepted turn has its evidence.
func (r CheckReport) OK() bool { return len(r.Incomplete()) == 0 }

// Write prints the report: one line per incomplete turn, then the total.
func (r CheckReport) Write(w io.Writer) {
	bad := r.Incomplete()
	for _, t := range bad {
		fmt.Fprintf(w, "missing evidence: session %s turn %s (level %s): %v\n", t.Session, t.Turn, t.Level, t.Missing)
	}
	pct := 100.0
	if len(r.Turns) > 0 {
		pct = 100 * float64(len(r.Turns)-len(bad)) / float64(len(r.Turns))
	}
	fmt.Fprintf(w, "evidence: %d of %d accepted turns complete (%.1f%%) in %d sessions\n", len(r.Turns)-len(bad), len(r.Turns), pct, r.Sessions)
}

type turnState struct {
	ev          TurnEvidence
	determinism bool
	terminals   int
	closed      bool
	fullAtClose bool
	holeBefore  bool // a gap in the inputs before the turn closed
}

// Check verifies OR-02 completeness of every session of the timeline.
func Check(tl *Timeline) CheckReport {
	rep := CheckReport{Sessions: len(tl.Sessions)}
	for _, s := range tl.Sessions {
		rep.Turns = append(rep.Turns, checkSession(s)...)
	}
	return rep
}

func checkSession(s *Session) []TurnEvidence {
	var (
		turns    []*turnState
		by       = map[string]*turnState{}
		level    = ""
		next     = uint64(1)
		hole     = false
		holeDesc string
	)
	for _, l := range s.Lines {
		r := l.Rec
		if in := r.Input; in != nil {
			if in.Kind == kernel.InputOpen {
				level = in.Level
				if level == "" {
					level = kernel.LevelFull
				}
			}
			if in.N != next && !hole {
				hole = true
				holeDesc = fmt.Sprintf("inputs %d..%d not recorded (line %d)", next, in.N-1, l.No)
			}
			next = in.N + 1
			continue
		}
		switch r.Type {
		case record.TypeLevel:
			level = r.Attrs["to"]
			continue
		case record.TypeDeterminism:
			// The turn's own word for the level it was recorded at.
			level = r.Attrs["level"]
			if level == kernel.LevelFull && next == 1 && !hole {
				hole = true
				holeDesc = fmt.Sprintf("no input recorded before line %d", l.No)
			}
		}
		if r.TurnID == "" {
			continue
		}
		t := by[r.TurnID]
		if r.Type == "turn_open" {
			t = &turnState{ev: TurnEvidence{Session: s.ID, Turn: r.TurnID}}
			by[r.TurnID] = t
			turns = append(turns, t)
			continue
		}
		if t == nil {
			continue
		}
		switch r.Type {
		case record.TypeDeterminism:
			t.determinism = true
		case "turn_commit", "turn_abort":
			t.terminals++
		case "turn_close":
			t.closed = true
			t.ev.Level = level
			if level == "" {
				t.ev.Level = kernel.LevelControl
			}
			t.fullAtClose = level == kernel.LevelFull
			t.holeBefore = hole
		}
	}
	if level == "" {
		level = kernel.LevelControl // no open input: not recorded at level full
	}
	out := make([]TurnEvidence, 0, len(turns))
	for _, t := range turns {
		if !t.determinism {
			t.ev.Missing = append(t.ev.Missing, "determinism context")
		}
		if t.terminals != 1 {
			t.ev.Missing = append(t.ev.Missing, fmt.Sprintf("%d terminals", t.terminals))
		}
		if !t.closed {
			t.ev.Level = level
			t.ev.Missing = append(t.ev.Missing, "turn_close")
		} else if t.fullAtClose && t.holeBefore {
			t.ev.Missing = append(t.ev.Missing, holeDesc)
		}
		sort.Strings(t.ev.Missing)
		out = append(out, t.ev)
	}
	return out
}
