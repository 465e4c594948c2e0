package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rspp/rspp/externalnode/conformance"
	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/wav"
)

// rsppNode runs the command line in-process and returns exit code, stdout
// and stderr.
func rsppNode(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := execute(context.Background(), args, &out, &errOut)
	t.Logf("rspp-node %s -> %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

func goCmd(t *testing.T, dir string, args ...string) {
	t.Helper()
	goCmdEnv(t, dir, nil, args...)
}

func goCmdEnv(t *testing.T, dir string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func noChildrenLeft(t *testing.T) {
	t.Cleanup(func() {
		if pids := speechtest.ChildPIDs(); len(pids) > 0 {
			t.Errorf("child processes left behind: %v", pids)
		}
	})
}

// TestScaffoldedNodesBuildTestAndPassCheck: `new` of every Go kind, in a
// directory outside the module tree, gives projects that vet, pass their
// own unit tests and build offline (no module proxy, go.mod left as
// written) against this checkout, and pass `check` as built binaries.
// (test/sdk does the same for Node.js and Python.)
func TestScaffoldedNodesBuildTestAndPassCheck(t *testing.T) {
	noChildrenLeft(t)
	root := testenv.MustModuleRoot(t)
	dir := t.TempDir()
	kinds := []string{"custom", "stt", "llm", "tts"}
	bin := filepath.Join(dir, "bin")
	for _, kind := range kinds {
		proj := filepath.Join(dir, kind)
		if code, out, _ := rsppNode(t, "new", "my-"+kind, "--kind", kind, "--dir", proj, "--sdk", root); code != exitOK || !strings.Contains(out, "go.mod") {
			t.Fatalf("new %s: exit %d", kind, code)
		}
		offline := []string{"GOPROXY=off", "GOFLAGS=-mod=readonly"}
		goCmdEnv(t, proj, offline, "vet", "./...")
		goCmdEnv(t, proj, offline, "test", "-count=1", "./...")
		goCmdEnv(t, proj, offline, "build", "-o", filepath.Join(bin, kind), ".")
	}
	for _, kind := range kinds {
		code, out, _ := rsppNode(t, "check", filepath.Join(bin, kind))
		if code != exitOK || !strings.Contains(out, fmt.Sprintf("OK: all %d checks passed", len(conformance.Checks))) {
			t.Fatalf("check of scaffolded %s node: exit %d", kind, code)
		}
	}
	// `run` prints text outputs as <event_type>\t<text> lines.
	if code, out, _ := rsppNode(t, "run", filepath.Join(bin, "llm"), "--text", "hello there"); code != exitOK || !strings.HasSuffix(out, "text.delta\tthere\ntext.final\tyou said hello there\n") {
		t.Fatalf("run llm: exit %d, output %q", code, out)
	}
	// A second `new` into the same place refuses, naming the file.
	code, _, stderr := rsppNode(t, "new", "my-custom", "--dir", filepath.Join(dir, "custom"), "--sdk", root)
	if code != exitFail || !strings.Contains(stderr, filepath.Join(dir, "custom", "go.mod")+" already exists") {
		t.Fatalf("overwrite: exit %d", code)
	}
	// Without a checkout to build against, new says how to name one.
	if code, _, stderr := rsppNode(t, "new", "x", "--dir", filepath.Join(dir, "x")); code != exitUsage || !strings.Contains(stderr, "--sdk PATH") {
		t.Fatalf("no sdk: exit %d", code)
	}
}

func TestNewRejectsBadNameAndKind(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := rsppNode(t, "new", "2fast", "--dir", dir); code != exitUsage || !strings.Contains(stderr, "must start with an ASCII letter") {
		t.Fatalf("bad name: exit %d", code)
	}
	if code, _, stderr := rsppNode(t, "new", "ok", "--kind", "asr", "--dir", dir); code != exitUsage || !strings.Contains(stderr, `unknown node kind "asr"`) {
		t.Fatalf("bad kind: exit %d", code)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("rejected new wrote %d files", len(entries))
	}
}

func TestCheckExitCodes(t *testing.T) {
	noChildrenLeft(t)
	code, out, _ := rsppNode(t, "check", "/bin/true", "--timeout", "2s", "--json")
	var rep struct {
		OK      bool `json:"ok"`
		Results []struct {
			Check, Status string
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output: %v", err)
	}
	if code != exitFail || rep.OK || len(rep.Results) != len(conformance.Checks) || rep.Results[0].Check != "handshake" || rep.Results[0].Status != "fail" {
		t.Fatalf("not a plugin: exit %d, report %+v", code, rep)
	}
	for _, args := range [][]string{
		{"check"},
		{"check", "/bin/true", "--timeout", "soon"},
		{"check", "/no/such/node"},
		{"check", "/bin/true", "--config", "/no/such/cfg.json"},
		{"run", "/bin/true"},
		{"run", "/bin/true", "--text", "a", "--input", "b.wav"},
		{"frobnicate"},
	} {
		if code, _, _ := rsppNode(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

// TestRunEspeakWritesWAV: `run --text` on the espeak provider writes its
// speech to --output.
func TestRunEspeakWritesWAV(t *testing.T) {
	speechtest.Require(t)
	noChildrenLeft(t)
	root := testenv.MustModuleRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "espeak")
	goCmd(t, root, "build", "-o", bin, "./providers/espeak")
	out := filepath.Join(dir, "out.wav")
	code, _, stderr := rsppNode(t, "run", bin, "--text", "hello there", "--output", out)
	if code != exitOK || !strings.Contains(stderr, "bytes of audio written to "+out) {
		t.Fatalf("run: exit %d", code)
	}
	pcm, err := wav.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(pcm) < 16000 { // "hello there" is well over half a second
		t.Fatalf("%d bytes of PCM", len(pcm))
	}
}
