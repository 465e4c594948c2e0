package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/providers/espeak/synth"
	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/admin"
	"github.com/rspp/rspp/supervisor/pool"
)

// ExampleConfig measures the example pipeline (pocketsphinx, rules,
// espeak: real speech engines) under `rspp serve --realtime`: a ladder of
// session counts with its pools autoscaled (Instances, e.g. {min: 1,
// max: 4}), and the HA example at HASessions sessions with one STT
// instance SIGKILLed at HAKillAt.
type ExampleConfig struct {
	BinDir      string
	ExamplesDir string // examples/: voice-agent.yaml, voice-agent-ha.yaml, grammar.jsgf, replies.yaml
	Ladder      []int
	Phase       time.Duration
	Instances   string
	HASessions  int
	HAPhase     time.Duration // 0: skip the HA run
	HAKillAt    time.Duration
	TempDir     string
	Log         io.Writer
}

// Example is the "example_pipeline" section of results.json.
type Example struct {
	Instances string          `json:"instances"`
	Points    []CapacityPoint `json:"points"`
	// LargestAllCommitted is the largest N whose turns all committed.
	LargestAllCommitted int `json:"largest_n_all_committed"`
	// PastCapacity runs LargestAllCommitted+1 sessions with
	// admission.max_sessions at LargestAllCommitted: one is refused
	// (typed), the admitted ones should all commit.
	PastCapacity *CapacityPoint `json:"past_capacity,omitempty"`
	HA           *HARun         `json:"ha,omitempty"`
	Notes        []string       `json:"notes,omitempty"`
	At           time.Time      `json:"at"`
}

// HARun is the HA example with one STT instance SIGKILLed.
type HARun struct {
	Sessions int           `json:"sessions"`
	Point    CapacityPoint `json:"point"`
	KilledAt float64       `json:"killed_at_s"`
	Victim   string        `json:"victim"`
	// Windows: per second after the kill, turns opened and committed.
	Windows []HAWindow `json:"windows"`
	// RecoverySeconds: from the kill to the start of the first 1 s window
	// after which every turn opened commits (-1: never).
	RecoverySeconds float64 `json:"recovery_s"`
	// ServedAfter: invocations opened per STT instance between the
	// replacement and the end of feeding.
	ServedAfter map[string]int64 `json:"stt_served_after_replacement"`
	Error       string           `json:"error,omitempty"`
}

// HAWindow is one second of the HA run.
type HAWindow struct {
	FromS     float64 `json:"from_s"`
	Opened    int     `json:"opened"`
	Committed int     `json:"committed"`
}

var instancesLine = regexp.MustCompile(`(?m)^    instances: .*\n`)
var kindLine = regexp.MustCompile(`(?m)^(    kind: \w+\n)`)

// exampleConfig rewrites an example config to run from a temp dir: its
// own state dir, absolute binaries and files, and (if set) instances.
func exampleConfig(src []byte, binDir, examples, state, instances string) string {
	s := string(src)
	s = strings.ReplaceAll(s, "binary: ../bin/", "binary: "+binDir+"/")
	s = strings.ReplaceAll(s, "grammar: grammar.jsgf", "grammar: "+filepath.Join(examples, "grammar.jsgf"))
	s = strings.ReplaceAll(s, "replies: replies.yaml", "replies: "+filepath.Join(examples, "replies.yaml"))
	if strings.Contains(s, "\nruntime:\n") {
		s = strings.Replace(s, "\nruntime:\n", "\nruntime:\n  state_dir: "+state+"\n", 1)
	} else {
		s = strings.Replace(s, "version: 1\n", "version: 1\nruntime:\n  state_dir: "+state+"\n", 1)
	}
	if instances != "" {
		s = instancesLine.ReplaceAllString(s, "")
		s = kindLine.ReplaceAllString(s, "${1}    instances: "+instances+"\n")
	}
	return s
}

func (c *ExampleConfig) logf(format string, a ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", a...)
	}
}

