package isolation_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/rspp/rspp/isolation"
)

// runSandboxedLive starts the plugin in helper mode and returns what it
// wrote before closing its stdout; it keeps running until the test ends.
func runSandboxedLive(t *testing.T, p isolation.Profile, mode string) (string, error) {
	t.Helper()
	entry, plug := testBinaries(t)
	p.EntryPath = entry
	socketDir, err := os.MkdirTemp("", "plugin-dir")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(socketDir) })
	gp := &exec.Cmd{Dir: worldDir(t), Env: append(os.Environ(), "PLUGIN_UNIX_SOCKET_DIR="+socketDir)}
	r, err := p.RunnerFunc(nil, isolation.Target{Binary: plug, Env: []string{"RSPP_ISOLATION_HELPER=" + mode}})(hclog.NewNullLogger(), gp, socketDir)
	if err != nil {
		return "", err
	}
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		return "", err
	}
	t.Cleanup(func() { _ = r.Kill(ctx); _ = r.Wait(ctx) })
	go func() { _, _ = io.Copy(io.Discard, r.Stderr()) }()
	out, err := io.ReadAll(r.Stdout())
	return string(out), err
}

// runScript starts a "#!" script as the plugin through the sandbox and
// returns its stdout and the wait error.
func runScript(t *testing.T, p isolation.Profile, script string, secure *plugin.SecureConfig) (string, error) {
	t.Helper()
	entry, _ := testBinaries(t)
	p.EntryPath = entry
	socketDir, err := os.MkdirTemp("", "plugin-dir")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(socketDir) })
	gp := &exec.Cmd{Env: []string{"PLUGIN_UNIX_SOCKET_DIR=" + socketDir}}
	rep := &isolation.SetupReport{}
	r, err := p.RunnerFunc(nil, isolation.Target{Binary: script, Secure: secure, Report: rep})(hclog.NewNullLogger(), gp, socketDir)
	if err != nil {
		return "", err
	}
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		return "", err
	}
	t.Cleanup(func() { _ = r.Kill(ctx); _ = r.Wait(ctx) })
	go func() { _, _ = io.Copy(io.Discard, r.Stderr()) }()
	out, _ := io.ReadAll(r.Stdout())
	return string(out), r.Wait(ctx)
}

func profiles(t *testing.T) map[string]isolation.Profile {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the sandbox switches uid and (tenant) creates namespaces")
	}
	tr, err := isolation.ProfileByName("trusted")
	if err != nil {
		t.Fatal(err)
	}
	te, err := isolation.ProfileByName("tenant", isolation.Override{ScratchRoot: traversableDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]isolation.Profile{"trusted": tr, "tenant": te}
}

// TestSandboxRunsScripts: a "#!" plugin runs under both profiles, and its
// checksum is still checked (on the script's own bytes).
func TestSandboxRunsScripts(t *testing.T) {
	dir := traversableDir(t)
	script := filepath.Join(dir, "hello.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"hello from $0 as $(id -u 2>/dev/null || echo ?)\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, p := range profiles(t) {
		t.Run(name, func(t *testing.T) {
			out, err := runScript(t, p, script, &plugin.SecureConfig{Checksum: sha(t, script), Hash: sha256.New()})
			if err != nil || !strings.HasPrefix(out, "hello from ") {
				t.Fatalf("script under %s: %q, %v", name, out, err)
			}
			t.Logf("%s: %s", name, strings.TrimSpace(out))
			wrong := sha256.Sum256([]byte("not the script"))
			if _, err := runScript(t, p, script, &plugin.SecureConfig{Checksum: wrong[:], Hash: sha256.New()}); !errors.Is(err, isolation.ErrChecksum) {
				t.Fatalf("script with a wrong checksum under %s: %v, want ErrChecksum", name, err)
			}
		})
	}
}

// TestSandboxSetupFailureIsReported: a failure inside the entry point
// (here: exec of a plugin file that is not executable) is in the error the
// host gets, with the entry's reason, under both profiles.
func TestSandboxSetupFailureIsReported(t *testing.T) {
	dir := traversableDir(t)
	script := filepath.Join(dir, "not-executable.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho never\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, p := range profiles(t) {
		t.Run(name, func(t *testing.T) {
			out, err := runScript(t, p, script, nil)
			if !errors.Is(err, isolation.ErrSandboxSetup) || !strings.Contains(err.Error(), "exec "+script) ||
				!strings.Contains(err.Error(), "permission denied") {
				t.Fatalf("start of a non-executable plugin under %s: %v (out %q); want the entry's reason", name, err, out)
			}
			t.Logf("%s: %v", name, err)
		})
	}
}
