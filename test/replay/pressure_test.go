package replay

import (
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/kernel/record"
	rr "github.com/rspp/rspp/replay"
	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/session"
)

// fakeEchoPools is a fake plugin pool (no process): each invocation,
// once its input closes, answers one text.final naming how many inputs
// it got, and ends. It never reports inputs taken, so a session's inputs
// are exactly what the test feeds plus these answers: the same script
// gives the same inputs.
type fakeEchoPools struct{}

type fakeEchoCall struct {
	h externalnode.Handler
	n int
}

func (fakeEchoPools) Open(_ string, _ externalnode.OpenRequest, _ []string, h externalnode.Handler) (session.Call, error) {
	return &fakeEchoCall{h: h}, nil
}

func (c *fakeEchoCall) Instance() string { return "fake-echo" }
func (c *fakeEchoCall) Send(eventabi.Event) error {
	c.n++
	return nil
}
func (c *fakeEchoCall) CloseInput() error {
	c.h.OnEvent(eventabi.Event{Type: eventabi.TypeTextFinal, Text: &eventabi.Text{Text: fmt.Sprintf("heard %d frames", c.n), Final: true}})
	c.h.OnEnd(nil)
	return nil
}
func (c *fakeEchoCall) Cancel(string) {}

type fakeBindings struct{}

func (fakeBindings) Binding(p string) (kernel.Binding, bool) {
	return kernel.Binding{Provider: p, Version: "fake", Pool: p}, true
}

// controlTap keeps every control record appended (what the file must
// hold), per session.
type controlTap struct {
	mu  sync.Mutex
	per map[string]int
}

func (c *controlTap) Append(rec kernel.TimelineRecord) {
	if rec.Input != nil || !record.IsReplayed(rec) {
		return
	}
	c.mu.Lock()
	c.per[rec.SessionID]++
	c.mu.Unlock()
}

// pressureRun runs 100 sessions of the same script (3 utterances of 60
// frames) at once into one timeline file with the config's tiny buffer.
func pressureRun(t *testing.T, cfg *config.Config, path string) (*rr.Timeline, *controlTap, int64) {
	t.Helper()
	tap := &controlTap{per: map[string]int{}}
	jl, err := session.CreateJSONLWith(path, session.WriterOptions{BufferBytes: cfg.TimelineBuffer()}, tap)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := session.Open(session.Config{
				Kernel: kernel.SessionConfig{SessionID: fmt.Sprintf("p-%03d", i), Epoch: 1, Bindings: fakeBindings{},
					VAD: kernel.VADConfig{Disabled: true}, OutstandingInputs: 1 << 20,
					Graph: kernel.GraphSpec{
						Nodes: []kernel.NodeSpec{{ID: "n", Kind: "custom", Provider: "fake", Timeout: time.Hour}},
						Edges: []kernel.EdgeSpec{{From: kernel.Ingress, To: "n", Capacity: 1 << 16}, {From: "n", To: kernel.Egress, Capacity: 1 << 16}},
					}},
				Pools: fakeEchoPools{}, Timeline: jl, Recording: cfg.Recording(), Tick: time.Hour,
			})
			if err != nil {
				errs <- err
				return
			}
			for turn := 0; turn < 3; turn++ {
				_ = s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechStart})
				for f := 0; f < 60; f++ {
					pcm := make([]byte, 640)
					pcm[f%640] = byte(turn + 1)
					_ = s.Ingest(eventabi.Event{Type: eventabi.TypeAudioFrame, Audio: &eventabi.Audio{PCM: pcm, SampleRate: 16000, Channels: 1}})
				}
				_ = s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechEnd})
				for s.ActiveTurn() != "" {
					<-s.Idle()
				}
			}
			s.Close("done")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := jl.Close(); err != nil {
		t.Fatal(err)
	}
	tl, err := rr.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return tl, tap, jl.DroppedInputs()
}

// Timeline pressure: a tiny timeline buffer and 100 sessions. Every
// session downgrades from full to control at the same input, on both
// runs of the same script (the rule counts recorded bytes, never time);
// every control record reaches the file; resimulation reproduces each
// session's recorded prefix, its downgrade record included.
func TestTimelinePressureDowngradesDeterministically(t *testing.T) {
	// A 16KiB buffer (budget derived: 128KiB a session; the writer's
	// safety net drops inputs too, and check must say so) and an 8MiB one
	// with a 64KiB session budget explicit (100 sessions cannot fill it:
	// no drop, and every session resimulates).
	for _, tc := range []struct {
		name, timeline string
		budget         int64
	}{
		{"tiny-buffer", "  buffer: 16KiB\n", 8 * 16 << 10},
		{"session-budget", "  buffer: 8MiB\n  session_budget: 64KiB\n", 64 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) { pressure(t, tc.timeline, tc.budget) })
	}
}

