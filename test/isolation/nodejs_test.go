package isolation_test

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/isolation"
)

// nodeJSNode lays out test/nodejs/echo-node (a "#!/usr/bin/env node"
// script speaking go-plugin's handshake and rspp.v1.Node in JavaScript)
// with its modules and the contract in a directory any uid can read.
func nodeJSNode(t *testing.T) (script, dir string) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("needs node (Debian package nodejs; .ci/run installs it): the interpreter node test runs a Node.js node")
	}
	src, err := filepath.Abs("../nodejs/echo-node")
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.MkdirTemp("", "rspp-nodejs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	_ = os.Chmod(root, 0o755)
	dir = filepath.Join(root, "echo-node")
	cp := exec.Command("cp", "-r", src, dir)
	if out, err := cp.CombinedOutput(); err != nil {
		t.Fatalf("copy node: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@grpc", "grpc-js")); err != nil {
		npm := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		npm.Dir = dir
		if out, err := npm.CombinedOutput(); err != nil {
			t.Skipf("the Node.js node's modules are not installed (run npm ci in test/nodejs/echo-node; .ci/run does) and npm ci failed: %v\n%s", err, out)
		}
	}
	proto, err := os.ReadFile("../../proto/rspp/v1/rspp.proto")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rspp.proto"), proto, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("chmod", "-R", "a+rX", root).Run(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "main.js"), dir
}

// TestNodeJSNodeRunsUnderBothProfiles: an interpreter node (a #! script)
// starts, is verified against its checksum, and answers a turn under
// trusted and under the sealed tenant profile, on either plugin channel.
func TestNodeJSNodeRunsUnderBothProfiles(t *testing.T) {
	w := setup(t)
	script, dir := nodeJSNode(t)
	_, entryBin := binaries(t)
	trusted, err := isolation.ProfileByName("trusted")
	if err != nil {
		t.Fatal(err)
	}
	tenant, err := isolation.ProfileByName("tenant", isolation.Override{ScratchRoot: w.scratch, ReadPaths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	type variant struct {
		p       isolation.Profile
		channel externalnode.Channel
	}
	// Both profiles on the default channel; the trusted one on mtls too.
	for _, v := range []variant{{trusted, externalnode.ChannelPeerCred}, {tenant, externalnode.ChannelPeerCred}, {trusted, externalnode.ChannelMTLS}} {
		p := v.p
		t.Run(p.Name+"/"+string(v.channel), func(t *testing.T) {
			env, err := w.es.New("nodejs-"+p.Name, "tenant-js", p.Limits)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = env.Close() })
			p.EntryPath = entryBin
			var stderr strings.Builder
			errw := &lockedWriter{w: &stderr}
			inst, err := externalnode.Start(context.Background(), externalnode.StartConfig{
				Name: "nodejs-" + p.Name, Binary: script,
				// Verified by the sandbox on the descriptor it execs (or mounts).
				Runner: p.RunnerFunc(env, isolation.Target{Binary: script,
					Secure: &plugin.SecureConfig{Checksum: sha256File(t, script), Hash: sha256.New()}}),
				SkipHostEnv: p.SkipHostEnv,
				SocketDir:   w.sockets, StartTimeout: 30 * time.Second, Stderr: errw, Channel: v.channel,
			})
			if err != nil {
				errw.mu.Lock()
				defer errw.mu.Unlock()
				t.Fatalf("Node.js node under %s: %v\nstderr: %s", p.Name, err, stderr.String())
			}
			t.Cleanup(inst.Kill)
			if info := inst.Info(); info.Name != "echo-node" || info.Version != "1.0.0-js" {
				t.Fatalf("describe: %+v", info)
			}
			o := invoke(t, inst, "js-session", "js-turn", 0)
			if o.err != nil || text(o) != "node.js: hello js-turn" || o.events[0].SessionID != "js-session" {
				t.Fatalf("turn through the Node.js node under %s: %q, end %v", p.Name, text(o), o.err)
			}
			pids, _ := env.Pids()
			t.Logf("%s: Node.js node answered %q (pids in envelope %v)", p.Name, text(o), pids)
		})
	}
}

func sha256File(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return s[:]
}

// lockedWriter collects the plugin's stderr (written by go-plugin's
// goroutine) for the failure message.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
