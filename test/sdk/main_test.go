// Package sdk tests what a node author gets, as one would use it: the
// Node.js and Python SDKs' own unit tests, `rspp-node new --lang L` in a
// directory outside the repository, the project's own tests, `rspp-node
// check`, and an `rspp run` pipeline with the new node as a custom node
// between the LLM and the TTS, under the trusted and the tenant profile,
// with the node's effect heard in the output WAV (pocketsphinx). And one
// broken node per rule of `check`, each failing exactly that check.
package sdk

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/test/testenv"
)

var bins testenv.Bins

func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithBins(m, "rspp-sdk-bin-", &bins))
}

// rsppNodeBin builds cmd/node-sdk beside the other binaries, once.
func rsppNodeBin(t *testing.T) string {
	t.Helper()
	p := filepath.Join(bins.Dir, "rspp-node")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	cmd := exec.Command("go", "build", "-o", p, "./cmd/node-sdk")
	cmd.Dir = testenv.MustModuleRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build rspp-node: %v\n%s", err, out)
	}
	return p
}

// result is one finished command.
type result struct {
	code           int
	stdout, stderr string
}

// run runs name args in dir with extra env, bounded by timeout; the
// output goes to the test log when it fails.
func run(t *testing.T, dir string, env []string, timeout time.Duration, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{code: 0, stdout: out.String(), stderr: errb.String()}
	if err != nil {
		r.code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		}
	}
	return r
}

// mustRun is run that fails the test on a non-zero exit.
func mustRun(t *testing.T, dir string, env []string, timeout time.Duration, name string, args ...string) result {
	t.Helper()
	r := run(t, dir, env, timeout, name, args...)
	if r.code != 0 {
		t.Fatalf("%s %s (in %s): exit %d\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), dir, r.code, r.stdout, r.stderr)
	}
	return r
}

// needNode skips without Node.js or without the built SDK.
func needNode(t *testing.T, root string) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("needs node and npm (make test-deps installs them)")
	}
	if _, err := os.Stat(filepath.Join(root, "sdk", "node", "dist", "src", "index.js")); err != nil {
		t.Skip("the Node.js SDK is not built: run make sdk (make test does)")
	}
}

// needPython skips without Debian's python3 with grpcio and protobuf.
func needPython(t *testing.T) {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import grpc.aio, google.protobuf").Run(); err != nil {
		t.Skip("needs Debian's python3-grpcio and python3-protobuf (make sdk installs them)")
	}
}

// outsideDir is a fresh directory outside the repository that the
// sandbox user can read (tenant profile), removed after the test.
func outsideDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rsdk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
