package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

// CapacityConfig is the capacity ladder: `rspp serve --realtime
// --play-out` with the light pipeline (energystt -> rules -> tonetts,
// plugins written with the public SDK, no speech engine), one utterance
// per session every Cycle, at each session count of Ladder for Phase.
type CapacityConfig struct {
	// BinDir holds rspp, providers/rules, bench/energystt, bench/tonetts.
	BinDir  string
	Replies string // the rules provider's replies.yaml
	Ladder  []int
	Phase   time.Duration
	// Runs is how many times each rung runs (default 1); the rung reports
	// the run of median p99, the others' figures beside it.
	Runs    int
	TempDir string
	// Soak, if set, also runs SoakSessions sessions for Soak and samples
	// the supervisor's RSS every SoakEvery.
	Soak         time.Duration
	SoakSessions int
	SoakEvery    time.Duration
	// Instances is the light pipeline's pool size (a number or {min, max}).
	Instances string
	// Log receives progress lines (nil: none).
	Log io.Writer
}

// Capacity is the "capacity" section of results.json.
type Capacity struct {
	Pipeline string          `json:"pipeline"`
	Points   []CapacityPoint `json:"points"`
	// BaselineP99Ms is the p99 at the smallest ladder point (10 sessions
	// by default); LargestWithin50ms the largest N with 100 % commits and
	// p99 within 50 ms of it.
	BaselineP99Ms     float64    `json:"baseline_p99_ms"`
	BaselineSessions  int        `json:"baseline_sessions"`
	LargestWithin50ms int        `json:"largest_n_p99_within_50ms"`
	Soak              *Soak      `json:"soak,omitempty"`
	Notes             []string   `json:"notes,omitempty"`
	Method            [][]string `json:"method,omitempty"`
}

// CapacityPoint is one rung of the ladder.
type CapacityPoint struct {
	Sessions      int     `json:"sessions"`
	Seconds       float64 `json:"seconds"`
	TurnsOpened   int     `json:"turns_opened"`
	Committed     int     `json:"turns_committed"`
	CommittedPct  float64 `json:"committed_pct"`
	Aborted       int     `json:"turns_aborted"`
	Wrong         int     `json:"wrong_terminals"`
	Lost          int     `json:"sessions_lost"`
	LatencyP50Ms  float64 `json:"latency_p50_ms"`
	LatencyP99Ms  float64 `json:"latency_p99_ms"`
	LatenessP99Ms float64 `json:"egress_lateness_p99_ms"`
	// RSS of the rspp process (plugins are other processes): peak, and
	// per session at the end of feeding; slope: growth per turn between
	// the warm mark (stagger + 5 s) and the end of feeding.
	RSSPeakKiB       int64   `json:"rss_peak_kib"`
	RSSPerSessionKiB float64 `json:"rss_per_session_kib"`
	// RSSMarginalKiB is (RSS - RSS at the smallest rung) / (N - its N):
	// what one more session costs, without the process's fixed base.
	RSSMarginalKiB   float64 `json:"rss_marginal_per_session_kib,omitempty"`
	RSSAtStopKiB     int64   `json:"rss_end_of_feed_kib"`
	RSSSlopePerTurnB float64 `json:"rss_slope_bytes_per_turn"`
	// CPU of the rspp process per frame crossing its plugin boundary
	// (each fed frame goes to the STT plugin; each agent frame comes back
	// from the TTS plugin).
	CPUPerFrameUs float64    `json:"cpu_per_boundary_frame_us"`
	FramesIn      uint64     `json:"frames_in"`
	FramesOut     uint64     `json:"frames_out"`
	LoadBefore    [3]float64 `json:"loadavg_before"`
	LoadAfter     [3]float64 `json:"loadavg_after"`
	// Refused counts sessions admission refused, by reason.
	Refused map[string]int64 `json:"refused,omitempty"`
	Error   string           `json:"error,omitempty"`
	// With CapacityConfig.Runs > 1: every run's p99 and commits, in run
	// order (the point itself is the run of median p99).
	RunsP99Ms        []float64 `json:"runs_p99_ms,omitempty"`
	RunsCommittedPct []float64 `json:"runs_committed_pct,omitempty"`
	allClean         bool      // every run clean (medianRun)
}

// clean: the run ended without error, every turn it opened committed and
// no session was lost.
func (p CapacityPoint) clean() bool {
	return p.Error == "" && p.TurnsOpened > 0 && p.Committed == p.TurnsOpened && p.Lost == 0
}

