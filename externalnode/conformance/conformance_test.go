package conformance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/testenv"
)

// The test binary doubles as the node under check (go-plugin's
// helperProcess pattern): started with RSPP_CONFORMANCE_NODE set, it serves
// that node instead of running tests.
func TestMain(m *testing.M) {
	if behaviour := os.Getenv("RSPP_CONFORMANCE_NODE"); behaviour != "" {
		externalnode.Serve(testNode{behaviour: behaviour})
		os.Exit(0)
	}
	// Every check must stop what it started: the node's reader goroutines
	// included (Instance.Kill waits for them). The fork thread lives as long
	// as the process, by design (externalnode/spawn.go).
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/rspp/rspp/externalnode.OnSpawnThread.func1.1"))
}

// testNode upper-cases text like a well-behaved custom node, except:
// "hang" never ends after a cancel (it ignores ctx and emit errors until its
// input closes),
// "noversion" reports an empty version, "wrongsession" claims another
// session on its outputs.
type testNode struct{ behaviour string }

func (n testNode) Info() externalnode.Info {
	info := externalnode.Info{Name: "test-" + n.behaviour, Kind: "custom", Version: "1.0.0"}
	if n.behaviour == "noversion" {
		info.Version = ""
	}
	return info
}

func (testNode) Configure(context.Context, externalnode.Config) error { return nil }

func (n testNode) Invoke(ctx context.Context, call *externalnode.Call) error {
	for {
		var done <-chan struct{}
		if n.behaviour != "hang" {
			done = ctx.Done()
		}
		select {
		case <-done:
			return ctx.Err()
		case ev, ok := <-call.Inputs():
			if !ok {
				return nil
			}
			out := eventabi.Event{Type: ev.Type, Text: &eventabi.Text{Text: strings.ToUpper(ev.Text.Text)}}
			if n.behaviour == "wrongsession" {
				out.SessionID = "someone-else"
			}
			if err := call.Emit(out); err != nil && n.behaviour != "hang" {
				return err
			}
		}
	}
}

// socketRoot is a short private directory for the checks' socket dirs; the
// test fails if anything is left in it.
func socketRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rnt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		left, _ := os.ReadDir(dir)
		for _, e := range left {
			t.Errorf("left behind in socket root: %s", e.Name())
		}
		os.RemoveAll(dir)
		if pids := speechtest.ChildPIDs(); len(pids) > 0 {
			t.Errorf("child processes left behind: %v", pids)
		}
	})
	return dir
}

func selfAs(t *testing.T, behaviour string) Options {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A -race binary sleeps a second at exit (GORACE atexit_sleep_ms):
	// that is the detector's, not the node's, and would fail the stop.
	return Options{Binary: self, Env: []string{"RSPP_CONFORMANCE_NODE=" + behaviour, "GORACE=atexit_sleep_ms=0"}, SocketRoot: socketRoot(t), Timeout: 5 * time.Second}
}

func logReport(t *testing.T, rep *Report) {
	t.Helper()
	var b strings.Builder
	_ = rep.WriteText(&b)
	t.Log("\n" + b.String())
}

func TestWellBehavedNodePasses(t *testing.T) {
	rep := Run(context.Background(), selfAs(t, "good"))
	if !rep.OK() {
		logReport(t, rep)
		t.Fatalf("failed: %v", rep.Failed())
	}
	if len(rep.Results) != len(Checks) || rep.Name != "test-good" || rep.Kind != "custom" {
		t.Fatalf("report = %+v", rep)
	}
}

