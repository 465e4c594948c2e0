package replay

import (
	"errors"
	"strings"
	"testing"
)

func TestParseNamesTheBadLine(t *testing.T) {
	_, err := Parse(strings.NewReader("{\"seq\":1,\"session_id\":\"s\",\"type\":\"session_open\",\"mono_ns\":0}\nnot json\n"))
	if !errors.Is(err, ErrBadTimeline) || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err = %v, want ErrBadTimeline naming line 2", err)
	}
	_, err = Parse(strings.NewReader("{\"seq\":1,\"session_id\":\"s\",\"type\":\"x\",\"mono_ns\":0,\"bogus\":1}\n"))
	if !errors.Is(err, ErrBadTimeline) || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("unknown field: %v", err)
	}
	tl, err := Parse(strings.NewReader(""))
	if err != nil || len(tl.Sessions) != 0 {
		t.Fatalf("empty timeline: %v %+v", err, tl)
	}
}

// Control evidence of an accepted turn: its determinism context, one
// terminal, turn_close. Each missing piece is named with the turn.
func TestCheckNamesTurnsWithoutTheirEvidence(t *testing.T) {
	const tl = `{"seq":1,"session_id":"a","type":"session_open","mono_ns":0}
{"seq":2,"session_id":"a","turn_id":"t1","type":"turn_open","mono_ns":1}
{"seq":0,"session_id":"a","turn_id":"t1","type":"determinism","mono_ns":1,"attrs":{"level":"control"}}
{"seq":3,"session_id":"a","turn_id":"t1","type":"turn_commit","mono_ns":2}
{"seq":4,"session_id":"a","turn_id":"t1","type":"turn_close","mono_ns":2}
{"seq":5,"session_id":"a","turn_id":"t2","type":"turn_open","mono_ns":3}
{"seq":6,"session_id":"a","turn_id":"t2","type":"turn_abort","mono_ns":4}
{"seq":7,"session_id":"a","turn_id":"t2","type":"turn_commit","mono_ns":4}
{"seq":1,"session_id":"b","type":"session_open","mono_ns":0}
{"seq":2,"session_id":"b","turn_id":"t1","type":"turn_open","mono_ns":1}
{"seq":0,"session_id":"b","turn_id":"t1","type":"determinism","mono_ns":1,"attrs":{"level":"full"}}
{"seq":3,"session_id":"b","turn_id":"t1","type":"turn_commit","mono_ns":2}
{"seq":4,"session_id":"b","turn_id":"t1","type":"turn_close","mono_ns":2}
`
	p, err := Parse(strings.NewReader(tl))
	if err != nil {
		t.Fatal(err)
	}
	rep := Check(p)
	if rep.OK() || len(rep.Turns) != 3 {
		t.Fatalf("report %+v", rep)
	}
	bad := rep.Incomplete()
	if len(bad) != 2 {
		t.Fatalf("incomplete %+v, want a/t2 and b/t1", bad)
	}
	a, b := bad[0], bad[1]
	if a.Session != "a" || a.Turn != "t2" || strings.Join(a.Missing, ";") != "2 terminals;determinism context;turn_close" {
		t.Fatalf("a/t2: %+v", a)
	}
	// Session b says its turn was recorded at level full, but has no input.
	if b.Session != "b" || b.Turn != "t1" || len(b.Missing) != 1 || !strings.Contains(b.Missing[0], "no input recorded") {
		t.Fatalf("b/t1: %+v", b)
	}
	var out strings.Builder
	rep.Write(&out)
	if !strings.Contains(out.String(), "missing evidence: session a turn t2") || !strings.Contains(out.String(), "evidence: 1 of 3 accepted turns complete (33.3%) in 2 sessions") {
		t.Fatalf("report text:\n%s", out.String())
	}
}
