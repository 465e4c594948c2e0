package sdk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode/conformance"
	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/wav"
)

// TestSDKUnitTests runs each SDK's own unit tests (node's test runner,
// Python's unittest): they drive the SDK through a real gRPC server.
func TestSDKUnitTests(t *testing.T) {
	root := testenv.MustModuleRoot(t)
	t.Run("node", func(t *testing.T) {
		needNode(t, root)
		r := mustRun(t, filepath.Join(root, "sdk", "node"), nil, 3*time.Minute, "npm", "test", "--silent")
		if !strings.Contains(r.stdout, "# fail 0") {
			t.Fatalf("npm test:\n%s", r.stdout)
		}
		t.Log(lastLines(r.stdout, 8))
	})
	t.Run("python", func(t *testing.T) {
		needPython(t)
		r := mustRun(t, filepath.Join(root, "sdk", "python"), nil, 3*time.Minute, "/usr/bin/python3", "-m", "unittest", "discover", "-s", "tests")
		if !strings.Contains(r.stderr, "OK") {
			t.Fatalf("unittest:\n%s", r.stderr)
		}
		t.Log(lastLines(r.stderr, 3))
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// lang is how a scaffolded project of one language is tested and run.
type lang struct {
	name   string
	prefix string // what the node is configured to say before the reply
	// prepare runs the project's own steps (install, test, build) in dir
	// and returns the node executable.
	prepare func(t *testing.T, dir, project string) string
	// readPaths are what the tenant profile must let the node read.
	readPaths func(root, project string) []string
}

var langs = []lang{
	{
		name: "go", prefix: "go says",
		prepare: func(t *testing.T, dir, project string) string {
			offline := []string{"GOPROXY=off", "GOFLAGS=-mod=readonly", "CGO_ENABLED=0"}
			r := mustRun(t, project, offline, 5*time.Minute, "go", "test", "-count=1", "./...")
			t.Logf("go test: %s", strings.TrimSpace(r.stdout))
			mustRun(t, project, offline, 5*time.Minute, "go", "build", "-o", "sdknode", ".")
			return filepath.Join(project, "sdknode")
		},
		readPaths: func(_, project string) []string { return []string{project} },
	},
	{
		name: "node", prefix: "node says",
		prepare: func(t *testing.T, dir, project string) string {
			mustRun(t, project, nil, 3*time.Minute, "npm", "install", "--offline", "--no-audit", "--no-fund")
			r := mustRun(t, project, nil, 3*time.Minute, "npm", "test")
			if !strings.Contains(r.stdout, "# fail 0") {
				t.Fatalf("npm test:\n%s", r.stdout)
			}
			t.Logf("npm test: %s", lastLines(r.stdout, 7))
			return filepath.Join(project, "main.js")
		},
		readPaths: func(root, project string) []string { return []string{project, filepath.Join(root, "sdk", "node")} },
	},
	{
		name: "python", prefix: "python says",
		prepare: func(t *testing.T, dir, project string) string {
			r := mustRun(t, project, nil, 3*time.Minute, "/usr/bin/python3", "-m", "unittest")
			t.Logf("unittest: %s", lastLines(r.stderr, 3))
			return filepath.Join(project, "main.py")
		},
		// The interpreter's extension modules load libraries at run time
		// (grpc's cygrpc): /usr/lib holds them.
		readPaths: func(root, project string) []string {
			return []string{project, filepath.Join(root, "sdk", "python"), "/usr/lib"}
		},
	},
}

// TestNewNodeEndToEnd: for each language, from a directory outside the
// repository, `rspp-node new --lang L`, the project's own tests, `rspp-node
// check` (every check passes), then `rspp run` with the node as a custom
// node between the LLM and the TTS under the trusted and the tenant
// profile: the turn commits and the output WAV says the node's prefix
// before the reply.
func TestNewNodeEndToEnd(t *testing.T) {
	speechtest.Require(t)
	root := testenv.MustModuleRoot(t)
	tool := rsppNodeBin(t)
	pcm, err := speechtest.Synthesize(context.Background(), "what time is it")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range langs {
		t.Run(l.name, func(t *testing.T) {
			switch l.name {
			case "node":
				needNode(t, root)
			case "python":
				needPython(t)
			}
			dir := outsideDir(t)
			project := filepath.Join(dir, "sdknode")
			r := mustRun(t, dir, nil, time.Minute, tool, "new", "sdknode", "--lang", l.name, "--sdk", root)
			t.Logf("rspp-node new: %s", lastLines(r.stdout, 1))
			exe := l.prepare(t, dir, project)
			r = run(t, dir, nil, 2*time.Minute, tool, "check", exe)
			if want := fmt.Sprintf("OK: all %d checks passed", len(conformance.Checks)); r.code != 0 || !strings.Contains(r.stdout, want) {
				t.Fatalf("rspp-node check %s: exit %d\n%s%s", exe, r.code, r.stdout, r.stderr)
			}
			t.Logf("rspp-node check:\n%s", r.stdout)
			for _, profile := range []string{"trusted", "tenant"} {
				t.Run(profile, func(t *testing.T) {
					heard := pipeline(t, root, dir, exe, l, profile, pcm)
					if want := l.prefix + " it is time to test"; heard != want {
						t.Fatalf("agent audio decodes as %q, want %q", heard, want)
					}
				})
			}
		})
	}
}

// pipeline runs stt -> llm -> the node -> tts on pcm with rspp run and
// returns what pocketsphinx hears in the output.
func pipeline(t *testing.T, root, dir, exe string, l lang, profile string, pcm []byte) string {
	t.Helper()
	run := filepath.Join(dir, "run-"+profile)
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	state, err := os.MkdirTemp("", "rs") // unix socket paths must stay short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	if err := os.Chmod(state, 0o711); err != nil { // the sandbox user reaches its socket
		t.Fatal(err)
	}
	node := fmt.Sprintf("    binary: %s\n    profile: %s\n", exe, profile)
	if profile == "tenant" {
		node += "    tenant: sdk-e2e\n    read_paths: [" + strings.Join(l.readPaths(root, filepath.Dir(exe)), ", ") + "]\n"
	}
	cfg := fmt.Sprintf(`version: 1
runtime:
  state_dir: %s
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
  sdknode:
    kind: custom
%s    config: {prefix: %q}
pipeline:
  nodes:
    - {id: stt, provider: pocketsphinx, timeout: 15s}
    - {id: llm, provider: rules, timeout: 15s}
    - {id: say, provider: sdknode, timeout: 15s}
    - {id: tts, provider: espeak, timeout: 15s}
  edges:
    - {from: ingress, to: stt}
    - {from: stt, to: llm}
    - {from: llm, to: say}
    - {from: say, to: tts}
    - {from: tts, to: egress}
vad: {threshold_db: -40, min_speech: 60ms, hangover: 400ms}
`, state, bins.Provider["pocketsphinx"], filepath.Join(root, "examples", "grammar.jsgf"),
		bins.Provider["rules"], filepath.Join(root, "examples", "replies.yaml"), bins.Provider["espeak"], node, l.prefix)
	cfgPath := filepath.Join(run, "config.yaml")
	in, out, timeline := filepath.Join(run, "in.wav"), filepath.Join(run, "out.wav"), filepath.Join(run, "timeline.jsonl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := wav.WriteFile(in, pcm); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, run, 2*time.Minute, bins.RSPP, "run", "--config", cfgPath, "--input", in, "--output", out, "--timeline", timeline)
	if r.code != 0 || !strings.Contains(r.stdout, "1 committed, 0 aborted") {
		t.Fatalf("rspp run (%s, %s): exit %d\nstdout:\n%s\nstderr:\n%s", l.name, profile, r.code, r.stdout, r.stderr)
	}
	recs, err := testenv.ReadTimeline(timeline)
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Fatal(err)
	}
	grammar := filepath.Join(run, "said.jsgf")
	if err := os.WriteFile(grammar, []byte("#JSGF V1.0;\ngrammar said;\npublic <said> = [(go | node | python) says] it is time to test;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	heard, err := speechtest.Decode(context.Background(), out, grammar)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s node under %s: the agent says %q", l.name, profile, heard)
	return heard
}

func runCmd(t *testing.T, dir string, timeout time.Duration, name string, args ...string) result {
	t.Helper()
	return run(t, dir, nil, timeout, name, args...)
}