// Soak is the long run's RSS curve.
type Soak struct {
	Sessions int       `json:"sessions"`
	Seconds  float64   `json:"seconds"`
	Curve    []RSSMark `json:"rss_curve"`
	// GrowthPct is the RSS growth from the first minute's mark to the end.
	GrowthPct    float64    `json:"rss_growth_after_first_minute_pct"`
	CommittedPct float64    `json:"committed_pct"`
	LoadBefore   [3]float64 `json:"loadavg_before"`
	LoadAfter    [3]float64 `json:"loadavg_after"`
	Error        string     `json:"error,omitempty"`
}

// RSSMark is one sample of the curve.
type RSSMark struct {
	Seconds float64 `json:"s"`
	RSSKiB  int64   `json:"rss_kib"`
}

const capacityCycleGap = 2 * time.Second // silence after each 1 s utterance: one every ~3 s

var lightConfig = `version: 1
runtime:
  state_dir: %s
providers:
  energystt:
    kind: stt
    binary: %s
    instances: %s
  rules:
    kind: llm
    binary: %s
    instances: %s
    config:
      replies: %s
  tonetts:
    kind: tts
    binary: %s
    instances: %s
    config: {frames: 25}
pipeline:
  nodes:
    - {id: stt, provider: energystt, timeout: 15s}
    - {id: llm, provider: rules, timeout: 15s}
    - {id: tts, provider: tonetts, timeout: 15s}
  edges:
    - {from: ingress, to: stt}
    - {from: stt, to: llm}
    - {from: llm, to: tts}
    - {from: tts, to: egress}
vad: {threshold_db: -40, min_speech: 60ms, hangover: 400ms}
`

func (c *CapacityConfig) logf(format string, a ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", a...)
	}
}

// MeasureCapacity runs the ladder (and the soak, if asked).
func MeasureCapacity(ctx context.Context, c CapacityConfig) (*Capacity, error) {
	var err error
	if c.BinDir, err = filepath.Abs(c.BinDir); err != nil {
		return nil, err
	}
	if c.Replies, err = filepath.Abs(c.Replies); err != nil {
		return nil, err
	}
	if c.Instances == "" {
		c.Instances = "1"
	}
	dir, err := os.MkdirTemp(c.TempDir, "rspp-bench-capacity-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	wav := filepath.Join(dir, "utterance.wav")
	if err := writeToneWAV(wav, time.Second); err != nil {
		return nil, err
	}
	capy := &Capacity{Pipeline: "energystt -> rules -> tonetts (SDK nodes), instances " + c.Instances + ", 1 s utterance + 2 s gap per session, agent audio played out in real time",
		Method: [][]string{
			{"latency", "scheduled end of the utterance -> first agent audio frame at the transport (includes the VAD's 400 ms hangover)"},
			{"egress lateness", "per agent frame: arrival - (first frame of its turn + 20 ms per frame)"},
			{"rss", "VmRSS of the rspp process only, sampled every second"},
			{"cpu per boundary frame", "rspp utime+stime / (frames fed to STT + agent frames from TTS)"},
		}}
	for _, n := range c.Ladder {
		if ctx.Err() != nil {
			break
		}
		capy.Points = append(capy.Points, c.rung(ctx, dir, wav, n))
	}
	if len(capy.Points) > 0 {
		base := capy.Points[0]
		capy.BaselineP99Ms, capy.BaselineSessions = base.LatencyP99Ms, base.Sessions
		for i := range capy.Points[1:] {
			p := &capy.Points[i+1]
			if d := p.Sessions - base.Sessions; d > 0 && p.RSSAtStopKiB > 0 {
				p.RSSMarginalKiB = float64(p.RSSAtStopKiB-base.RSSAtStopKiB) / float64(d)
			}
		}
		for _, p := range capy.Points {
			if p.allClean && p.LatencyP99Ms <= base.LatencyP99Ms+50 && p.Sessions > capy.LargestWithin50ms {
				capy.LargestWithin50ms = p.Sessions
			}
		}
	}
	if c.Soak > 0 && ctx.Err() == nil {
		c.logf("soak: %d sessions for %s ...", c.SoakSessions, c.Soak)
		capy.Soak = c.soak(ctx, dir, wav)
	}
	return capy, nil
}

// rung runs n sessions c.Runs times and returns the run of median p99
// (a failed run counts as the slowest) with every run's p99 and commits.
func (c *CapacityConfig) rung(ctx context.Context, dir, wav string, n int) CapacityPoint {
	var runs []CapacityPoint
	for i := range max(1, c.Runs) {
		if i > 0 && ctx.Err() != nil {
			break
		}
		c.logf("capacity: %d sessions for %s (run %d of %d) ...", n, c.Phase, i+1, max(1, c.Runs))
		p := c.point(ctx, dir, wav, n, c.Phase, nil)
		c.logf("capacity: %d sessions: %.1f%% committed, p50 %.0f ms, p99 %.0f ms, lateness p99 %.0f ms, %.0f KiB/session, load %.2f %s",
			n, p.CommittedPct, p.LatencyP50Ms, p.LatencyP99Ms, p.LatenessP99Ms, p.RSSPerSessionKiB, p.LoadAfter[0], p.Error)
		runs = append(runs, p)
	}
	return medianRun(runs)
}

// medianRun is the run of median p99 among runs (failed runs sort last),
// carrying every run's p99 and commits; allClean says whether every run
// was clean.
func medianRun(runs []CapacityPoint) CapacityPoint {
	key := func(p CapacityPoint) float64 {
		if p.Error != "" || p.TurnsOpened == 0 {
			return math.Inf(1)
		}
		return p.LatencyP99Ms
	}
	sorted := slices.Clone(runs)
	slices.SortStableFunc(sorted, func(a, b CapacityPoint) int { return cmp.Compare(key(a), key(b)) })
	m := sorted[len(sorted)/2]
	m.allClean = true
	for _, p := range runs {
		m.allClean = m.allClean && p.clean()
		if len(runs) > 1 {
			m.RunsP99Ms = append(m.RunsP99Ms, p.LatencyP99Ms)
			m.RunsCommittedPct = append(m.RunsCommittedPct, p.CommittedPct)
		}
	}
	return m
}

// point runs one serve of n light sessions for phase. marks, if set,
// receives the RSS curve.
func (c *CapacityConfig) point(ctx context.Context, dir, wav string, n int, phase time.Duration, marks *[]RSSMark) CapacityPoint {
	state, err := os.MkdirTemp("", "rsc")
	if err != nil {
		return CapacityPoint{Sessions: n, Error: err.Error()}
	}
	defer os.RemoveAll(state)
	cfg := fmt.Sprintf(lightConfig, state, filepath.Join(c.BinDir, "bench", "energystt"), c.Instances,
		filepath.Join(c.BinDir, "providers", "rules"), c.Instances, c.Replies, filepath.Join(c.BinDir, "bench", "tonetts"), c.Instances)
	cfgPath := filepath.Join(dir, fmt.Sprintf("light-%d.yaml", n))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return CapacityPoint{Sessions: n, Error: err.Error()}
	}
	return runServe(ctx, serveRun{rspp: filepath.Join(c.BinDir, "rspp"), cfg: cfgPath, wav: wav, sessions: n, phase: phase,
		gap: capacityCycleGap, playOut: true, marks: marks})
}

