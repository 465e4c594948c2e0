package load

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/pool"
	"github.com/rspp/rspp/supervisor/session"
)

// ChaosOptions drive a chaos run: Sessions concurrent sessions of
// scripted audio for Duration while a random plugin process suffers a
// random fault every KillEvery.
type ChaosOptions struct {
	Duration   time.Duration
	KillEvery  time.Duration
	Sessions   int
	Utterances [][]byte
	// Phrases, when Utterances is empty, are spoken once by the
	// pipeline's own TTS provider (Speak) and looped instead.
	Phrases  []string
	Gap      time.Duration
	Realtime bool
	Seed     uint64
	// Tenants, if set, are the sessions' tenants, taken in turn.
	Tenants []string
	// Faults to pick from: "sigkill", "sigstop" (resumed after 0.2-1 s),
	// "hang" (stopped for good: health checks or invocation timeouts must
	// kill it). Default all three.
	Faults   []string
	Timeline string // optional JSON Lines file of every record
	Logger   hclog.Logger
	// Telemetry, if set, also receives every record (see Options.Timeline).
	Telemetry session.Timeline
	Log       io.Writer // one line per fault (nil: none)
}

// ChaosReport is the invariant report of a chaos run.
type ChaosReport struct {
	Duration  time.Duration
	Sessions  int
	Realtime  bool
	Faults    map[string]int
	Crashes   map[string]int // detected, by crash kind
	Terminals Terminals
	Lost      []string // sessions lost
	Leftover  []int    // plugin pids alive after shutdown
	Started   int      // plugin processes started in all
}

// OK says whether every invariant held.
func (r ChaosReport) OK() bool {
	return len(r.Terminals.Wrong) == 0 && len(r.Lost) == 0 && len(r.Leftover) == 0 && r.Terminals.Sessions == r.Sessions
}

// Write prints the report; its last three lines are the invariants, one
// figure a line.
func (r ChaosReport) Write(w io.Writer) {
	feed := "faster than real time"
	if r.Realtime {
		feed = "real time"
	}
	fmt.Fprintf(w, "chaos: %s, %d sessions fed in %s, %d plugin processes started\n", r.Duration, r.Sessions, feed, r.Started)
	fmt.Fprintf(w, "faults injected: %s\n", countsLine(r.Faults))
	fmt.Fprintf(w, "crashes detected: %s\n", countsLine(r.Crashes))
	t := r.Terminals
	fmt.Fprintf(w, "sessions opened: %d\n", t.Sessions)
	fmt.Fprintf(w, "sessions closed: %d\n", t.Closed)
	fmt.Fprintf(w, "turns opened: %d\n", t.Opened)
	fmt.Fprintf(w, "turns committed: %d\n", t.Committed)
	fmt.Fprintf(w, "turns aborted: %d\n", t.Aborted)
	reasons := make([]string, 0, len(t.AbortReasons))
	for k := range t.AbortReasons {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	for _, k := range reasons {
		fmt.Fprintf(w, "  aborted (%s): %d\n", k, t.AbortReasons[k])
	}
	for _, s := range t.Wrong {
		fmt.Fprintf(w, "  wrong terminals: %s\n", s)
	}
	for _, s := range r.Lost {
		fmt.Fprintf(w, "  lost: %s\n", s)
	}
	if len(r.Leftover) > 0 {
		fmt.Fprintf(w, "  left behind: %v\n", r.Leftover)
	}
	fmt.Fprintf(w, "turns with other than one terminal: %d\n", len(t.Wrong))
	fmt.Fprintf(w, "lost sessions: %d\n", len(r.Lost)+max(r.Sessions-t.Sessions, 0))
	fmt.Fprintf(w, "leftover processes: %d\n", len(r.Leftover))
}

func countsLine(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	total := 0
	for k, n := range m {
		keys = append(keys, k)
		total += n
	}
	sort.Strings(keys)
	s := fmt.Sprint(total, " (")
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %d", k, m[k])
	}
	return s + ")"
}

