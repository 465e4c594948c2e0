package session

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/kernel/record"
)

// allRecords keeps every record, inputs included (a test timeline).
type allRecords struct {
	mu   sync.Mutex
	recs []kernel.TimelineRecord
}

func (a *allRecords) Append(rec kernel.TimelineRecord) {
	a.mu.Lock()
	a.recs = append(a.recs, rec)
	a.mu.Unlock()
}

func (a *allRecords) Records() []kernel.TimelineRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]kernel.TimelineRecord(nil), a.recs...)
}

func frame(n int) eventabi.Event {
	pcm := make([]byte, 640)
	for i := range pcm {
		pcm[i] = byte(i * n)
	}
	return eventabi.Event{Type: eventabi.TypeAudioFrame, Audio: &eventabi.Audio{PCM: pcm, SampleRate: 16000, Channels: 1}}
}

// drive runs one session through a crash, a retry, outputs and a second
// turn, the way a transport and plugins would, and closes it.
func drive(t *testing.T, tl Timeline) {
	t.Helper()
	pools := &fakePools{opens: make(chan openRec, 8)}
	s := openSession(t, pools, tl)
	for turn := 0; turn < 2; turn++ {
		if err := s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechStart}); err != nil {
			t.Fatal(err)
		}
		first := nextOpen(t, pools)
		for i := 0; i < 5; i++ {
			if err := s.Ingest(frame(i)); err != nil {
				t.Fatal(err)
			}
		}
		inv := first
		if turn == 0 {
			first.h.OnEnd(fmt.Errorf("instance %s died: %w", first.inst, kernel.ErrNodeCrashed))
			inv = nextOpen(t, pools)
		}
		if err := s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechEnd}); err != nil {
			t.Fatal(err)
		}
		inv.h.OnEvent(eventabi.Event{Type: eventabi.TypeTextFinal, Text: &eventabi.Text{Text: fmt.Sprintf("reply %d", turn), Final: true}})
		inv.h.OnEnd(nil)
		<-s.Idle()
		for s.ActiveTurn() != "" {
			<-s.Idle()
		}
	}
	s.Close("done")
}

func split(recs []kernel.TimelineRecord) (inputs, replayed []kernel.TimelineRecord) {
	for _, r := range recs {
		switch {
		case r.Input != nil:
			inputs = append(inputs, r)
		case record.IsReplayed(r):
			replayed = append(replayed, r)
		}
	}
	return
}

