package record

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/rspp/rspp/kernel"
)

// The session's injected collaborators are nondeterministic inputs: each
// answer is recorded with the input during which the kernel asked, and
// given back in the same order on resimulation.

type bindingAnswer struct {
	Binding kernel.Binding `json:"binding"`
	OK      bool           `json:"ok"`
}

type bindingOracle struct {
	s   *Session
	src kernel.BindingSource
}

func (o bindingOracle) Binding(p string) (kernel.Binding, bool) {
	if r := o.s.replay; r != nil {
		var a bindingAnswer
		r.answer("binding", p, &a)
		return a.Binding, a.OK
	}
	b, ok := o.src.Binding(p)
	o.s.note("binding", p, bindingAnswer{b, ok})
	return b, ok
}

type admissionOracle struct {
	s   *Session
	src kernel.Admitter
}

func (o admissionOracle) Admit(in kernel.TurnIntent) kernel.Decision {
	if r := o.s.replay; r != nil {
		var d kernel.Decision
		r.answer("admission", "", &d)
		return d
	}
	d := o.src.Admit(in)
	o.s.note("admission", "", d)
	return d
}

type authorityOracle struct {
	s   *Session
	src kernel.Authority
}

func (o authorityOracle) CurrentEpoch(session string) uint64 {
	if r := o.s.replay; r != nil {
		var e uint64
		r.answer("authority", "", &e)
		return e
	}
	e := o.src.CurrentEpoch(session)
	o.s.note("authority", "", e)
	return e
}

type idOracle struct {
	s   *Session
	src kernel.IDs
}

func (o idOracle) NewID(kind string) string {
	if r := o.s.replay; r != nil {
		var id string
		r.answer("id", kind, &id)
		return id
	}
	id := o.src.NewID(kind)
	o.s.note("id", kind, id)
	return id
}

// note keeps one answer for the input being taken.
func (s *Session) note(kind, key string, v any) {
	if !s.recording() {
		return
	}
	raw, err := json.Marshal(v)
	if err != nil {
		raw = json.RawMessage(strconv.Quote(err.Error()))
	}
	s.answers = append(s.answers, kernel.OracleAnswer{Kind: kind, Key: key, Value: raw})
}

// replayOracle feeds a resimulated session its recorded inputs' clock
// readings and answers, and notes the first divergence.
type replayOracle struct {
	now int64
	cur *kernel.InputRecord
	pos int
	err error // first divergence
}

func (r *replayOracle) diverged(format string, a ...any) {
	if r.err == nil {
		n := uint64(0)
		if r.cur != nil {
			n = r.cur.N
		}
		r.err = fmt.Errorf("%w at input %d: %s", ErrDiverged, n, fmt.Sprintf(format, a...))
	}
}

func (r *replayOracle) answer(kind, key string, v any) {
	if r.cur == nil || r.pos >= len(r.cur.Oracle) {
		r.diverged("the kernel asked %s %q, nothing recorded", kind, key)
		return
	}
	a := r.cur.Oracle[r.pos]
	r.pos++
	if a.Kind != kind || a.Key != key {
		r.diverged("the kernel asked %s %q, recorded %s %q", kind, key, a.Kind, a.Key)
		return
	}
	if err := json.Unmarshal(a.Value, v); err != nil {
		r.diverged("answer of %s %q: %v", kind, key, err)
	}
}

// check compares the input just resimulated with its recording and
// returns the recorded size (for the budget).
func (r *replayOracle) check(in *kernel.InputRecord) int64 {
	rec := r.cur
	switch {
	case rec == nil:
		r.diverged("input %s not recorded", in.Kind)
		return 0
	case rec.Kind != in.Kind:
		r.diverged("input %s, recorded %s", in.Kind, rec.Kind)
	case rec.Verdict != in.Verdict:
		r.diverged("%s verdict %q, recorded %q", in.Kind, in.Verdict, rec.Verdict)
	case r.pos != len(rec.Oracle):
		r.diverged("%s used %d of %d recorded answers", in.Kind, r.pos, len(rec.Oracle))
	}
	return InputBytes(rec)
}