func pressure(t *testing.T, timeline string, budget int64) {
	cfg, err := config.Parse([]byte(`version: 1
providers:
  fake: {kind: custom, binary: /bin/true}
pipeline:
  nodes: [{id: n, provider: fake}]
  edges: [{from: ingress, to: n}, {from: n, to: egress}]
timeline:
`+timeline), filepath.Join(t.TempDir(), "pressure.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if pol := cfg.Recording(); pol.Level != kernel.LevelFull || pol.Budget != budget {
		t.Fatalf("recording policy: %+v, want budget %d", pol, budget)
	}
	points := func(tl *rr.Timeline) map[string]string {
		out := map[string]string{}
		for _, s := range tl.Sessions {
			n := 0
			for _, l := range s.Lines {
				if l.Rec.Type == record.TypeLevel {
					n++
					out[s.ID] = l.Rec.Attrs["at_input"] + "/" + l.Rec.Attrs["spent_bytes"]
				}
			}
			if n != 1 {
				t.Fatalf("session %s has %d recording_level records", s.ID, n)
			}
		}
		return out
	}
	var first map[string]string
	for run := 0; run < 2; run++ {
		tl, tap, dropped := pressureRun(t, cfg, filepath.Join(t.TempDir(), "tl.jsonl"))
		if len(tl.Sessions) != 100 {
			t.Fatalf("run %d: %d sessions in the file", run, len(tl.Sessions))
		}
		// Control evidence: every control record in the file, each
		// session's kernel records numbered without a gap.
		for _, s := range tl.Sessions {
			n, seq := 0, uint64(0)
			for _, l := range s.Lines {
				if l.Rec.Input == nil && record.IsReplayed(l.Rec) {
					n++
					if l.Rec.Seq > 0 {
						if l.Rec.Seq != seq+1 {
							t.Fatalf("run %d session %s: kernel record %d after %d", run, s.ID, l.Rec.Seq, seq)
						}
						seq = l.Rec.Seq
					}
				}
			}
			if n != tap.per[s.ID] {
				t.Fatalf("run %d session %s: %d control records in the file, %d appended", run, s.ID, n, tap.per[s.ID])
			}
		}
		p := points(tl)
		vals := map[string]bool{}
		for _, v := range p {
			vals[v] = true
		}
		if len(vals) != 1 {
			keys := make([]string, 0, len(vals))
			for v := range vals {
				keys = append(keys, v)
			}
			sort.Strings(keys)
			t.Fatalf("run %d: sessions of the same script downgraded at different points (input/bytes): %v", run, keys)
		}
		if first == nil {
			first = p
		} else if fmt.Sprint(first) != fmt.Sprint(p) {
			t.Fatalf("downgrade points differ between runs:\n%v\n%v", first, p)
		}
		t.Logf("run %d: every session downgraded at input/bytes %v; writer dropped %d input records", run, p["p-001"], dropped)
		// OR-02: at level control from the downgrade on, every turn keeps
		// its evidence, unless the writer's own safety net dropped inputs
		// (then check must say so).
		rep := rr.Check(tl)
		if dropped == 0 && !rep.OK() {
			t.Fatalf("run %d: evidence incomplete without writer drops: %v", run, rep.Incomplete())
		}
		if dropped > 0 && rep.OK() {
			t.Fatalf("run %d: the writer dropped %d inputs and check did not notice", run, dropped)
		}
		if dropped == 0 {
			t.Logf("run %d: all %d sessions resimulated to their recorded prefix", run, len(tl.Sessions))
			for _, r := range rr.Resimulate(tl) {
				if !r.OK() || r.Complete {
					t.Fatalf("run %d session %s: resimulation %+v", run, r.Session, r)
				}
				if last := lastReplayedType(tl, r.Session, r.Records); last != record.TypeLevel {
					t.Fatalf("run %d session %s: resimulated prefix ends with %s, not the downgrade", run, r.Session, last)
				}
			}
		}
	}
}

// lastReplayedType is the type of the n-th replayed record of a session.
func lastReplayedType(tl *rr.Timeline, session string, n int) string {
	for _, s := range tl.Sessions {
		if s.ID != session {
			continue
		}
		i := 0
		for _, l := range s.Lines {
			if l.Rec.Input == nil && record.IsReplayed(l.Rec) {
				i++
				if i == n {
					return l.Rec.Type
				}
			}
		}
	}
	return ""
}
