package sdk

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/test/testenv"
)

// TestNodeConfigErrorIsAConfigError: a key the node does not know in its
// config block stops rspp run before anything runs, with exit 2 (bad
// config, as the README promises) and a message naming the provider, the
// key and the node's real pid, in every language.
func TestNodeConfigErrorIsAConfigError(t *testing.T) {
	root := testenv.MustModuleRoot(t)
	tool := rsppNodeBin(t)
	for _, l := range langs {
		t.Run(l.name, func(t *testing.T) {
			switch l.name {
			case "node":
				needNode(t, root)
			case "python":
				needPython(t)
			}
			dir := outsideDir(t)
			mustRun(t, dir, nil, time.Minute, tool, "new", "sdknode", "--lang", l.name, "--sdk", root)
			exe := l.prepare(t, dir, filepath.Join(dir, "sdknode"))
			state, err := os.MkdirTemp("", "rs")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(state) })
			cfg := fmt.Sprintf(`version: 1
runtime: {state_dir: %s}
providers:
  rules:
    kind: llm
    binary: %s
    config: {replies: %s}
  sdknode:
    kind: custom
    binary: %s
    config: {prefix: "well", voice: loud}
pipeline:
  nodes:
    - {id: llm, provider: rules, timeout: 5s}
    - {id: say, provider: sdknode, timeout: 5s}
  edges:
    - {from: ingress, to: llm}
    - {from: llm, to: say}
    - {from: say, to: egress}
`, state, bins.Provider["rules"], filepath.Join(root, "examples", "replies.yaml"), exe)
			cfgPath := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			in := filepath.Join(root, "test", "sdk", "testdata", "silence.wav")
			r := run(t, dir, nil, time.Minute, bins.RSPP, "run", "--config", cfgPath, "--input", in, "--output", filepath.Join(dir, "out.wav"))
			t.Logf("rspp run: exit %d: %s", r.code, strings.TrimSpace(r.stderr))
			if r.code != 2 {
				t.Fatalf("exit %d, want 2 (config error)\n%s", r.code, r.stderr)
			}
			for _, want := range []string{"provider sdknode", `"voice"`, "refused its config block"} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr does not say %q", want)
				}
			}
			if m := regexp.MustCompile(`\(pid (\d+)\)`).FindStringSubmatch(r.stderr); m == nil || m[1] == "0" {
				t.Errorf("stderr does not name the node's pid: %q", r.stderr)
			}
		})
	}
}