// MeasureExample runs the example ladder and the HA run.
func MeasureExample(ctx context.Context, c ExampleConfig) (*Example, error) {
	var err error
	if c.BinDir, err = filepath.Abs(c.BinDir); err != nil {
		return nil, err
	}
	if c.ExamplesDir, err = filepath.Abs(c.ExamplesDir); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(c.TempDir, "rspp-bench-example-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	s, err := synth.NewSynth("", "", "", 0)
	if err != nil {
		return nil, err
	}
	pcm, err := s.Synthesize(ctx, "what time is it")
	if err != nil {
		return nil, err
	}
	wav := filepath.Join(dir, "what-time-is-it.wav")
	if err := writeWAV(wav, pcm); err != nil {
		return nil, err
	}
	// One utterance every ~3 s, as in the figures.
	gap := max(3*time.Second-time.Duration(len(pcm)/32)*time.Millisecond, 500*time.Millisecond)
	ex := &Example{Instances: c.Instances, At: time.Now().UTC()}
	base, err := os.ReadFile(filepath.Join(c.ExamplesDir, "voice-agent.yaml"))
	if err != nil {
		return nil, err
	}
	for _, n := range c.Ladder {
		if ctx.Err() != nil {
			break
		}
		state, err := os.MkdirTemp("", "rse")
		if err != nil {
			return nil, err
		}
		cfg := filepath.Join(dir, fmt.Sprintf("example-%d.yaml", n))
		if err := os.WriteFile(cfg, []byte(exampleConfig(base, c.BinDir, c.ExamplesDir, state, c.Instances)), 0o644); err != nil {
			return nil, err
		}
		c.logf("example pipeline: %d sessions, instances %s, for %s ...", n, c.Instances, c.Phase)
		p := runServe(ctx, serveRun{rspp: filepath.Join(c.BinDir, "rspp"), cfg: cfg, wav: wav, sessions: n, phase: c.Phase, gap: gap})
		_ = os.RemoveAll(state)
		c.logf("example pipeline: %d sessions: %.1f%% of %d committed, p50 %.0f ms, p99 %.0f ms %s", n, p.CommittedPct, p.TurnsOpened, p.LatencyP50Ms, p.LatencyP99Ms, firstLine(p.Error))
		ex.Points = append(ex.Points, p)
		if p.Error == "" && p.TurnsOpened > 0 && p.Committed == p.TurnsOpened && p.Lost == 0 && n > ex.LargestAllCommitted {
			ex.LargestAllCommitted = n
		}
	}
	if n := ex.LargestAllCommitted; n > 0 && ctx.Err() == nil {
		state, err := os.MkdirTemp("", "rse")
		if err != nil {
			return nil, err
		}
		cfg := filepath.Join(dir, "example-past.yaml")
		text := exampleConfig(base, c.BinDir, c.ExamplesDir, state, c.Instances) + fmt.Sprintf("admission:\n  max_sessions: %d\n", n)
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			return nil, err
		}
		c.logf("example pipeline: %d sessions past max_sessions %d ...", n+1, n)
		p := runServe(ctx, serveRun{rspp: filepath.Join(c.BinDir, "rspp"), cfg: cfg, wav: wav, sessions: n + 1, phase: c.Phase, gap: gap})
		_ = os.RemoveAll(state)
		ex.PastCapacity = &p
	}
	if c.HAPhase > 0 && ctx.Err() == nil {
		ha, err := c.haRun(ctx, dir, wav, gap)
		if err != nil {
			return ex, err
		}
		ex.HA = ha
	}
	return ex, nil
}

// haRun runs the HA example and SIGKILLs one STT instance at HAKillAt.
func (c *ExampleConfig) haRun(ctx context.Context, dir, wav string, gap time.Duration) (*HARun, error) {
	src, err := os.ReadFile(filepath.Join(c.ExamplesDir, "voice-agent-ha.yaml"))
	if err != nil {
		return nil, err
	}
	state, err := os.MkdirTemp("", "rsh")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(state)
	cfg := filepath.Join(dir, "ha.yaml")
	if err := os.WriteFile(cfg, []byte(exampleConfig(src, c.BinDir, c.ExamplesDir, state, "")), 0o644); err != nil {
		return nil, err
	}
	ha := &HARun{Sessions: c.HASessions, KilledAt: c.HAKillAt.Seconds(), RecoverySeconds: -1}
	timeline := filepath.Join(dir, "ha-timeline.jsonl")
	var killMono int64 // serve's process clock at the kill (ns since its start)
	var before map[string]int64
	sock := supervisor.AdminSocketPath("", state)
	status := func(ctx context.Context) (pool.Status, bool) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		resp, err := admin.Call(cctx, sock, admin.Request{Op: "status"})
		if err != nil {
			return pool.Status{}, false
		}
		for _, p := range resp.Pools {
			if p.Provider == "pocketsphinx" {
				return p, true
			}
		}
		return pool.Status{}, false
	}
	c.logf("HA example: %d sessions for %s, SIGKILL of an STT instance at %s ...", c.HASessions, c.HAPhase, c.HAKillAt)
	ha.Point = runServe(ctx, serveRun{rspp: filepath.Join(c.BinDir, "rspp"), cfg: cfg, wav: wav, sessions: c.HASessions, phase: c.HAPhase, gap: gap,
		timeline: timeline, during: func(ctx context.Context, pid int, start time.Time) {
			select {
			case <-time.After(time.Until(start.Add(c.HAKillAt))):
			case <-ctx.Done():
				return
			}
			st, ok := status(ctx)
			if !ok || len(st.Pids) == 0 {
				ha.Error = "no STT pool in the admin status at the kill"
				return
			}
			names := make([]string, 0, len(st.Served))
			for name := range st.Served {
				names = append(names, name)
			}
			sort.Slice(names, func(i, j int) bool { return st.Served[names[i]] > st.Served[names[j]] })
			ha.Victim = names[0]
			_ = syscall.Kill(st.PidOf[ha.Victim], syscall.SIGKILL)
			killMono = int64(time.Since(start))
			// After the replacement is ready (or 5 s), note what each
			// instance had served; the end of feeding gives the rest.
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
				if st, ok := status(ctx); ok && len(st.Instances) >= 2 && allReady(st) {
					if _, gone := st.Instances[ha.Victim]; !gone {
						before = st.Served
						break
					}
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
			select {
			case <-time.After(time.Until(start.Add(c.HAPhase - time.Second))):
			case <-ctx.Done():
				return
			}
			if st, ok := status(ctx); ok && before != nil {
				ha.ServedAfter = map[string]int64{}
				for name, n := range st.Served {
					ha.ServedAfter[name] = n - before[name]
				}
			}
		}})
	recs, err := readTimeline(timeline)
	if err != nil {
		return ha, err
	}
	ha.Windows, ha.RecoverySeconds = haWindows(recs, killMono, c.HAPhase-c.HAKillAt)
	return ha, nil
}