// TestBrokenNodesFailTheRightCheck: each misbehaviour fails exactly the
// checks that catch it, and the report names them.
func TestBrokenNodesFailTheRightCheck(t *testing.T) {
	for _, tc := range []struct {
		behaviour string
		failed    []string
		detail    string
	}{
		{"hang", []string{CheckCancel}, "did not end within 2s"},
		{"noversion", []string{CheckDescribe}, "version is empty"},
		{"wrongsession", []string{CheckInvoke}, `claimed another scope`},
	} {
		t.Run(tc.behaviour, func(t *testing.T) {
			t0 := time.Now()
			rep := Run(context.Background(), selfAs(t, tc.behaviour))
			if !slices.Equal(rep.Failed(), tc.failed) {
				logReport(t, rep)
				t.Fatalf("failed checks = %v, want %v", rep.Failed(), tc.failed)
			}
			if d := rep.result(tc.failed[0]).Detail; !strings.Contains(d, tc.detail) {
				t.Fatalf("%s detail %q does not say %q", tc.failed[0], d, tc.detail)
			}
			if el := time.Since(t0); el > 15*time.Second {
				t.Fatalf("checks took %s", el)
			}
		})
	}
}

func TestNotAPluginFailsHandshakeAndSkipsTheRest(t *testing.T) {
	rep := Run(context.Background(), Options{Binary: "/bin/true", SocketRoot: socketRoot(t), Timeout: 2 * time.Second})
	if r := rep.result(CheckHandshake); r.Status != Fail {
		t.Fatalf("handshake = %+v", r)
	}
	if r := rep.result(CheckShutdown); r.Status != Skip || len(rep.Failed()) != len(Checks) {
		logReport(t, rep)
		t.Fatalf("want every check not passed, shutdown skipped")
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil || !strings.Contains(b.String(), fmt.Sprintf("FAIL: %d of %d checks did not pass: handshake,", len(Checks), len(Checks))) {
		t.Fatalf("text report:\n%s", b.String())
	}
}

func TestRunOnceCollectsTextOutputs(t *testing.T) {
	o := selfAs(t, "good")
	var got []string
	sum, err := RunOnce(context.Background(), RunOptions{
		Binary: o.Binary, Env: o.Env, SocketRoot: o.SocketRoot, Text: "hi",
		OnText: func(typ eventabi.Type, s string) { got = append(got, string(typ)+"\t"+s) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"text.delta\tHI"}) || sum.Outputs != 1 || sum.Name != "test-good" {
		t.Fatalf("got %q, summary %+v", got, sum)
	}
	if _, err := RunOnce(context.Background(), RunOptions{Binary: o.Binary}); !errors.Is(err, ErrNoInput) {
		t.Fatalf("no input: %v", err)
	}
}

// TestProvidersPass builds each real provider and checks it with the
// configuration the example runtime config gives it.
func TestProvidersPass(t *testing.T) {
	speechtest.Require(t)
	root := testenv.MustModuleRoot(t)
	bin := t.TempDir()
	cmd := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./providers/espeak", "./providers/rules", "./providers/pocketsphinx")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build providers: %v\n%s", err, out)
	}
	// The spoken sample comes from the espeak node itself (PluginSpeech):
	// pocketsphinx must recognise it below.
	speech := PluginSpeech(filepath.Join(bin, "espeak"), socketRoot(t), 20*time.Second)
	for _, tc := range []struct{ name, config string }{
		{"espeak", ""},
		{"rules", `{"replies": "` + filepath.Join(root, "examples/replies.yaml") + `"}`},
		{"pocketsphinx", `{"grammar": "` + filepath.Join(root, "examples/grammar.jsgf") + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg []byte
			if tc.config != "" {
				cfg = []byte(tc.config)
			}
			rep := Run(context.Background(), Options{
				Binary: filepath.Join(bin, tc.name), Config: cfg, ConfigDir: root,
				Speech: speech, SocketRoot: socketRoot(t), Timeout: 20 * time.Second,
			})
			if !rep.OK() {
				logReport(t, rep)
				t.Fatalf("%s failed: %v", tc.name, rep.Failed())
			}
			if tc.name == "pocketsphinx" && !strings.Contains(rep.result(CheckInvoke).Detail, `"hello there"`) {
				t.Fatalf("spoken sample not recognised: %s", rep.result(CheckInvoke).Detail)
			}
		})
	}
}
