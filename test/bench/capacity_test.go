package bench

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/supervisor/config"
)

func TestParseServeOutput(t *testing.T) {
	out := "serving 3 sessions; admin socket /x\nlost: serve-3: session refused: max_sessions: at its limit of 2\n" +
		`load: {"latency_p50_ms":406,"latency_p99_ms":724,"replies":25,"egress_lateness_p99_ms":22,"frames_in":3750,"frames_out":625}` + "\n" +
		"sessions: 2, turns opened: 25, committed: 24, aborted: 1, wrong terminals: 0\n"
	sum, term, lost, err := parseServe(out)
	if err != nil {
		t.Fatal(err)
	}
	if sum.LatencyP99Ms != 724 || sum.LatenessP99Ms != 22 || sum.FramesIn != 3750 || term != [4]int{25, 24, 1, 0} || lost != 1 {
		t.Fatalf("parsed %+v %v lost %d", sum, term, lost)
	}
	if _, _, _, err := parseServe("sessions: 2, turns opened: 25, committed: 24, aborted: 1, wrong terminals: 0\n"); err == nil {
		t.Fatal("output without a load line parsed")
	}
	if _, _, _, err := parseServe(`load: {"latency_p50_ms":1}` + "\n"); err == nil {
		t.Fatal("output without a terminals line parsed")
	}
}

// The rewritten example configs load (binaries, files, state dir and
// instances in place).
func TestExampleConfigRewriteLoads(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "bin")
	for _, b := range []string{"providers/pocketsphinx", "providers/rules", "providers/espeak"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			t.Skipf("needs make build: %v", err)
		}
	}
	examples := filepath.Join(root, "examples")
	for _, c := range []struct{ file, instances string }{{"voice-agent.yaml", "{min: 1, max: 4}"}, {"voice-agent-ha.yaml", ""}} {
		src, err := os.ReadFile(filepath.Join(examples, c.file))
		if err != nil {
			t.Fatal(err)
		}
		state := t.TempDir()
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte(exampleConfig(src, bin, examples, state, c.instances)), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatalf("%s rewritten: %v", c.file, err)
		}
		if cfg.Runtime.StateDir != state {
			t.Errorf("%s: state dir %q", c.file, cfg.Runtime.StateDir)
		}
		for name, p := range cfg.Providers {
			want := config.PoolSize{Min: 1, Max: 4}
			if c.instances == "" {
				want = config.PoolSize{Min: 2, Max: 2}
			}
			if p.Instances.Min != want.Min || p.Instances.Max != want.Max {
				t.Errorf("%s: provider %s instances %+v, want %+v", c.file, name, p.Instances, want)
			}
		}
		if strings.Contains(exampleConfig(src, bin, examples, state, c.instances), "../bin") {
			t.Errorf("%s: relative binary left", c.file)
		}
	}
}

func TestHAWindowsFindRecovery(t *testing.T) {
	s := int64(time.Second)
	var recs []kernel.TimelineRecord
	turn := func(id string, at int64, commit bool) {
		recs = append(recs, kernel.TimelineRecord{Type: "turn_open", SessionID: "s", TurnID: id, MonoNanos: at})
		typ := "turn_abort"
		if commit {
			typ = "turn_commit"
		}
		recs = append(recs, kernel.TimelineRecord{Type: typ, SessionID: "s", TurnID: id, MonoNanos: at + s/2})
	}
	kill := 10 * s
	turn("before", 9*s, false) // opened before the kill: not counted
	turn("a", kill+s/10, false)
	turn("b", kill+s+s/10, true)
	turn("c", kill+2*s+s/10, false)
	turn("d", kill+3*s+s/10, true)
	turn("e", kill+4*s+s/10, true)
	w, rec := haWindows(recs, kill, 6*time.Second)
	if len(w) != 6 || w[0].Opened != 1 || w[0].Committed != 0 || w[3].Committed != 1 {
		t.Fatalf("windows %+v", w)
	}
	if rec != 3 {
		t.Fatalf("recovery %v s, want 3 (the last failed turn opened in second 2)", rec)
	}
	if _, rec := haWindows(recs[:4], kill, 2*time.Second); rec != 1 {
		t.Fatalf("recovery %v, want 1", rec)
	}
}

// A rung reports its run of median p99; a failed or lossy run sorts last
// and keeps the rung from counting as clean.
func TestMedianRunOfARung(t *testing.T) {
	run := func(p99 float64, committed int, err string) CapacityPoint {
		return CapacityPoint{Sessions: 1000, TurnsOpened: 100, Committed: committed, CommittedPct: float64(committed), LatencyP99Ms: p99, Error: err}
	}
	m := medianRun([]CapacityPoint{run(470, 100, ""), run(440, 100, ""), run(452, 100, "")})
	if m.LatencyP99Ms != 452 || !m.allClean {
		t.Errorf("median run p99 %v clean %v, want 452 and clean", m.LatencyP99Ms, m.allClean)
	}
	if want := []float64{470, 440, 452}; !slices.Equal(m.RunsP99Ms, want) {
		t.Errorf("runs p99 %v, want %v in run order", m.RunsP99Ms, want)
	}
	m = medianRun([]CapacityPoint{run(0, 0, "serve: exit status 1"), run(440, 100, ""), run(452, 99, "")})
	if m.LatencyP99Ms != 452 || m.allClean {
		t.Errorf("with a failed run: median p99 %v clean %v, want 452 (the failed run sorts last) and not clean", m.LatencyP99Ms, m.allClean)
	}
	one := medianRun([]CapacityPoint{run(440, 100, "")})
	if one.LatencyP99Ms != 440 || !one.allClean || one.RunsP99Ms != nil {
		t.Errorf("single run: %+v", one)
	}
}
