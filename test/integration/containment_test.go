package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/wav"
)

var (
	unrulyOnce sync.Once
	unrulyBin  string
	unrulyErr  error
)

// unruly builds testdata/nodes/unruly as a third party would: a module of
// its own outside this repository, against the public SDK.
func unruly(t *testing.T) string {
	t.Helper()
	unrulyOnce.Do(func() {
		root, _ := testenv.ModuleRoot()
		unrulyBin, unrulyErr = testenv.BuildExternalNode(bins.Dir, "unruly", filepath.Join(root, "test", "integration", "testdata", "nodes", "unruly"))
	})
	if unrulyErr != nil {
		t.Fatal(unrulyErr)
	}
	return unrulyBin
}

// chain is the config's pipeline and vad: ingress -> stt -> llm -> tts ->
// egress, each node given as "provider timeout", with extra settings for
// the edge leaving a node (by its from: "ingress", "stt", ...).
func chain(nodes [3]string, edge map[string]string) string {
	var b strings.Builder
	b.WriteString("pipeline:\n  nodes:\n")
	ids := []string{"stt", "llm", "tts"}
	for i, n := range nodes {
		provider, timeout, _ := strings.Cut(n, " ")
		fmt.Fprintf(&b, "    - {id: %s, provider: %s, timeout: %s}\n", ids[i], provider, timeout)
	}
	b.WriteString("  edges:\n")
	for i, from := range []string{"ingress", "stt", "llm", "tts"} {
		to := "egress"
		if i < 3 {
			to = ids[i]
		}
		extra := ""
		if e := edge[from]; e != "" {
			extra = ", " + e
		}
		fmt.Fprintf(&b, "    - {from: %s, to: %s%s}\n", from, to, extra)
	}
	b.WriteString("vad: {threshold_db: -40, min_speech: 60ms, hangover: 400ms}\n")
	return b.String()
}

// tone writes secs seconds of a loud 440 Hz tone: speech to the VAD.
func tone(t *testing.T, path string, secs float64) {
	t.Helper()
	n := int(secs * 16000)
	pcm := make([]byte, 2*n)
	for i := range n {
		v := int16(8000 * math.Sin(2*math.Pi*440*float64(i)/16000))
		pcm[2*i], pcm[2*i+1] = byte(v), byte(uint16(v)>>8)
	}
	if err := wav.WriteFile(path, pcm); err != nil {
		t.Fatal(err)
	}
}

// serveRun is one `rspp serve` of two sessions: serve-1 speaks in1,
// serve-2 speaks in2, each looping its clip.
type serveRun struct {
	dir, cfg, state, timeline string
	cmd                       *exec.Cmd
	stdout, stderr            bytes.Buffer
}