// serveRun is one `rspp serve --realtime` measured from outside.
type serveRun struct {
	rspp, cfg, wav string
	sessions       int
	phase, gap     time.Duration
	playOut        bool
	timeline       string // if set: --timeline
	marks          *[]RSSMark
	// during, if set, runs beside the serve once it started (start is
	// when it was started); it must return by the time ctx ends.
	during func(ctx context.Context, pid int, start time.Time)
}

func runServe(ctx context.Context, r serveRun) (p CapacityPoint) {
	n, phase, marks := r.sessions, r.phase, r.marks
	p = CapacityPoint{Sessions: n, Seconds: phase.Seconds(), LoadBefore: loadAvg()}
	defer func() { p.LoadAfter = loadAvg() }()
	stagger := 3 * time.Second
	args := []string{"serve", "--config", r.cfg, "--input", r.wav,
		"--sessions", strconv.Itoa(n), "--duration", phase.String(), "--gap", r.gap.String(),
		"--realtime", "--stagger", stagger.String(), "--log-level", "error"}
	if r.playOut {
		args = append(args, "--play-out")
	}
	if r.timeline != "" {
		args = append(args, "--timeline", r.timeline)
	}
	cmd := exec.CommandContext(ctx, r.rspp, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		p.Error = err.Error()
		return p
	}
	start := time.Now()
	dctx, dcancel := context.WithCancel(ctx)
	duringDone := make(chan struct{})
	go func() {
		defer close(duringDone)
		if r.during != nil {
			r.during(dctx, cmd.Process.Pid, start)
		}
	}()
	var (
		mu                 sync.Mutex
		peak, warm, atStop int64
		warmAt, stopAt     time.Time
		cpu                float64
	)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for range t.C {
			rss, ok := procRSSKiB(cmd.Process.Pid)
			if !ok {
				return
			}
			ticks, _ := procCPUSeconds(cmd.Process.Pid)
			el := time.Since(start)
			mu.Lock()
			peak = max(peak, rss)
			if ticks > 0 {
				cpu = ticks
			}
			if warm == 0 && el >= stagger+5*time.Second {
				warm, warmAt = rss, time.Now()
			}
			if el <= phase {
				atStop, stopAt = rss, time.Now()
			}
			if marks != nil {
				*marks = append(*marks, RSSMark{Seconds: el.Seconds(), RSSKiB: rss})
			}
			mu.Unlock()
		}
	}()
	err := cmd.Wait()
	dcancel()
	<-duringDone
	<-sampled
	if err != nil {
		p.Error = fmt.Sprintf("rspp serve: %v: %s", err, tail(out.String(), 600))
	}
	sum, term, lost, perr := parseServe(out.String())
	if perr != nil && p.Error == "" {
		p.Error = perr.Error() + ": " + tail(out.String(), 600)
	}
	p.TurnsOpened, p.Committed, p.Aborted, p.Wrong, p.Lost = term[0], term[1], term[2], term[3], lost
	if p.TurnsOpened > 0 {
		p.CommittedPct = 100 * float64(p.Committed) / float64(p.TurnsOpened)
	}
	p.LatencyP50Ms, p.LatencyP99Ms, p.LatenessP99Ms = sum.LatencyP50Ms, sum.LatencyP99Ms, sum.LatenessP99Ms
	p.FramesIn, p.FramesOut, p.Refused = sum.FramesIn, sum.FramesOut, sum.Refused
	mu.Lock()
	defer mu.Unlock()
	p.RSSPeakKiB = peak
	p.RSSAtStopKiB = atStop
	if n > 0 {
		p.RSSPerSessionKiB = float64(atStop) / float64(n)
	}
	if warm > 0 && stopAt.After(warmAt) && p.TurnsOpened > 0 {
		// Turns opened between the marks, estimated from the whole run's
		// rate (one per session per cycle).
		turns := float64(n) * stopAt.Sub(warmAt).Seconds() / (time.Second + capacityCycleGap).Seconds()
		if turns > 0 {
			p.RSSSlopePerTurnB = float64(atStop-warm) * 1024 / turns
		}
	}
	if f := p.FramesIn + p.FramesOut; f > 0 {
		p.CPUPerFrameUs = cpu * 1e6 / float64(f)
	}
	return p
}

