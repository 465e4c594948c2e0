package supervisor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/isolation"
	"github.com/rspp/rspp/kernel/eventabi"
)

// The test binary doubles as the sandbox entry point and as a plugin
// (go-plugin's helperProcess pattern): started with the argument
// rspp-test-plugin it serves testNode instead of running tests.
func TestMain(m *testing.M) {
	isolation.MaybeSandboxMain()
	if len(os.Args) > 1 && os.Args[1] == testPluginArg {
		externalnode.Serve(testNode{})
		os.Exit(0)
	}
	code := m.Run()
	if code == 0 {
		// Every pool, runtime, admin server and session stopped its
		// goroutines. The fork thread lives as long as the process by design.
		if err := goleak.Find(goleak.IgnoreAnyFunction("github.com/rspp/rspp/externalnode.OnSpawnThread.func1.1")); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const testPluginArg = "rspp-test-plugin"

// testNode plays a pipeline role cheaply and deterministically: "stt"
// answers a transcript when its input closes, "llm" a reply, "tts" five
// audio frames, "echo" echoes each input. Its version is
// RSPP_TEST_VERSION (default 1.0.0); its declared kind is the argument
// after rspp-test-plugin (default custom). If the file named by hang_file
// exists when an invocation starts, the file is removed and that
// invocation hangs, ignoring cancel (a stuck plugin).
type testNode struct{}

type testNodeConfig struct {
	Role     string `json:"role"`
	HangFile string `json:"hang_file"`
	OOMFile  string `json:"oom_file"` // like hang_file, but allocates until the memory limit kills it
	// CrashSessions: an invocation of a session whose id starts with it
	// floods Flood audio frames as fast as it can, then the plugin exits
	// (a tenant's crash-looping, flooding node).
	CrashSessions string `json:"crash_sessions"`
	Flood         int    `json:"flood"`
}

var nodeCfg testNodeConfig

func (testNode) Info() externalnode.Info {
	v := os.Getenv("RSPP_TEST_VERSION")
	if v == "" {
		v = "1.0.0"
	}
	kind := "custom"
	if len(os.Args) > 2 {
		kind = os.Args[2]
	}
	return externalnode.Info{Name: "testnode", Kind: kind, Version: v}
}

func (testNode) Configure(_ context.Context, cfg externalnode.Config) error {
	if err := cfg.Decode(&nodeCfg); err != nil {
		return err
	}
	if nodeCfg.Role == "" {
		return errors.New("role is required")
	}
	return nil
}

func (testNode) Invoke(ctx context.Context, call *externalnode.Call) error {
	if f := nodeCfg.HangFile; f != "" && os.Remove(f) == nil {
		select {} // stuck: ignores cancel and input
	}
	if f := nodeCfg.OOMFile; f != "" && os.Remove(f) == nil {
		var hog [][]byte
		for {
			b := make([]byte, 16<<20)
			for i := range b {
				b[i] = byte(i)
			}
			hog = append(hog, b)
		}
	}
	if p := nodeCfg.CrashSessions; p != "" && strings.HasPrefix(call.SessionID, p) {
		frame := make([]byte, frameBytes)
		for range nodeCfg.Flood {
			if call.EmitAudio(frame, 16000, 1) != nil {
				break
			}
		}
		os.Exit(3)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-call.Inputs():
			if !ok {
				return finish(call)
			}
			if nodeCfg.Role == "echo" {
				if err := call.Emit(ev); err != nil {
					return err
				}
			}
		}
	}
}

func finish(call *externalnode.Call) error {
	switch nodeCfg.Role {
	case "stt":
		return call.EmitText(eventabi.TypeTranscriptFinal, "hello there", true)
	case "llm":
		return call.EmitText(eventabi.TypeTextFinal, "hello how can i help you", true)
	case "tts":
		for range 5 {
			if err := call.EmitAudio(make([]byte, frameBytes), 16000, 1); err != nil {
				return err
			}
		}
	}
	return nil
}

// tone is d of a loud 440 Hz tone: speech to the kernel's energy VAD.
func tone(d time.Duration) []byte {
	n := int(d / (time.Second / 16000))
	pcm := make([]byte, 2*n)
	for i := range n {
		v := int16(8000 * math.Sin(2*math.Pi*440*float64(i)/16000))
		pcm[2*i], pcm[2*i+1] = byte(v), byte(uint16(v)>>8)
	}
	return pcm
}

// testConfig writes a three-node pipeline of test nodes. extra is added
// to every provider block (e.g. "instances: 2"); nodeExtra to every node.
func testConfig(t testing.TB, dir string, providerExtra map[string]string, nodeExtra string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("version: 1\nruntime:\n  state_dir: " + shortDir(t) + "\n  kill_grace: 500ms\nproviders:\n")
	for _, role := range []string{"stt", "llm", "tts"} {
		b.WriteString("  " + role + ":\n    kind: " + role + "\n    binary: " + self + "\n    args: [" + testPluginArg + ", " + role + "]\n")
		b.WriteString("    health_interval: 500ms\n")
		if x := providerExtra[role]; x != "" {
			b.WriteString("    " + strings.ReplaceAll(x, "\n", "\n    ") + "\n")
		}
		cfg := "{role: " + role
		if x := providerExtra[role+".config"]; x != "" {
			cfg += ", " + x
		}
		b.WriteString("    config: " + cfg + "}\n")
	}
	b.WriteString("pipeline:\n  nodes:\n")
	for _, role := range []string{"stt", "llm", "tts"} {
		b.WriteString("    - {id: " + role + ", provider: " + role + ", timeout: 10s" + nodeExtra + "}\n")
	}
	b.WriteString(chainEdges)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// chainEdges closes a test config: the stt -> llm -> tts chain's edges and
// the VAD settings.
const chainEdges = `  edges:
    - {from: ingress, to: stt}
    - {from: stt, to: llm}
    - {from: llm, to: tts}
    - {from: tts, to: egress}
vad: {threshold_db: -40, min_speech: 60ms, hangover: 300ms}
`

// shortDir is a temp dir with a path short enough for unix sockets below
// it (t.TempDir's are not), removed when the test ends.
func shortDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "rspp-t")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// signalDir holds the files a test uses to steer its test plugins
// (hang_file, oom_file). Plugins run as a uid of their own, which must
// reach and remove them: t.TempDir's are root's alone.
func signalDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "rspp-signal-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}