func newServeRun(t *testing.T, yaml string) *serveRun {
	t.Helper()
	r := &serveRun{dir: t.TempDir()}
	state, err := os.MkdirTemp("", "rs")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(state, 0o711); err != nil { // tenant plugins reach their socket dirs
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	r.state = state
	r.cfg = filepath.Join(r.dir, "config.yaml")
	if err := os.WriteFile(r.cfg, []byte(strings.ReplaceAll(yaml, "STATE", state)), 0o644); err != nil {
		t.Fatal(err)
	}
	r.timeline = filepath.Join(r.dir, "timeline.jsonl")
	return r
}

func (r *serveRun) start(t *testing.T, in1, in2 string, extra ...string) {
	t.Helper()
	args := append([]string{"serve", "--config", r.cfg, "--input", in1, "--input", in2, "--sessions", "2", "--gap", "1200ms",
		"--timeline", r.timeline}, extra...)
	r.cmd = startRSPP(t, &r.stdout, &r.stderr, args...)
}

func (r *serveRun) records() []testenv.Record {
	recs, _ := testenv.ReadTimeline(r.timeline)
	return recs
}

// until polls the timeline until pred holds on it.
func (r *serveRun) until(t *testing.T, limit time.Duration, what string, pred func([]testenv.Record) bool) []testenv.Record {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		recs := r.records()
		if pred(recs) {
			return recs
		}
		if r.cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, rec := range r.records() {
		t.Logf("%d %s %s %s %s %s %v", rec.MonoNanos/1e6, rec.SessionID, rec.TurnID, rec.Type, rec.NodeID, rec.Reason, rec.Attrs)
	}
	t.Fatalf("timeline never showed %s within %v\nstdout:\n%s\nstderr:\n%s", what, limit, &r.stdout, &r.stderr)
	return nil
}

func countRecs(recs []testenv.Record, keep func(testenv.Record) bool) int {
	n := 0
	for _, r := range recs {
		if keep(r) {
			n++
		}
	}
	return n
}

func (r *serveRun) assertNothingLeft(t *testing.T) {
	t.Helper()
	assertNothingLeft(t, r.state)
}

// An STT node that stops reading its input, given 30 s of speech with a
// 3 s timeout: the turn ends at that node's timeout with exactly one
// terminal naming it, while a second session on the same provider (same
// instance, same Data stream) keeps committing turns; rspp exits 0 within
// 2 s of SIGTERM and leaves nothing behind.
func TestNodeThatStopsReadingIsContained(t *testing.T) {
	node := unruly(t)
	r := newServeRun(t, fmt.Sprintf(`version: 1
runtime: {state_dir: STATE}
providers:
  stall-stt: {kind: stt, binary: %[1]s, args: [stt], config: {mode: stall, session_suffix: "-1"}}
  honest-llm: {kind: llm, binary: %[1]s, args: [llm]}
  espeak: {kind: tts, binary: %[2]s}
`, node, bins.Provider["espeak"])+chain(
		[3]string{"stall-stt 3s", "honest-llm 10s", "espeak 10s"}, map[string]string{"ingress": "capacity: 32"}))
	long, short := filepath.Join(r.dir, "long.wav"), filepath.Join(r.dir, "short.wav")
	tone(t, long, 30)
	tone(t, short, 1)
	r.start(t, long, short)

	stalled := func(rec testenv.Record) bool {
		return rec.SessionID == "serve-1" && rec.Type == "turn_abort" && strings.Contains(rec.Reason, "node stt") && strings.Contains(rec.Reason, "timed out")
	}
	recs := r.until(t, 40*time.Second, "serve-1's turn aborted at stt's timeout and serve-2 committing after it", func(recs []testenv.Record) bool {
		seen := false
		after := 0
		for _, rec := range recs {
			if stalled(rec) {
				seen = true
			}
			if seen && rec.SessionID == "serve-2" && rec.Type == "turn_commit" {
				after++
			}
		}
		return seen && after >= 1
	})
	// While serve-1's invocation sat stuck (turn_open .. its abort),
	// serve-2 committed on the same provider.
	var openAt, abortAt int64
	for _, rec := range recs {
		if rec.SessionID == "serve-1" && rec.Type == "turn_open" && openAt == 0 {
			openAt = rec.MonoNanos
		}
		if stalled(rec) && abortAt == 0 {
			abortAt = rec.MonoNanos
		}
	}
	during := countRecs(recs, func(rec testenv.Record) bool {
		return rec.SessionID == "serve-2" && rec.Type == "turn_commit" && rec.MonoNanos > openAt && rec.MonoNanos < abortAt
	})
	t.Logf("serve-1's turn stuck for %v; serve-2 committed %d turns meanwhile", time.Duration(abortAt-openAt).Round(time.Millisecond), during)
	if during < 1 {
		t.Errorf("serve-2 committed nothing while serve-1's stt invocation was stuck")
	}
	if n := countRecs(recs, func(rec testenv.Record) bool {
		return rec.SessionID == "serve-1" && rec.Type == "pressure" && rec.Attrs["node"] == "stt"
	}); n == 0 {
		t.Errorf("no pressure record naming stt for the input it would not take")
	}

	sent := time.Now()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-done
		t.Fatalf("rspp ignored SIGTERM for 10 s\nstderr:\n%s", &r.stderr)
	}
	took := time.Since(sent)
	t.Logf("rspp exited %d, %v after SIGTERM", r.cmd.ProcessState.ExitCode(), took.Round(time.Millisecond))
	if code := r.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit %d after SIGTERM\nstderr:\n%s", code, &r.stderr)
	}
	if took > 2*time.Second {
		t.Errorf("rspp took %v to exit after SIGTERM, want within 2 s", took)
	}
	recs = r.records()
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Error(err)
	}
	r.assertNothingLeft(t)
}