func encode(t *testing.T, recs []kernel.TimelineRecord) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, r := range recs {
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// A session run through the real runner (fake plugins) is rebuilt from
// its recorded inputs alone, and the rebuilt kernel emits the same
// lifecycle and decision records, byte for byte, wall and media time
// included.
func TestResimulateReproducesTheRecordedSession(t *testing.T) {
	tl := &allRecords{}
	drive(t, tl)
	inputs, want := split(tl.Records())
	if len(inputs) < 10 {
		t.Fatalf("only %d inputs recorded", len(inputs))
	}
	for _, ty := range []string{"turn_open", "invocation_fail", "invocation_retry", "turn_commit", "determinism", "session_close"} {
		found := false
		for _, r := range want {
			found = found || r.Type == ty
		}
		if !found {
			t.Fatalf("recorded session has no %s record", ty)
		}
	}
	for _, r := range want {
		if r.WallNanos == 0 {
			t.Fatalf("record without wall time: %+v", r)
		}
	}
	// Through the file format and back.
	var decoded []kernel.TimelineRecord
	for _, line := range bytes.Split(bytes.TrimSpace(encode(t, inputs)), []byte("\n")) {
		var r kernel.TimelineRecord
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		decoded = append(decoded, r)
	}
	got, err := record.Resimulate(decoded)
	if err != nil {
		t.Fatalf("resimulate: %v", err)
	}
	if !got.Complete {
		t.Fatal("resimulation not complete")
	}
	if g, w := encode(t, got.Records), encode(t, want); !bytes.Equal(g, w) {
		t.Fatalf("resimulated records differ:\n got %s\nwant %s", g, w)
	}
	var media int64
	for _, r := range want {
		media = max(media, r.MediaNanos)
	}
	if media != 2*5*20e6 { // two turns of five 20 ms frames
		t.Fatalf("media time at the end %d ns, want %d", media, int64(2*5*20e6))
	}
}

// A changed recording is caught: resimulation names the input where the
// kernel no longer takes it the recorded way.
func TestResimulateDetectsADivergence(t *testing.T) {
	tl := &allRecords{}
	drive(t, tl)
	inputs, _ := split(tl.Records())
	// Drop the crash: the retry's invocation is then unknown to the kernel.
	var cut []kernel.TimelineRecord
	dropped := false
	for _, r := range inputs {
		if !dropped && r.Input.Kind == kernel.InputNodeEnd && r.Input.Err != nil {
			dropped = true
			continue
		}
		cut = append(cut, r)
	}
	if !dropped {
		t.Fatal("no failed end recorded")
	}
	// Renumber so that the gap is not taken for the end of the recording.
	for i := range cut {
		in := *cut[i].Input
		in.N = uint64(i + 1)
		cut[i].Input = &in
	}
	if _, err := record.Resimulate(cut); err == nil {
		t.Fatal("a recording without its crash resimulated without divergence")
	}
}

// Level control records no inputs; level full with a budget downgrades
// at the same input on every run of the same inputs, and keeps every
// control record.
func TestRecordingLevelsAndDeterministicDowngrade(t *testing.T) {
	run := func(pol record.Policy) []kernel.TimelineRecord {
		tl := &allRecords{}
		pools := &fakePools{opens: make(chan openRec, 8)}
		s, err := Open(Config{
			Kernel: kernel.SessionConfig{SessionID: "s1", Epoch: 1, VAD: kernel.VADConfig{Disabled: true},
				Graph: kernel.GraphSpec{
					Nodes: []kernel.NodeSpec{{ID: "n", Kind: "custom", Provider: "p", Timeout: time.Minute}},
					Edges: []kernel.EdgeSpec{{From: kernel.Ingress, To: "n"}, {From: "n", To: kernel.Egress}},
				}},
			Pools: pools, Timeline: tl, Recording: pol,
		})
		if err != nil {
			t.Fatal(err)
		}
		for turn := 0; turn < 3; turn++ {
			_ = s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechStart})
			o := nextOpen(t, pools)
			for i := 0; i < 10; i++ {
				_ = s.Ingest(frame(i))
			}
			_ = s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechEnd})
			o.h.OnEnd(nil)
			<-s.Idle()
			for s.ActiveTurn() != "" {
				<-s.Idle()
			}
		}
		s.Close("done")
		return tl.Records()
	}
	control := run(record.Policy{Level: kernel.LevelControl})
	full := run(record.Policy{Level: kernel.LevelFull})
	in, ctl := split(control)
	if len(in) != 0 {
		t.Fatalf("level control recorded %d inputs", len(in))
	}
	fin, fctl := split(full)
	if len(fin) == 0 {
		t.Fatal("level full recorded no inputs")
	}
	if len(ctl) != len(fctl) {
		t.Fatalf("control records: %d at level control, %d at level full", len(ctl), len(fctl))
	}
	budget := record.Policy{Level: kernel.LevelFull, Budget: 8 << 10}
	a, b := run(budget), run(budget)
	downgradeAt := func(recs []kernel.TimelineRecord) (string, int, []string) {
		at, n := "", 0
		var types []string
		for _, r := range recs {
			switch {
			case r.Input != nil:
				n++
			case r.Type == record.TypeLevel:
				at = r.Attrs["at_input"]
			}
			if record.IsReplayed(r) && r.Type != record.TypeLevel {
				types = append(types, r.Type+"/"+r.Reason)
			}
		}
		return at, n, types
	}
	atA, nA, typesA := downgradeAt(a)
	atB, nB, typesB := downgradeAt(b)
	if atA == "" {
		t.Fatal("an 8 KiB budget did not downgrade a session of 30 audio frames")
	}
	if atA != atB || nA != nB {
		t.Fatalf("downgrade at input %s (%d recorded) and at %s (%d recorded) for the same inputs", atA, nA, atB, nB)
	}
	if nA >= len(fin) {
		t.Fatalf("downgraded session recorded %d inputs, the full one %d", nA, len(fin))
	}
	// Every control record is still there, in the same order as at level control.
	_, want, _ := downgradeAt(control)
	_ = want
	_, _, typesC := downgradeAt(control)
	if fmt.Sprint(typesA) != fmt.Sprint(typesC) || fmt.Sprint(typesB) != fmt.Sprint(typesC) {
		t.Fatalf("control records after downgrade differ from level control:\n%v\n%v", typesA, typesC)
	}
	// The recorded prefix still resimulates to a prefix of the records.
	ia, ra := split(a)
	got, err := record.Resimulate(ia)
	if err != nil {
		t.Fatalf("resimulate downgraded prefix: %v", err)
	}
	if got.Complete || len(got.Records) == 0 || len(got.Records) > len(ra) {
		t.Fatalf("prefix resimulation: complete %v, %d records of %d", got.Complete, len(got.Records), len(ra))
	}
	if g, w := encode(t, got.Records), encode(t, ra[:len(got.Records)]); !bytes.Equal(g, w) {
		t.Fatalf("prefix differs:\n got %s\nwant %s", g, w)
	}
}

