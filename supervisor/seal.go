package supervisor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rspp/rspp/kernel"
)

// A runtime that dies (SIGKILL, a crash, the host losing power) cannot
// end the turns it had open: its timeline stops mid-turn. Every runtime
// names its timeline file in its run dir (timelinePointer); the next
// runtime to sweep that run dir seals the file: each turn that opened and
// never ended gets one turn_abort (reason runtime_lost) and a turn_close,
// marked sealed_by, so every accepted turn of the dead run still ends
// exactly once. A torn last line (the kill cut a write) is cut off and
// counted in the seal record.

// timelinePointer is the file in a run dir naming its timeline.
const timelinePointer = "timeline"

// TypeTimelineSealed marks where a sealing runtime appended to a dead
// run's timeline.
const TypeTimelineSealed = "timeline_sealed"

// ReasonRuntimeLost is the abort reason of a sealed turn.
const ReasonRuntimeLost = "runtime_lost"

// AttrSealedBy is set (to the sealing runtime's pid) on every record a
// seal appends: no kernel made them, so resimulation skips them.
const AttrSealedBy = "sealed_by"

// noteTimeline records in this run's dir which timeline file it writes.
func (d *StateDir) noteTimeline(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(d.Run, timelinePointer), []byte(abs), 0o600)
}

// sealDeadRun seals the timeline a dead run's dir names, if any.
func sealDeadRun(runDir string, pid int) (int, error) {
	b, err := os.ReadFile(filepath.Join(runDir, timelinePointer))
	if err != nil {
		return 0, nil // it wrote no timeline
	}
	return SealTimeline(string(b), pid)
}

// SealTimeline ends every turn of the timeline at path that opened and
// never ended (the runtime of pid died with it open) and reports how many
// it ended; a turn that ended but was never closed gets its turn_close. A
// timeline with nothing open is left as it is.
func SealTimeline(path string, deadPid int) (int, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("seal timeline: %w", err)
	}
	defer f.Close()
	type turnKey struct{ session, turn string }
	type turnState struct{ ended, closed bool }
	lastSeq := map[string]uint64{}
	turns := map[turnKey]*turnState{}
	var order []turnKey
	// Read line by line (a full-level timeline can be large): end is the
	// offset after the last complete line; what follows it is a write
	// the kill cut short.
	var end int64
	rd := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := rd.ReadBytes('\n')
		if err != nil {
			if err != io.EOF {
				return 0, fmt.Errorf("seal timeline %s: %w", path, err)
			}
			break
		}
		end += int64(len(line))
		var r kernel.TimelineRecord
		if json.Unmarshal(line, &r) != nil || r.SessionID == "" {
			continue
		}
		if r.Seq > lastSeq[r.SessionID] {
			lastSeq[r.SessionID] = r.Seq
		}
		k := turnKey{r.SessionID, r.TurnID}
		st := turns[k]
		if r.Type == "turn_open" && st == nil {
			st = &turnState{}
			turns[k] = st
			order = append(order, k)
		}
		if st == nil {
			continue
		}
		switch r.Type {
		case "turn_commit", "turn_abort":
			st.ended = true
		case "turn_close":
			st.closed = true
		}
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("seal timeline %s: %w", path, err)
	}
	torn := int(size - end)
	sealed, unclosed := 0, 0
	for _, k := range order {
		switch st := turns[k]; {
		case !st.ended:
			sealed++
		case !st.closed:
			unclosed++
		}
	}
	if sealed == 0 && unclosed == 0 && torn == 0 {
		return 0, nil
	}
	me := strconv.Itoa(os.Getpid())
	now := time.Now().UnixNano()
	var out bytes.Buffer
	add := func(r kernel.TimelineRecord) error {
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		out.Write(line)
		out.WriteByte('\n')
		return nil
	}
	if err := add(kernel.TimelineRecord{Type: TypeTimelineSealed, WallNanos: now, Attrs: map[string]string{
		AttrSealedBy: me, "dead_pid": strconv.Itoa(deadPid), "turns": strconv.Itoa(sealed), "torn_bytes": strconv.Itoa(torn)}}); err != nil {
		return 0, err
	}
	why := fmt.Sprintf("%s: rspp (pid %d) ended without ending the turn (killed or crashed); sealed by pid %s", ReasonRuntimeLost, deadPid, me)
	for _, k := range order {
		st := turns[k]
		if st.closed {
			continue
		}
		attrs := map[string]string{AttrSealedBy: me}
		if !st.ended {
			lastSeq[k.session]++
			if err := add(kernel.TimelineRecord{Seq: lastSeq[k.session], SessionID: k.session, TurnID: k.turn, Type: "turn_abort", Reason: why, WallNanos: now, Attrs: attrs}); err != nil {
				return 0, err
			}
		}
		lastSeq[k.session]++
		if err := add(kernel.TimelineRecord{Seq: lastSeq[k.session], SessionID: k.session, TurnID: k.turn, Type: "turn_close", WallNanos: now, Attrs: attrs}); err != nil {
			return 0, err
		}
	}
	if err := f.Truncate(end); err != nil {
		return 0, fmt.Errorf("seal timeline %s: %w", path, err)
	}
	if _, err := f.WriteAt(out.Bytes(), end); err != nil {
		return 0, fmt.Errorf("seal timeline %s: %w", path, err)
	}
	return sealed, f.Sync()
}
