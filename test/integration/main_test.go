// Package integration runs the real rspp binary with the real provider
// plugins (pocketsphinx, rules, espeak) as separate processes, and checks
// what a user would: the spoken reply, the timeline's evidence, that a
// provider crash is contained, and that nothing is left behind.
package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rspp/rspp/isolation"
	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/wav"
)

var bins testenv.Bins

func TestMain(m *testing.M) {
	// Tests that run the runtime in-process start plugins through the
	// sandbox entry point, which re-executes this binary.
	isolation.MaybeSandboxMain()
	os.Exit(testenv.RunWithBins(m, "rspp-integration-bin-", &bins))
}

// run is one rspp invocation.
type run struct {
	dir, cfg, in, out, timeline, state string
	cmd                                *exec.Cmd
	stdout, stderr                     bytes.Buffer
}

// newRunDirs is a run's temp dir and its short state dir (unix socket
// paths must stay short: t.TempDir's names are long).
func newRunDirs(t *testing.T) *run {
	t.Helper()
	state, err := os.MkdirTemp("", "rs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	return &run{dir: t.TempDir(), state: state}
}

func newRun(t *testing.T, phrase string, o testenv.ConfigOptions) *run {
	t.Helper()
	speechtest.Require(t)
	r := newRunDirs(t)
	o.StateDir = r.state
	var err error
	if r.cfg, err = testenv.WriteConfig(r.dir, bins, o); err != nil {
		t.Fatal(err)
	}
	pcm, err := speechtest.Synthesize(context.Background(), phrase)
	if err != nil {
		t.Fatal(err)
	}
	r.in = filepath.Join(r.dir, "in.wav")
	if err := wav.WriteFile(r.in, pcm); err != nil {
		t.Fatal(err)
	}
	r.out = filepath.Join(r.dir, "out.wav")
	r.timeline = filepath.Join(r.dir, "timeline.jsonl")
	return r
}

func (r *run) start(t *testing.T, extra ...string) {
	t.Helper()
	args := append([]string{"run", "--config", r.cfg, "--input", r.in, "--output", r.out, "--timeline", r.timeline}, extra...)
	r.cmd = startRSPP(t, &r.stdout, &r.stderr, args...)
}

// startRSPP starts bins.RSPP with args; it is killed and reaped when the
// test ends if it is still running then.
func startRSPP(t *testing.T, stdout, stderr *bytes.Buffer, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bins.RSPP, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// wait waits for rspp to exit and returns its exit code.
func (r *run) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(limit):
		_ = r.cmd.Process.Kill()
		<-done
		t.Fatalf("rspp did not exit within %v\nstdout:\n%s\nstderr:\n%s", limit, &r.stdout, &r.stderr)
	}
	return r.cmd.ProcessState.ExitCode()
}

func (r *run) records(t *testing.T) []testenv.Record {
	t.Helper()
	recs, err := testenv.ReadTimeline(r.timeline)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// waitRecord polls the timeline (written as things happen) until pred holds.
func (r *run) waitRecord(t *testing.T, what string, pred func(testenv.Record) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		recs, _ := testenv.ReadTimeline(r.timeline)
		if slices.ContainsFunc(recs, pred) {
			return
		}
		if r.cmd.ProcessState != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timeline never showed %s\nstderr:\n%s", what, &r.stderr)
}

// assertNothingLeft checks that no plugin process and no socket or state
// dir of the run survived rspp.
func (r *run) assertNothingLeft(t *testing.T) {
	t.Helper()
	assertNothingLeft(t, r.state)
}

// assertNothingLeft checks that no plugin process survived and that the
// state dir is empty.
func assertNothingLeft(t *testing.T, state string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for len(testenv.ProcsUnder(bins.Dir)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if left := testenv.ProcsUnder(bins.Dir); len(left) > 0 {
		t.Errorf("plugin processes left behind: %v", left)
	}
	entries, _ := os.ReadDir(state)
	for _, e := range entries {
		t.Errorf("state left behind: %s", filepath.Join(state, e.Name()))
	}
}

func killProvider(t *testing.T, name string) {
	t.Helper()
	pid, ok := testenv.ProcOf(bins.Provider[name])
	if !ok {
		t.Fatalf("no %s plugin process found", name)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("SIGKILLed %s plugin pid %d", name, pid)
}

func hasType(typ string) func(testenv.Record) bool {
	return func(r testenv.Record) bool { return r.Type == typ }
}

func invocationEnded(node string) func(testenv.Record) bool {
	return func(r testenv.Record) bool { return r.Type == "invocation_end" && r.NodeID == node }
}

func abortsNaming(recs []testenv.Record, node string) []string {
	var reasons []string
	for _, r := range recs {
		if r.Type == "turn_abort" && strings.Contains(r.Reason, "node "+node) {
			reasons = append(reasons, r.Reason)
		}
	}
	return reasons
}