// The file writer keeps every record, control and input, in session
// order, and writes off the caller's goroutine.
func TestJSONLWriterKeepsEveryRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tl.jsonl")
	jl, err := CreateJSONL(path)
	if err != nil {
		t.Fatal(err)
	}
	mem := &allRecords{}
	drive(t, teeBoth{jl, mem})
	if err := jl.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var got []kernel.TimelineRecord
	for sc.Scan() {
		var r kernel.TimelineRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if g, w := encode(t, got), encode(t, mem.Records()); !bytes.Equal(g, w) {
		t.Fatalf("file has %d records, %d appended (or they differ)", len(got), len(mem.Records()))
	}
}

// Past its buffer the writer drops input records only (counted, marked
// in the file); every control record is written.
func TestJSONLWriterNeverDropsControlRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tl.jsonl")
	jl, err := CreateJSONLWith(path, WriterOptions{BufferBytes: 1, FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	mem := &allRecords{}
	drive(t, teeBoth{jl, mem})
	if err := jl.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	inputs, control := split(mem.Records())
	var gotControl, gotInputs, overflow int
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var r kernel.TimelineRecord
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		switch {
		case r.Input != nil:
			gotInputs++
		case r.Type == "timeline_overflow":
			overflow++
		case record.IsReplayed(r):
			gotControl++
		}
	}
	if gotControl != len(control) {
		t.Fatalf("%d control records written of %d", gotControl, len(control))
	}
	if jl.DroppedInputs() == 0 || gotInputs+int(jl.DroppedInputs()) != len(inputs) || overflow == 0 {
		t.Fatalf("inputs: %d written + %d dropped of %d; overflow markers %d", gotInputs, jl.DroppedInputs(), len(inputs), overflow)
	}
}

type teeBoth []Timeline

func (t teeBoth) Append(rec kernel.TimelineRecord) {
	for _, tl := range t {
		tl.Append(rec)
	}
}

// Append never waits on the disk: with the file a pipe nobody reads (a
// write would block once its 64 KiB buffer is full), thousands of
// appends still return; the records are written once the reader reads.
func TestJSONLAppendNeverWaitsOnTheDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tl.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	jl, err := CreateJSONLWith(path, WriterOptions{BufferBytes: 64 << 20, FlushEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000 // ~1 MB encoded: far past the pipe's buffer
	rec := benchRecords()["control"]
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			jl.Append(rec)
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Append blocked on a file nobody reads")
	}
	// Now read: the writer gets through and Close returns.
	if err := syscall.SetNonblock(int(r.Fd()), false); err != nil {
		t.Fatal(err)
	}
	lines := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(r)
		c := 0
		for sc.Scan() {
			c++
		}
		lines <- c
	}()
	if err := jl.Close(); err != nil {
		t.Fatal(err)
	}
	// The reader sees EOF once the writer's end is closed.
	if got := <-lines; got != n {
		t.Fatalf("%d lines read of %d appended", got, n)
	}
}