func (c *CapacityConfig) soak(ctx context.Context, dir, wav string) *Soak {
	s := &Soak{Sessions: c.SoakSessions, Seconds: c.Soak.Seconds(), LoadBefore: loadAvg()}
	var marks []RSSMark
	p := c.point(ctx, dir, wav, c.SoakSessions, c.Soak, &marks)
	s.LoadAfter, s.CommittedPct, s.Error = loadAvg(), p.CommittedPct, p.Error
	every := c.SoakEvery
	if every <= 0 {
		every = 10 * time.Second
	}
	var first int64
	last := time.Duration(-1)
	for _, m := range marks {
		at := time.Duration(m.Seconds * float64(time.Second))
		if at > c.Soak {
			break // settling after the feed stopped
		}
		if first == 0 && at >= time.Minute {
			first = m.RSSKiB
		}
		if last < 0 || at-last >= every {
			s.Curve = append(s.Curve, m)
			last = at
		}
	}
	if n := len(s.Curve); n > 0 && first > 0 {
		end := s.Curve[n-1].RSSKiB
		s.GrowthPct = 100 * float64(end-first) / float64(first)
	}
	return s
}

// serveSummary is serve's "load: {...}" line.
type serveSummary struct {
	LatencyP50Ms  float64          `json:"latency_p50_ms"`
	LatencyP99Ms  float64          `json:"latency_p99_ms"`
	LatenessP99Ms float64          `json:"egress_lateness_p99_ms"`
	FramesIn      uint64           `json:"frames_in"`
	FramesOut     uint64           `json:"frames_out"`
	Refused       map[string]int64 `json:"refused"`
}

