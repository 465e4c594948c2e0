package integration

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rspp/rspp/test/testenv"
)

// SIGTERM while plugins are still starting (one sleeps a minute before its
// handshake, with a start timeout longer than that): rspp run and rspp
// serve stop the start, exit 0, say they were interrupted, and leave no
// process, socket or state behind. Before, this exited 1 with "plugin
// crashed ... exit status 0" once go-plugin's wait ran out.
func TestSIGTERMDuringStartExitsCleanly(t *testing.T) {
	hostile := hostileBin(t)
	for _, mode := range []string{"run", "serve"} {
		t.Run(mode, func(t *testing.T) {
			r := newRun(t, "hello there", testenv.ConfigOptions{})
			root, _ := testenv.ModuleRoot()
			cfg := fmt.Sprintf(`version: 1
runtime: {state_dir: %s}
providers:
  pocketsphinx:
    kind: stt
    binary: %s
    config: {grammar: %s/examples/grammar.jsgf}
  slow:
    kind: custom
    binary: %s
    args: [-start-delay, 60s]
    start_timeout: 120s
    config: {behaviour: honest}
pipeline:
  nodes:
    - {id: stt, provider: pocketsphinx, timeout: 15s}
    - {id: slow, provider: slow, timeout: 15s}
  edges:
    - {from: ingress, to: stt}
    - {from: stt, to: slow}
    - {from: slow, to: egress}
vad: {threshold_db: -40, min_speech: 60ms, hangover: 400ms}
`, r.state, bins.Provider["pocketsphinx"], root, hostile)
			if err := os.WriteFile(r.cfg, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			if mode == "run" {
				r.start(t)
			} else {
				r.cmd = startRSPP(t, &r.stdout, &r.stderr, "serve", "--config", r.cfg, "--input", r.in, "--sessions", "1")
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				if _, ok := testenv.ProcOf(hostile); ok {
					break
				}
				if time.Now().After(deadline) || r.cmd.ProcessState != nil {
					t.Fatalf("the slow plugin never started\nstderr:\n%s", &r.stderr)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			// 20 s is a hang guard: the slow plugin would take 60 s.
			if code := r.wait(t, 20*time.Second); code != 0 {
				t.Fatalf("exit %d after SIGTERM during start\nstderr:\n%s", code, &r.stderr)
			}
			if !strings.Contains(r.stderr.String(), "interrupted during start") {
				t.Errorf("stderr does not say the start was interrupted:\n%s", &r.stderr)
			}
			if strings.Contains(r.stderr.String(), "plugin crashed") {
				t.Errorf("an interrupted start reported as a crash:\n%s", &r.stderr)
			}
			t.Logf("%s: %s", mode, strings.TrimSpace(r.stderr.String()))
			r.assertNothingLeft(t)
		})
	}
}
