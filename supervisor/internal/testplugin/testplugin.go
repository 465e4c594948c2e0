// Package testplugin is the supervisor packages' test plugin: test
// binaries of supervisor/... double as a plugin (go-plugin's helperProcess
// pattern) and as the sandbox entry point, and write configs of a
// three-node pipeline of such plugins. Test code only; nothing outside
// tests imports it.
package testplugin

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/isolation"
	"github.com/rspp/rspp/kernel/eventabi"
)

// Main is a test binary's TestMain: started with the argument Arg it
// serves Node instead of running tests; otherwise it runs them and fails
// the binary if a goroutine leaked.
func Main(m *testing.M) {
	isolation.MaybeSandboxMain()
	if len(os.Args) > 1 && os.Args[1] == Arg {
		externalnode.Serve(Node{})
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

// Arg is the first argument that makes a test binary serve Node.
const Arg = "rspp-test-plugin"

// FrameBytes is one 20 ms frame of 16 kHz mono s16le.
const FrameBytes = 640

// Node plays a pipeline role cheaply and deterministically: "stt"
// answers a transcript when its input closes, "llm" a reply, "tts" five
// audio frames, "echo" echoes each input. Its version is
// RSPP_TEST_VERSION (default 1.0.0); its declared kind is the argument
// after rspp-test-plugin (default custom). If the file named by hang_file
// exists when an invocation starts, the file is removed and that
// invocation hangs, ignoring cancel (a stuck plugin).
type Node struct{}

type NodeConfig struct {
	Role     string `json:"role"`
	HangFile string `json:"hang_file"`
	OOMFile  string `json:"oom_file"` // like hang_file, but allocates until the memory limit kills it
	// CrashSessions: an invocation of a session whose id starts with it
	// floods Flood audio frames as fast as it can, then the plugin exits
	// (a tenant's crash-looping, flooding node).
	CrashSessions string `json:"crash_sessions"`
	Flood         int    `json:"flood"`
}

var nodeCfg NodeConfig

func (Node) Info() externalnode.Info {
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

func (Node) Configure(_ context.Context, cfg externalnode.Config) error {
	if err := cfg.Decode(&nodeCfg); err != nil {
		return err
	}
	if nodeCfg.Role == "" {
		return errors.New("role is required")
	}
	return nil
}

func (Node) Invoke(ctx context.Context, call *externalnode.Call) error {
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
		frame := make([]byte, FrameBytes)
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
			if err := call.EmitAudio(make([]byte, FrameBytes), 16000, 1); err != nil {
				return err
			}
		}
	}
	return nil
}

// Tone is d of a loud 440 Hz tone: speech to the kernel's energy VAD.
func Tone(d time.Duration) []byte {
	n := int(d / (time.Second / 16000))
	pcm := make([]byte, 2*n)
	for i := range n {
		v := int16(8000 * math.Sin(2*math.Pi*440*float64(i)/16000))
		pcm[2*i], pcm[2*i+1] = byte(v), byte(uint16(v)>>8)
	}
	return pcm
}

// Config writes a three-node pipeline of test nodes. extra is added
// to every provider block (e.g. "instances: 2"); nodeExtra to every node.
func Config(t testing.TB, dir string, providerExtra map[string]string, nodeExtra string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("version: 1\nruntime:\n  state_dir: " + ShortDir(t) + "\n  kill_grace: 500ms\nproviders:\n")
	for _, role := range []string{"stt", "llm", "tts"} {
		b.WriteString("  " + role + ":\n    kind: " + role + "\n    binary: " + self + "\n    args: [" + Arg + ", " + role + "]\n")
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
	b.WriteString(ChainEdges)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// ChainEdges closes a test config: the stt -> llm -> tts chain's edges and
// the VAD settings.
const ChainEdges = `  edges:
    - {from: ingress, to: stt}
    - {from: stt, to: llm}
    - {from: llm, to: tts}
    - {from: tts, to: egress}
vad: {threshold_db: -40, min_speech: 60ms, hangover: 300ms}
`

// ShortDir is a temp dir with a path short enough for unix sockets below
// it (t.TempDir's are not), removed when the test ends.
func ShortDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "rspp-t")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// SignalDir holds the files a test uses to steer its test plugins
// (hang_file, oom_file). Plugins run as a uid of their own, which must
// reach and remove them: t.TempDir's are root's alone.
func SignalDir(t testing.TB) string {
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

// EventLog collects events a test is told of (pool events); Wait blocks
// until one matches.
type EventLog[E any] struct {
	mu  sync.Mutex
	evs []E
	ch  chan struct{}
}

// NewEventLog makes an empty EventLog.
func NewEventLog[E any]() *EventLog[E] { return &EventLog[E]{ch: make(chan struct{}, 1)} }

// Add records ev (an Events callback).
func (l *EventLog[E]) Add(ev E) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
	default:
	}
}

// Wait returns the first event that matches, failing t after 30 s.
func (l *EventLog[E]) Wait(t testing.TB, what string, match func(E) bool) E {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		l.mu.Lock()
		for _, ev := range l.evs {
			if match(ev) {
				l.mu.Unlock()
				return ev
			}
		}
		l.mu.Unlock()
		select {
		case <-l.ch:
		case <-deadline:
			t.Fatalf("no %s event", what)
		}
	}
}

// All is a copy of the events recorded so far.
func (l *EventLog[E]) All() []E {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}

// AdmissionConfig is the test pipeline with an admission block.
func AdmissionConfig(t testing.TB, admission string, providerExtra map[string]string) string {
	t.Helper()
	path := Config(t, t.TempDir(), providerExtra, "")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("admission:\n" + admission); err != nil {
		t.Fatal(err)
	}
	return path
}