// parseServe reads serve's output: the load line, the terminals line
// (opened, committed, aborted, wrong) and the lost sessions.
func parseServe(out string) (serveSummary, [4]int, int, error) {
	var (
		sum         serveSummary
		term        [4]int
		lost        int
		gotSum, got bool
	)
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "load: "):
			gotSum = json.Unmarshal([]byte(strings.TrimPrefix(line, "load: ")), &sum) == nil
		case strings.HasPrefix(line, "lost: "):
			lost++
		case strings.HasPrefix(line, "sessions: "):
			var s int
			_, err := fmt.Sscanf(line, "sessions: %d, turns opened: %d, committed: %d, aborted: %d, wrong terminals: %d", &s, &term[0], &term[1], &term[2], &term[3])
			got = err == nil
		}
	}
	switch {
	case !got:
		return sum, term, lost, fmt.Errorf("no terminals line in serve's output")
	case !gotSum:
		return sum, term, lost, fmt.Errorf("no load line in serve's output")
	}
	return sum, term, lost, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

func procRSSKiB(pid int) (int64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var v int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &v)
			return v, true
		}
	}
	return 0, false // a zombie has no VmRSS
}

// procCPUSeconds is utime+stime of pid.
func procCPUSeconds(pid int) (float64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0, false
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, true // USER_HZ is 100 on Linux
}

func loadAvg() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err == nil {
		fmt.Sscanf(string(b), "%f %f %f", &l[0], &l[1], &l[2])
	}
	return l
}

// writeToneWAV writes d of a loud 300 Hz tone as 16 kHz mono s16le WAV.
func writeToneWAV(path string, d time.Duration) error {
	n := int(d / (time.Second / 16000))
	pcm := make([]byte, 2*n)
	for i := range n {
		v := int16(8000 * math.Sin(2*math.Pi*300*float64(i)/16000))
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
	}
	return writeWAV(path, pcm)
}

// writeWAV writes 16 kHz mono s16le PCM as a WAV file.
func writeWAV(path string, pcm []byte) error {
	var h bytes.Buffer
	h.WriteString("RIFF")
	_ = binary.Write(&h, binary.LittleEndian, uint32(36+len(pcm)))
	h.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(16000), uint32(32000), uint16(2), uint16(16)} {
		_ = binary.Write(&h, binary.LittleEndian, v)
	}
	h.WriteString("data")
	_ = binary.Write(&h, binary.LittleEndian, uint32(len(pcm)))
	h.Write(pcm)
	return os.WriteFile(path, h.Bytes(), 0o644)
}

func printCapacity(w io.Writer, c *Capacity) {
	fmt.Fprintf(w, "\ncapacity ladder: %s\n", c.Pipeline)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "sessions\tcommitted\tp50 ms\tp99 ms\tp99 of runs\tlateness p99 ms\tRSS KiB/session\tmarginal KiB\tslope B/turn\tCPU µs/frame\tload1 before/after\terror\t")
	for _, p := range c.Points {
		runs := "-"
		if len(p.RunsP99Ms) > 0 {
			var rs []string
			for _, r := range p.RunsP99Ms {
				rs = append(rs, strconv.FormatFloat(r, 'f', 0, 64))
			}
			runs = strings.Join(rs, "/")
		}
		fmt.Fprintf(tw, "%d\t%.1f%% of %d\t%.0f\t%.0f\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t%.2f/%.2f\t%s\t\n", p.Sessions, p.CommittedPct, p.TurnsOpened,
			p.LatencyP50Ms, p.LatencyP99Ms, runs, p.LatenessP99Ms, p.RSSPerSessionKiB, p.RSSMarginalKiB, p.RSSSlopePerTurnB, p.CPUPerFrameUs, p.LoadBefore[0], p.LoadAfter[0], firstLine(p.Error))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "largest N at 100%% commits with p99 within 50 ms of the %d-session p99 (%.0f ms): %d\n", c.BaselineSessions, c.BaselineP99Ms, c.LargestWithin50ms)
	if s := c.Soak; s != nil {
		fmt.Fprintf(w, "soak: %d sessions for %.0f s, %.1f%% committed, RSS growth after the first minute %.1f%% (load %.2f -> %.2f) %s\n",
			s.Sessions, s.Seconds, s.CommittedPct, s.GrowthPct, s.LoadBefore[0], s.LoadAfter[0], firstLine(s.Error))
		for _, m := range s.Curve {
			fmt.Fprintf(w, "  %6.0f s  %8d KiB\n", m.Seconds, m.RSSKiB)
		}
	}
}

// missing names a binary the ladder needs that is not built.
func (c *CapacityConfig) missing() string {
	for _, b := range []string{"rspp", "providers/rules", "bench/energystt", "bench/tonetts"} {
		if _, err := os.Stat(filepath.Join(c.BinDir, b)); err != nil {
			return filepath.Join(c.BinDir, b) + " (run make build and bench.mk's builds)"
		}
	}
	if _, err := os.Stat(c.Replies); err != nil {
		return c.Replies
	}
	return ""
}
