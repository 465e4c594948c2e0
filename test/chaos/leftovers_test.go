package chaos

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/admin"
	"github.com/rspp/rspp/supervisor/pool"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/wav"
)

// Must-show: a run whose tenant plugins (and then pocketsphinx, mid
// utterance) are SIGKILLed, and which is then SIGKILLed itself, leaves
// state behind; one more rspp start sweeps all of it. Afterwards no
// scratch dir, run dir, admin socket, cgroup or pocketsphinx temp WAV of
// the killed run remains, and no process.
func TestSIGKILLedRunLeavesNothingAfterNextStart(t *testing.T) {
	if testing.Short() {
		t.Skip("real pipeline, SIGKILLs, two rspp runs")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: cgroup envelopes and the tenant sandbox")
	}
	speechtest.Require(t)
	root := testenv.MustModuleRoot(t)
	dir, err := os.MkdirTemp("", "rspp-left")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// The tenant sandbox runs rspp (its entry point) and the plugin as an
	// unprivileged uid: the binaries must be reachable.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bins, err := testenv.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	hostile := filepath.Join(dir, "hostile")
	build := exec.Command("go", "build", "-o", hostile, "./test/hostile")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build hostile node: %v\n%s", err, out)
	}
	state, tmp := filepath.Join(dir, "st"), filepath.Join(dir, "tmp")
	for _, d := range []string{state, tmp} {
		if err := os.Mkdir(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	// A tenant's node (the hostile node, behaving honestly: it forwards
	// the transcript) sits between STT and LLM, one pool per tenant. The
	// speech providers stay trusted: a tenant plugin gets neither PATH
	// (espeak-ng) nor read access to the grammar and replies files.
	cfg := fmt.Sprintf(`version: 1
runtime: {state_dir: %s, isolation: "on"}
providers:
  pocketsphinx:
    kind: stt
    binary: %s
    config: {grammar: %s}
  rules:
    kind: llm
    binary: %s
    config: {replies: %s}
  espeak:
    kind: tts
    binary: %s
    config: {voice: en-us}
  guard:
    kind: custom
    binary: %s
    profile: tenant
    config: {behaviour: honest}
pipeline:
  nodes:
    - {id: stt, provider: pocketsphinx, timeout: 15s}
    - {id: guard, provider: guard, timeout: 15s}
    - {id: llm, provider: rules, timeout: 15s}
    - {id: tts, provider: espeak, timeout: 15s}
  edges:
    - {from: ingress, to: stt}
    - {from: stt, to: guard}
    - {from: guard, to: llm}
    - {from: llm, to: tts}
    - {from: tts, to: egress}
vad: {threshold_db: -40, min_speech: 60ms, hangover: 400ms}
`, state, bins.Provider["pocketsphinx"], filepath.Join(root, "examples", "grammar.jsgf"),
		bins.Provider["rules"], filepath.Join(root, "examples", "replies.yaml"), bins.Provider["espeak"], hostile)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	pcm, err := speechtest.Synthesize(context.Background(), "hello there")
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "in.wav")
	if err := wav.WriteFile(in, pcm); err != nil {
		t.Fatal(err)
	}
	// A private TMPDIR: a provider writing to "the" temp dir is caught.
	env := append(os.Environ(), "TMPDIR="+tmp)

	timeline := filepath.Join(dir, "killed.jsonl")
	serve := exec.Command(bins.RSPP, "serve", "--config", cfgPath, "--input", in, "--sessions", "4",
		"--gap", "300ms", "--tenant", "a", "--tenant", "b", "--timeline", timeline)
	serve.Env = env
	var serveErr strings.Builder
	serve.Stderr = &lockedWriter{w: &serveErr}
	stdout, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = serve.Process.Kill(); _ = serve.Wait() }()
	ready, exited := make(chan string, 1), make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sock, ok := strings.CutPrefix(sc.Text(), "serving 4 sessions; admin socket "); ok {
				ready <- sock
			}
		}
	}()
	var sock string
	select {
	case sock = <-ready:
	case <-exited:
		t.Fatalf("rspp serve exited; stderr:\n%s", serve.Stderr.(*lockedWriter))
	case <-time.After(90 * time.Second):
		t.Fatalf("rspp serve never became ready; stderr:\n%s", serve.Stderr.(*lockedWriter))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	status := func() admin.Response {
		st, err := admin.Call(ctx, sock, admin.Request{Op: "status"})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	// pidsOf lists the live instances of the pools pick accepts.
	pidsOf := func(pick func(pool.Status) bool) []int {
		var pids []int
		for _, p := range status().Pools {
			if pick(p) {
				pids = append(pids, p.Pids...)
			}
		}
		return pids
	}
	tenantPool := func(p pool.Status) bool { return p.Tenant != "" }
	// Both tenants' espeak pools start on their first turns; SIGKILL
	// their instances twice (each time the replacement too).
	var killed []int
	for round := range 2 {
		var pids []int
		for deadline := time.Now().Add(60 * time.Second); len(pids) < 2; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: tenant pools never both ran: %+v", round, status().Pools)
			}
			pids = pidsOf(tenantPool)
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatalf("SIGKILL tenant plugin %d: %v", pid, err)
			}
			killed = append(killed, pid)
		}
		time.Sleep(1500 * time.Millisecond)
	}
	// pocketsphinx is mid-utterance most of the time (300 ms gaps).
	for _, pid := range pidsOf(func(p pool.Status) bool { return p.Provider == "pocketsphinx" }) {
		if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
			killed = append(killed, pid)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	// SIGKILL rspp while pocketsphinx holds an utterance's temp WAV in
	// its scratch dir (it writes one per utterance it decodes), so that
	// the sweep below has one to remove.
	// The instances are stopped while we look, so that a decode that
	// ends between the look and the kill cannot remove the WAV first
	// (SIGKILL, and the Pdeathsig that follows rspp's death, still reach
	// a stopped process).
	rsppPid := serve.Process.Pid
	last := status()
	sphinx := pidsOf(func(p pool.Status) bool { return p.Provider == "pocketsphinx" })
	signalAll := func(sig syscall.Signal) {
		for _, pid := range sphinx {
			_ = syscall.Kill(pid, sig)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		signalAll(syscall.SIGSTOP)
		if has(leftovers(t, dir, tmp, rsppPid), "temp wav: "+state) {
			break
		}
		signalAll(syscall.SIGCONT)
		if time.Now().After(deadline) {
			t.Fatal("pocketsphinx never held a temp WAV in 30 s of 300 ms gaps")
		}
	}
	if err := serve.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = serve.Wait()
	t.Logf("SIGKILLed plugins %v, then rspp %d (plugins then %v)", killed, rsppPid, last.Plugins)

	// The dead run left state behind: otherwise this test proves nothing.
	runDir := filepath.Join(state, "run-"+strconv.Itoa(rsppPid))
	before := leftovers(t, dir, tmp, rsppPid)
	t.Logf("left by the killed run: %v", before)
	if _, err := os.Stat(runDir); err != nil {
		t.Fatalf("killed run left no run dir (%v)", err)
	}
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("killed run left no admin socket (%v)", err)
	}
	if !has(before, "cgroup: ") {
		t.Fatal("killed run left no cgroup to sweep")
	}
	// Sessions speak with 300 ms gaps (shorter than the VAD hangover), so
	// pocketsphinx always buffers an utterance.
	if !has(before, "temp wav: "+state) {
		t.Fatal("killed run left no pocketsphinx WAV in its scratch dirs")
	}

	// The killed run's timeline stops mid-turn (300 ms gaps: a turn is
	// nearly always open).
	recs, err := testenv.ReadTimeline(timeline)
	if err != nil {
		t.Fatal(err)
	}
	open := 0
	for _, tu := range testenv.Turns(recs) {
		if tu.Commits+tu.Aborts == 0 {
			open++
		}
	}
	if open == 0 {
		t.Fatal("the killed run's timeline has no open turn: the seal below proves nothing")
	}

	// One more start.
	run := exec.Command(bins.RSPP, "run", "--config", cfgPath, "--input", in, "--output", filepath.Join(dir, "out.wav"), "--tenant", "a")
	run.Env = env
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("rspp run after the SIGKILL: %v\n%s", err, out)
	} else if !strings.Contains(string(out), "1 committed") {
		t.Errorf("rspp run did not commit its turn:\n%s", out)
	}
	if left := leftovers(t, dir, tmp, rsppPid); len(left) > 0 {
		t.Errorf("left behind after the next start: %v", left)
	}
	// ... and it ended the turns the killed run left open, once each.
	if recs, err = testenv.ReadTimeline(timeline); err != nil {
		t.Fatal(err)
	}
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Errorf("the killed run's timeline after the next start: %v", err)
	}
	lost := 0
	for _, r := range recs {
		if r.Type == "turn_abort" && strings.HasPrefix(r.Reason, supervisor.ReasonRuntimeLost) {
			lost++
		}
	}
	if lost != open {
		t.Errorf("%d turns sealed as %s, want the %d the kill left open", lost, supervisor.ReasonRuntimeLost, open)
	}
	t.Logf("the next start sealed the killed run's timeline: %d open turns ended as %s", lost, supervisor.ReasonRuntimeLost)
	if left := testenv.ProcsUnder(dir); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
	for _, pid := range append(killed, last.Plugins...) {
		if externalnode.ProcessAlive(pid) {
			t.Errorf("plugin %d alive", pid)
		}
	}
}

// leftovers lists what a run may leave: entries of the state dir (run
// dirs, scratch dirs, the admin socket and its lock), files in the
// private TMPDIR, pocketsphinx WAVs anywhere under dir, and cgroups named
// after the dead rspp's pid.
func leftovers(t *testing.T, dir, tmp string, rsppPid int) []string {
	t.Helper()
	var out []string
	entries, _ := os.ReadDir(filepath.Join(dir, "st"))
	for _, e := range entries {
		out = append(out, "state: "+e.Name())
	}
	_ = filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != tmp {
			out = append(out, "tmp: "+p)
		}
		return nil
	})
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), "rspp-pocketsphinx-") && strings.HasSuffix(d.Name(), ".wav") {
			out = append(out, "temp wav: "+p)
		}
		return nil
	})
	prefix := fmt.Sprintf("rspp-%d-", rsppPid)
	_ = filepath.WalkDir("/sys/fs/cgroup", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.HasPrefix(d.Name(), prefix) {
			out = append(out, "cgroup: "+p)
			return filepath.SkipDir
		}
		return nil
	})
	return out
}

func has(left []string, prefix string) bool {
	for _, l := range left {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// lockedWriter is a strings.Builder safe to read while exec writes to it.
type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
