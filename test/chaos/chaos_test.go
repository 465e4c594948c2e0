// Package chaos runs `rspp chaos` end to end against the example voice
// agent (real pocketsphinx, rules and espeak plugins) and checks its
// invariant report. The test runs 15 s of faults to keep the suite short;
// the full form is
//
//	rspp chaos --config examples/voice-agent.yaml --duration 60s --kill-every 2s
package chaos

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rspp/rspp/test/testenv"
)

func TestChaosReportHoldsInvariants(t *testing.T) {
	if testing.Short() {
		t.Skip("15 s chaos run")
	}
	for _, tool := range []string{"espeak-ng", "sox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make deps)", tool)
		}
	}
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "rspp-chaos")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bins, err := testenv.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	rspp := bins.RSPP
	// The example config, pointing at the binaries just built.
	raw, err := os.ReadFile(filepath.Join(root, "examples", "voice-agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.ReplaceAll(string(raw), "../bin/providers/", filepath.Join(dir, "providers")+"/")
	for _, f := range []string{"grammar.jsgf", "replies.yaml"} {
		cfg = strings.ReplaceAll(cfg, " "+f, " "+filepath.Join(root, "examples", f))
	}
	cfg += "\nruntime:\n  state_dir: " + filepath.Join(dir, "st") + "\n"
	cfgPath := filepath.Join(dir, "voice-agent.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(rspp, "chaos", "--config", cfgPath, "--duration", "15s", "--kill-every", "2s")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	t.Logf("rspp chaos report:\n%s", stdout.String())
	if err != nil {
		t.Fatalf("rspp chaos: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("short report")
	}
	want := []string{"turns with other than one terminal: 0", "lost sessions: 0", "leftover processes: 0"}
	for i, w := range want {
		if got := lines[len(lines)-3+i]; got != w {
			t.Errorf("report line %q, want %q", got, w)
		}
	}
	if !strings.Contains(stdout.String(), "turns opened: ") || strings.Contains(stdout.String(), "turns opened: 0\n") {
		t.Error("no turn opened: the run proves nothing")
	}
	if !strings.Contains(stderr.String(), "chaos: ") {
		t.Error("no fault was injected")
	}
	if left := testenv.ProcsUnder(dir); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
}