// rssKiB reads a process's resident set.
func rssKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// A tenant node (64 MiB envelope) emitting 60 KiB events as fast as it can
// for 30 s, beside an honest session on the same provider: the invocation
// fails as an output budget naming the node, rspp's RSS grows by less than
// 64 MiB, and the honest session keeps committing.
func TestFloodingTenantNodeIsHeldToItsOutputBudget(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the flooding node runs under the tenant profile (cgroup envelope, sandbox); CI runs as root")
	}
	node := unruly(t)
	if err := os.Chmod(bins.Dir, 0o755); err != nil { // the sandboxed uid reaches the binaries
		t.Fatal(err)
	}
	r := newServeRun(t, fmt.Sprintf(`version: 1
runtime: {state_dir: STATE, kill_grace: 1s}
providers:
  honest-stt: {kind: stt, binary: %[1]s, args: [stt]}
  flood-llm:
    kind: llm
    binary: %[1]s
    args: [llm]
    instances: 2
    profile: tenant
    tenant: acme
    limits: {memory_mb: 64}
    config: {mode: flood, session_suffix: "-1"}
  espeak: {kind: tts, binary: %[2]s}
`, node, bins.Provider["espeak"])+chain(
		[3]string{"honest-stt 10s", "flood-llm 10s", "espeak 10s"}, nil))
	short := filepath.Join(r.dir, "short.wav")
	tone(t, short, 1)
	r.start(t, short, short, "--duration", "36s")
	pid := r.cmd.Process.Pid

	// Baseline: rspp with every pool up and the honest session served once.
	r.until(t, 30*time.Second, "a first commit of the honest session", func(recs []testenv.Record) bool {
		return countRecs(recs, func(rec testenv.Record) bool { return rec.SessionID == "serve-2" && rec.Type == "turn_commit" }) > 0
	})
	base, err := rssKiB(pid)
	if err != nil {
		t.Fatal(err)
	}
	peak := base
	floodStart := time.Now()
	var samples []int64
	for time.Since(floodStart) < 30*time.Second && r.cmd.ProcessState == nil {
		if v, err := rssKiB(pid); err == nil {
			peak = max(peak, v)
			samples = append(samples, v)
		}
		time.Sleep(200 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = r.cmd.Process.Kill()
		<-done
		t.Fatalf("rspp serve did not finish\nstderr:\n%s", &r.stderr)
	}
	growth := peak - base
	t.Logf("rspp RSS: baseline %d KiB, peak %d KiB over 30 s of flooding (%d samples): growth %.1f MiB (bound 64 MiB)",
		base, peak, len(samples), float64(growth)/1024)
	if growth >= 64<<10 {
		t.Errorf("rspp RSS grew by %.1f MiB under a flooding node, want < 64 MiB", float64(growth)/1024)
	}
	if code := r.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("rspp serve exit %d\nstderr:\n%s", code, &r.stderr)
	}
	recs := r.records()
	budget := countRecs(recs, func(rec testenv.Record) bool {
		return rec.SessionID == "serve-1" && rec.Type == "invocation_fail" && rec.NodeID == "llm" &&
			rec.Attrs["kind"] == "resource_limit" && strings.Contains(rec.Reason, `output_budget: node "llm"`)
	})
	honest := countRecs(recs, func(rec testenv.Record) bool { return rec.SessionID == "serve-2" && rec.Type == "turn_commit" })
	wrongBlame := countRecs(recs, func(rec testenv.Record) bool {
		return rec.SessionID == "serve-1" && rec.Type == "invocation_fail" && rec.NodeID != "llm"
	})
	t.Logf("flooding session: %d invocations failed on the output budget; honest session: %d turns committed", budget, honest)
	if budget == 0 {
		t.Errorf("no invocation_fail of node llm as resource_limit / output_budget")
	}
	if wrongBlame > 0 {
		t.Errorf("%d failures of the flooding session blamed on another node", wrongBlame)
	}
	if honest < 5 {
		t.Errorf("honest session committed only %d turns beside the flood", honest)
	}
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Error(err)
	}
	r.assertNothingLeft(t)
}

// Invariants 6 and 7 through real plugin processes: an LLM bursting 300
// deltas into a TTS that takes one input every 20 ms (input window 2),
// over an edge of 4 with block_for 50ms then degrade. The burst is held (the runner keeps
// what the edge refuses, in order), then coalesced; the edge's depth never
// passes its bound, pressure records the block and the degrade naming the
// edge and the node, and the turn still ends with one terminal.
func TestBoundedBlockThenDegradeEndToEnd(t *testing.T) {
	node := unruly(t)
	r := newServeRun(t, fmt.Sprintf(`version: 1
runtime: {state_dir: STATE}
providers:
  honest-stt: {kind: stt, binary: %[1]s, args: [stt]}
  chatty-llm: {kind: llm, binary: %[1]s, args: [llm], config: {mode: chatty}}
  slow-tts: {kind: tts, binary: %[1]s, args: [tts, "2"], config: {mode: slow}}
`, node)+chain(
		[3]string{"honest-stt 10s", "chatty-llm 10s", "slow-tts 20s"}, map[string]string{"llm": "capacity: 4, block_for: 50ms, overflow: degrade"}))
	short := filepath.Join(r.dir, "short.wav")
	tone(t, short, 1)
	r.start(t, short, short)
	recs := r.until(t, 40*time.Second, "two committed turns of each session", func(recs []testenv.Record) bool {
		return countRecs(recs, func(rec testenv.Record) bool { return rec.Type == "turn_commit" && rec.SessionID == "serve-1" }) >= 2 &&
			countRecs(recs, func(rec testenv.Record) bool { return rec.Type == "turn_commit" && rec.SessionID == "serve-2" }) >= 2
	})
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	_ = r.cmd.Wait()
	actions := map[string]int{}
	for _, rec := range recs {
		if rec.Type != "pressure" || rec.Attrs["edge"] != "llm->tts" {
			continue
		}
		if rec.Attrs["node"] != "tts" {
			t.Errorf("pressure on llm->tts names node %q", rec.Attrs["node"])
		}
		depth, _ := strconv.Atoi(rec.Attrs["depth"])
		if depth > 4 {
			t.Errorf("edge llm->tts at depth %d, bound 4: %v", depth, rec.Attrs)
		}
		actions[rec.Attrs["level"]+":"+rec.Attrs["action"]]++
	}
	t.Logf("pressure on llm->tts: %v", actions)
	if actions["full:block"] == 0 || actions["full:degrade"] == 0 || actions["low:resume"] == 0 {
		t.Errorf("want the edge to block, then degrade, then resume; saw %v", actions)
	}
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Error(err)
	}
	r.assertNothingLeft(t)
}