func allReady(st pool.Status) bool {
	for _, s := range st.Instances {
		if s != "ready" {
			return false
		}
	}
	return true
}

// haWindows buckets the turns opened after the kill by second and finds
// when commits came back for good. killMono is on the serve process's
// clock, which the timeline's MonoNanos use (both count from about its
// start).
func haWindows(recs []kernel.TimelineRecord, killMono int64, span time.Duration) ([]HAWindow, float64) {
	type turn struct {
		open   int64
		commit bool
	}
	turns := map[string]*turn{}
	for _, r := range recs {
		k := r.SessionID + "/" + r.TurnID
		switch r.Type {
		case "turn_open":
			turns[k] = &turn{open: r.MonoNanos}
		case "turn_commit":
			if t := turns[k]; t != nil {
				t.commit = true
			}
		}
	}
	nw := int(span / time.Second)
	w := make([]HAWindow, max(nw, 0))
	for i := range w {
		w[i].FromS = float64(i)
	}
	for _, t := range turns {
		i := int((t.open - killMono) / int64(time.Second))
		if t.open < killMono || i >= len(w) {
			continue
		}
		w[i].Opened++
		if t.commit {
			w[i].Committed++
		}
	}
	recovery := -1.0
	for i := len(w) - 1; i >= 0; i-- {
		if w[i].Committed != w[i].Opened {
			break
		}
		recovery = float64(i)
	}
	return w, recovery
}

func printExample(w io.Writer, e *Example) {
	fmt.Fprintf(w, "\nexample pipeline (pocketsphinx, rules, espeak), instances %s\n", e.Instances)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "sessions\tcommitted\tp50 ms\tp99 ms\tRSS KiB\tload1 before/after\terror\t")
	for _, p := range e.Points {
		fmt.Fprintf(tw, "%d\t%.1f%% of %d\t%.0f\t%.0f\t%d\t%.2f/%.2f\t%s\t\n", p.Sessions, p.CommittedPct, p.TurnsOpened, p.LatencyP50Ms, p.LatencyP99Ms,
			p.RSSPeakKiB, p.LoadBefore[0], p.LoadAfter[0], firstLine(p.Error))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "largest N with every turn committed: %d\n", e.LargestAllCommitted)
	if p := e.PastCapacity; p != nil {
		fmt.Fprintf(w, "%d sessions against max_sessions %d: refused %v (lost %d), admitted ones %.1f%% of %d committed %s\n",
			p.Sessions, p.Sessions-1, p.Refused, p.Lost, p.CommittedPct, p.TurnsOpened, firstLine(p.Error))
	}
	if h := e.HA; h != nil {
		fmt.Fprintf(w, "HA example, %d sessions, STT instance %s SIGKILLed at %.0f s: %.1f%% of %d committed overall; commits back to 100%% %.0f s after the kill; STT invocations after the replacement %v %s\n",
			h.Sessions, h.Victim, h.KilledAt, h.Point.CommittedPct, h.Point.TurnsOpened, h.RecoverySeconds, h.ServedAfter, firstLine(h.Error))
		for _, x := range h.Windows {
			fmt.Fprintf(w, "  +%2.0f s: %d opened, %d committed\n", x.FromS, x.Opened, x.Committed)
		}
	}
}
