package supervisor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rspp/rspp/supervisor/internal/testplugin"

	"github.com/rspp/rspp/kernel"
)

// deadPid is the pid of a process that has exited.
func deadPid(t *testing.T) int {
	t.Helper()
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	return c.Process.Pid
}

// A runtime that died mid-turn left its timeline with open turns; the
// next runtime to sweep its run dir ends each exactly once (turn_abort
// runtime_lost, turn_close), closes a turn that ended unclosed, cuts a
// torn last line, and leaves complete turns as they were.
func TestDeadRunsTimelineIsSealedOnTheNextStart(t *testing.T) {
	root := testplugin.ShortDir(t)
	tl := filepath.Join(t.TempDir(), "timeline.jsonl")
	var b bytes.Buffer
	for _, r := range []kernel.TimelineRecord{
		{Seq: 1, SessionID: "s1", TurnID: "t1", Type: "turn_open"},
		{Seq: 2, SessionID: "s1", TurnID: "t1", Type: "turn_commit"},
		{Seq: 3, SessionID: "s1", TurnID: "t1", Type: "turn_close"},
		{Seq: 4, SessionID: "s1", TurnID: "t2", Type: "turn_open"},
		{Seq: 1, SessionID: "s2", TurnID: "t1", Type: "turn_open"},
		{Seq: 2, SessionID: "s2", TurnID: "t1", Type: "turn_abort", Reason: "barge_in"},
		{Seq: 3, SessionID: "s2", TurnID: "t2", Type: "turn_open"},
	} {
		line, _ := json.Marshal(r)
		b.Write(line)
		b.WriteByte('\n')
	}
	b.WriteString(`{"seq":4,"session_id":"s2","ty`) // the kill cut this write
	if err := os.WriteFile(tl, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	pid := deadPid(t)
	run := filepath.Join(root, "run-"+strconv.Itoa(pid))
	if err := os.Mkdir(run, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := (&StateDir{Root: root, Run: run}).noteTimeline(tl); err != nil {
		t.Fatal(err)
	}
	sd, swept, err := OpenStateDir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	if len(swept) != 1 {
		t.Fatalf("swept %v, want the dead run", swept)
	}
	raw, _ := os.ReadFile(tl)
	type turn struct{ terminals, closes int }
	turns := map[string]*turn{}
	var sealedAborts []kernel.TimelineRecord
	lastSeq := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		var r kernel.TimelineRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %d of the sealed timeline is not a record: %v: %s", n, err, sc.Bytes())
		}
		if r.SessionID == "" {
			if r.Type != TypeTimelineSealed || r.Attrs["turns"] != "2" || r.Attrs["torn_bytes"] == "0" || r.Attrs["dead_pid"] != strconv.Itoa(pid) {
				t.Errorf("seal marker %+v: want 2 turns, torn bytes, dead pid %d", r, pid)
			}
			continue
		}
		if r.Seq <= lastSeq[r.SessionID] {
			t.Errorf("session %s: seq %d after %d", r.SessionID, r.Seq, lastSeq[r.SessionID])
		}
		lastSeq[r.SessionID] = r.Seq
		k := r.SessionID + "/" + r.TurnID
		if turns[k] == nil {
			turns[k] = &turn{}
		}
		switch r.Type {
		case "turn_commit", "turn_abort":
			turns[k].terminals++
			if r.Attrs[AttrSealedBy] != "" {
				sealedAborts = append(sealedAborts, r)
			}
		case "turn_close":
			turns[k].closes++
		}
	}
	for k, tu := range turns {
		if tu.terminals != 1 || tu.closes != 1 {
			t.Errorf("turn %s: %d terminals, %d closes after the seal, want 1 and 1", k, tu.terminals, tu.closes)
		}
	}
	if len(sealedAborts) != 2 {
		t.Fatalf("sealed aborts %v, want s1/t2 and s2/t2", sealedAborts)
	}
	for _, r := range sealedAborts {
		if !strings.HasPrefix(r.Reason, ReasonRuntimeLost) || !strings.Contains(r.Reason, "pid "+strconv.Itoa(pid)) {
			t.Errorf("sealed abort reason %q: want %s naming pid %d", r.Reason, ReasonRuntimeLost, pid)
		}
	}
	if n, err := SealTimeline(tl, pid); err != nil || n != 0 {
		t.Fatalf("sealing again: %d turns, %v; want nothing to do", n, err)
	}
	if after, _ := os.ReadFile(tl); !bytes.Equal(after, raw) {
		t.Fatal("sealing a sealed timeline changed it")
	}
}