// RunChaos starts a runtime from cfg, runs the load and the fault
// injector, shuts everything down and reports from the timeline records
// and the list of every plugin process the runtime started.
func RunChaos(ctx context.Context, cfg *config.Config, o ChaosOptions) (ChaosReport, error) {
	if len(o.Faults) == 0 {
		o.Faults = []string{"sigkill", "sigstop", "hang"}
	}
	rep := ChaosReport{Duration: o.Duration, Sessions: o.Sessions, Realtime: o.Realtime, Faults: map[string]int{}, Crashes: map[string]int{}}
	var crashMu sync.Mutex
	rt, err := supervisor.Start(ctx, cfg, supervisor.Options{Logger: o.Logger, Timeline: o.Telemetry, Events: func(ev pool.Event) {
		if ev.Type == "crashed" {
			crashMu.Lock()
			rep.Crashes[string(ev.Crash.Kind)]++
			crashMu.Unlock()
		}
	}})
	if err != nil {
		return rep, err
	}
	if len(o.Utterances) == 0 {
		if o.Utterances, err = Speak(ctx, rt, o.Phrases); err != nil {
			rt.Close()
			return rep, fmt.Errorf("chaos: the scripted audio: %w", err)
		}
	}
	col := &session.Collector{}
	var tl session.Timeline = col
	if o.Timeline != "" {
		jl, err := rt.CreateTimeline(o.Timeline, col)
		if err != nil {
			rt.Close()
			return rep, err
		}
		defer jl.Close()
		tl = jl
	}
	stop := make(chan struct{})
	injDone := make(chan struct{})
	go func() {
		defer close(injDone)
		inject(ctx, rt, o, stop, &rep)
	}()
	loadDone := make(chan Result, 1)
	go func() {
		loadDone <- Run(ctx, rt, Options{Sessions: o.Sessions, Utterances: o.Utterances, Gap: o.Gap,
			Realtime: o.Realtime, Tenants: o.Tenants, Timeline: tl, Stop: stop, Prefix: "chaos"})
	}()
	select {
	case <-time.After(o.Duration):
	case <-ctx.Done():
	}
	close(stop)
	<-injDone
	res := <-loadDone
	rt.Close()
	rep.Lost = res.Lost
	rep.Terminals = CountTerminals(col.Records())
	rep.Started = len(rt.StartedPids().All())
	// A killed process is reaped within milliseconds; allow for it.
	deadline := time.Now().Add(time.Second)
	for rep.Leftover = rt.StartedPids().Alive(); len(rep.Leftover) > 0 && time.Now().Before(deadline); rep.Leftover = rt.StartedPids().Alive() {
		time.Sleep(10 * time.Millisecond)
	}
	crashMu.Lock()
	defer crashMu.Unlock()
	return rep, nil
}

// inject hits a random live plugin process with a random fault every
// KillEvery until stop is closed, then resumes whatever it stopped.
func inject(ctx context.Context, rt *supervisor.Runtime, o ChaosOptions, stop <-chan struct{}, rep *ChaosReport) {
	rnd := rand.New(rand.NewPCG(o.Seed, 0xc4a05))
	var (
		stopped []int
		resumes []*time.Timer
		mu      sync.Mutex
		paused  = map[int]bool{} // stopped right now: not picked again
	)
	defer func() {
		for _, t := range resumes {
			t.Stop()
		}
		for _, pid := range stopped {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	tick := time.NewTicker(o.KillEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var pids []int
		mu.Lock()
		for _, ps := range rt.Pids() {
			for _, pid := range ps {
				if !paused[pid] {
					pids = append(pids, pid)
				}
			}
		}
		mu.Unlock()
		if len(pids) == 0 {
			continue
		}
		sort.Ints(pids)
		pid := pids[rnd.IntN(len(pids))]
		fault := o.Faults[rnd.IntN(len(o.Faults))]
		var err error
		switch fault {
		case "sigkill":
			err = syscall.Kill(pid, syscall.SIGKILL)
		case "sigstop":
			err = syscall.Kill(pid, syscall.SIGSTOP)
			resume := time.Duration(200+rnd.IntN(800)) * time.Millisecond
			resumes = append(resumes, time.AfterFunc(resume, func() {
				_ = syscall.Kill(pid, syscall.SIGCONT)
				mu.Lock()
				delete(paused, pid)
				mu.Unlock()
			}))
			stopped = append(stopped, pid) // resumed again at the end, in case
		case "hang":
			err = syscall.Kill(pid, syscall.SIGSTOP)
			stopped = append(stopped, pid)
		}
		if err != nil {
			continue
		}
		if fault != "sigkill" {
			mu.Lock()
			paused[pid] = true
			mu.Unlock()
		}
		rep.Faults[fault]++
		if o.Log != nil {
			fmt.Fprintf(o.Log, "chaos: %s pid %d\n", fault, pid)
		}
	}
}
