package load

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rspp/rspp/kernel"
)

func rec(sess, turn, typ, reason string) kernel.TimelineRecord {
	return kernel.TimelineRecord{SessionID: sess, TurnID: turn, Type: typ, Reason: reason}
}

func TestCountTerminalsFromRecords(t *testing.T) {
	recs := []kernel.TimelineRecord{
		rec("a", "", "session_open", ""),
		rec("a", "t1", "turn_open", ""), rec("a", "t1", "turn_commit", ""),
		rec("a", "t2", "turn_open", ""), rec("a", "t2", "turn_abort", "node llm failed: node invocation timed out: timeout 1s exceeded"),
		rec("a", "t3", "turn_open", ""), // no terminal
		rec("a", "t4", "turn_open", ""), rec("a", "t4", "turn_commit", ""), rec("a", "t4", "turn_abort", "barge_in"),
		rec("a", "t5", "turn_abort", "x"), // terminal without open
		rec("a", "", "session_close", ""),
	}
	got := CountTerminals(recs)
	if got.Opened != 4 || got.Committed != 1 || got.Aborted != 1 || len(got.Wrong) != 3 || got.Sessions != 1 || got.Closed != 1 {
		t.Fatalf("%+v", got)
	}
	if got.AbortReasons["node timeout"] != 1 {
		t.Fatalf("abort classes %v", got.AbortReasons)
	}
}

func TestChaosReportFailsOnAnyViolation(t *testing.T) {
	ok := ChaosReport{Sessions: 1, Terminals: Terminals{Sessions: 1}}
	if !ok.OK() {
		t.Fatal("clean report not OK")
	}
	for name, r := range map[string]ChaosReport{
		"wrong":    {Sessions: 1, Terminals: Terminals{Sessions: 1, Wrong: []string{"a/t1"}}},
		"lost":     {Sessions: 1, Terminals: Terminals{Sessions: 1}, Lost: []string{"a"}},
		"leftover": {Sessions: 1, Terminals: Terminals{Sessions: 1}, Leftover: []int{42}},
		"missing":  {Sessions: 2, Terminals: Terminals{Sessions: 1}},
	} {
		if r.OK() {
			t.Errorf("%s: report OK", name)
		}
		var b bytes.Buffer
		r.Write(&b)
		lines := strings.Split(strings.TrimSpace(b.String()), "\n")
		tail := strings.Join(lines[len(lines)-3:], "\n")
		if strings.Count(tail, ": 0") == 3 {
			t.Errorf("%s: last lines all zero:\n%s", name, tail)
		}
	}
}
