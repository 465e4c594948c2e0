package externalnode

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

// The test binary doubles as the plugin (go-plugin's helperProcess pattern):
// started with RSPP_TEST_PLUGIN set, it serves a test node instead of
// running tests.
func TestMain(m *testing.M) {
	switch os.Getenv("RSPP_TEST_PLUGIN") {
	case "echo":
		Serve(echoNode{})
		os.Exit(0)
	case "behave":
		Serve(behaveNode{})
		os.Exit(0)
	case "counter":
		Serve(&counterNode{})
		os.Exit(0)
	case "v1":
		serveV1()
		os.Exit(0)
	case "deafflood":
		serveDeafFlood()
		os.Exit(0)
	}
	if path := os.Getenv(dialEnv); path != "" {
		os.Exit(dialAndDescribe(path))
	}
	os.Exit(m.Run())
}

// echoNode echoes every input back, uppercased text tagged; "block" makes it
// wait for cancel; "slow ..." is echoed after a 3 ms pause; "panic" panics.
type echoNode struct{}

func (echoNode) Info() Info {
	return Info{Name: "echo", Kind: "custom", Version: "9.9.9"}
}

func (echoNode) Configure(_ context.Context, cfg Config) error {
	var c struct {
		Fail bool `json:"fail"`
	}
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	if c.Fail {
		return errors.New("asked to fail")
	}
	return nil
}

func (echoNode) Invoke(ctx context.Context, call *Call) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-call.Inputs():
			if !ok {
				return nil
			}
			if ev.Text != nil && ev.Text.Text == "block" {
				<-ctx.Done()
				return ctx.Err()
			}
			if ev.Audio != nil && len(ev.Audio.PCM) > 0 && ev.Audio.PCM[0] == 's' {
				select { // a slow consumer: 20 ms per frame, like real time
				case <-time.After(20 * time.Millisecond):
				case <-ctx.Done():
					return ctx.Err()
				}
				continue
			}
			if ev.Text != nil && strings.HasPrefix(ev.Text.Text, "slow ") {
				time.Sleep(3 * time.Millisecond) // a consumer that pauses; echoed below
			}
			if ev.Text != nil && ev.Text.Text == "panic" {
				panic("test panic")
			}
			if err := call.Emit(ev); err != nil {
				return err
			}
		}
	}
}

func startEcho(t *testing.T) (*Instance, string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	inst, err := Start(context.Background(), StartConfig{
		Name: "echo", Binary: self, Env: []string{"RSPP_TEST_PLUGIN=echo"}, SocketDir: dir,
	})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(inst.Kill)
	return inst, dir
}

type result struct {
	events []eventabi.Event // valid after end is received
	end    chan error
}

func open(t *testing.T, inst *Instance, id string) (*HostCall, *result) {
	t.Helper()
	r := &result{end: make(chan error, 1)}
	var evs []eventabi.Event
	// Handler callbacks run on the instance's single reader goroutine, so
	// evs needs no lock; end publishes it.
	c, err := inst.Open(OpenRequest{InvocationID: id, SessionID: "s1", TurnID: "t1", NodeID: "n1"}, Handler{
		OnEvent: func(ev eventabi.Event) { evs = append(evs, ev) },
		OnEnd: func(err error) {
			r.events = evs
			r.end <- err
		},
	})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return c, r
}

func waitEnd(t *testing.T, r *result) error {
	t.Helper()
	select {
	case err := <-r.end:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("invocation did not end")
		return nil
	}
}

func text(s string) eventabi.Event {
	return eventabi.Event{Type: eventabi.TypeTextDelta, Text: &eventabi.Text{Text: s}}
}

func TestRoundTripAndInfo(t *testing.T) {
	inst, _ := startEcho(t)
	if got := inst.Info(); got.Name != "echo" || got.Version != "9.9.9" {
		t.Fatalf("info = %+v", got)
	}
	if err := inst.Configure(context.Background(), Config{NodeID: "n1", Raw: []byte(`{"fail":false}`)}); err != nil {
		t.Fatal(err)
	}
	c, r := open(t, inst, "inv-1")
	for _, s := range []string{"a", "b", "c"} {
		if err := c.Send(text(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CloseInput(); err != nil {
		t.Fatal(err)
	}
	if err := waitEnd(t, r); err != nil {
		t.Fatalf("end: %v", err)
	}
	if len(r.events) != 3 || r.events[2].Text.Text != "c" || r.events[0].SessionID != "s1" || r.events[0].InvocationID != "inv-1" {
		t.Fatalf("events = %v", r.events)
	}
}

func TestConfigureErrorIsReported(t *testing.T) {
	inst, _ := startEcho(t)
	err := inst.Configure(context.Background(), Config{NodeID: "n1", Raw: []byte(`{"fail":true}`)})
	if err == nil || !contains(err.Error(), "asked to fail") {
		t.Fatalf("err = %v", err)
	}
	err = inst.Configure(context.Background(), Config{NodeID: "n1", Raw: []byte(`{"nope":1}`)})
	if err == nil || !contains(err.Error(), "nope") {
		t.Fatalf("unknown key not named: %v", err)
	}
}

func TestCancelTravelsOnControl(t *testing.T) {
	inst, _ := startEcho(t)
	c, r := open(t, inst, "inv-block")
	if err := c.Send(text("block")); err != nil {
		t.Fatal(err)
	}
	if err := c.Cancel("barge_in"); err != nil {
		t.Fatal(err)
	}
	err := waitEnd(t, r)
	if !errors.Is(err, kernel.ErrCancelled) {
		t.Fatalf("end = %v, want cancelled", err)
	}
	// The instance still serves others.
	c2, r2 := open(t, inst, "inv-2")
	_ = c2.Send(text("x"))
	_ = c2.CloseInput()
	if err := waitEnd(t, r2); err != nil {
		t.Fatal(err)
	}
}

func TestPanicFailsOnlyThatInvocation(t *testing.T) {
	inst, _ := startEcho(t)
	c, r := open(t, inst, "inv-p")
	_ = c.Send(text("panic"))
	err := waitEnd(t, r)
	if !errors.Is(err, kernel.ErrNodeFailed) || !contains(err.Error(), "panic") {
		t.Fatalf("end = %v", err)
	}
	if _, err := inst.Health(context.Background()); err != nil {
		t.Fatalf("instance died with the panic: %v", err)
	}
}

func TestSIGKILLIsTypedCrash(t *testing.T) {
	inst, dir := startEcho(t)
	_, r := open(t, inst, "inv-k")
	if err := syscall.Kill(inst.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := waitEnd(t, r)
	var ee *ExitError
	if !errors.Is(err, kernel.ErrNodeCrashed) || !errors.As(err, &ee) || ee.Signal != "killed" {
		t.Fatalf("end = %v, want crash by signal killed", err)
	}
	select {
	case <-inst.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("Done not closed")
	}
	if _, err := inst.Open(OpenRequest{InvocationID: "late"}, Handler{}); !errors.Is(err, kernel.ErrNodeCrashed) {
		t.Fatalf("open on dead instance: %v", err)
	}
	inst.Kill()
	inst.Kill() // idempotent
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(left) != 0 {
		t.Fatalf("socket dirs left behind: %v", left)
	}
}

func TestChecksumMismatchRefusesToStart(t *testing.T) {
	self, _ := os.Executable()
	_, err := Start(context.Background(), StartConfig{Name: "echo", Binary: self, Checksum: make([]byte, 32), Env: []string{"RSPP_TEST_PLUGIN=echo"}, SocketDir: t.TempDir()})
	if !errors.Is(err, kernel.ErrProtocol) || !contains(err.Error(), "checksum") {
		t.Fatalf("err = %v", err)
	}
}

func TestNotAPluginFailsHandshake(t *testing.T) {
	_, err := Start(context.Background(), StartConfig{Name: "true", Binary: "/bin/true", SocketDir: t.TempDir(), StartTimeout: 2 * time.Second})
	if !errors.Is(err, kernel.ErrProtocol) {
		t.Fatalf("err = %v", err)
	}
}

func contains(s, sub string) bool {
	return len(s) >= len(sub) && (len(sub) == 0 || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// Priority across the process boundary: with a backlog of audio queued for
// a slow plugin (far more than it can consume before the cancel arrives),
// the cancel travels on the Control stream and ends the invocation long
// before the backlog could have drained. Were cancel queued behind the
// data, the end would come only after every frame was consumed.
func TestCancelOvertakesQueuedAudio(t *testing.T) {
	inst, _ := startEcho(t)
	c, r := open(t, inst, "inv-backlog")
	const frames = 400 // 8 s of audio at the plugin's 20 ms per frame
	pcm := make([]byte, 640)
	pcm[0] = 's'
	sent := make(chan int, 1)
	go func() {
		n := 0
		for ; n < frames; n++ {
			if c.Send(eventabi.Event{Type: eventabi.TypeAudioFrame, Audio: &eventabi.Audio{PCM: pcm, SampleRate: 16000, Channels: 1}}) != nil {
				break
			}
		}
		sent <- n
	}()
	time.Sleep(100 * time.Millisecond) // a backlog builds up
	start := time.Now()
	if err := c.Cancel("barge_in"); err != nil {
		t.Fatal(err)
	}
	err := waitEnd(t, r)
	took := time.Since(start)
	if !errors.Is(err, kernel.ErrCancelled) {
		t.Fatalf("end = %v, want cancelled", err)
	}
	n := <-sent
	// The backlog alone needed (n - consumed) * 20 ms; the cancel must not
	// have waited for it. Compare against the backlog, not a wall-clock
	// budget: a cancel behind 300+ frames would take 6 s or more.
	backlog := time.Duration(n) * 20 * time.Millisecond
	t.Logf("sent %d frames (%v of backlog at the plugin's pace); cancel ended the invocation after %v", n, backlog, took)
	if n < 100 {
		t.Fatalf("only %d frames were queued: no backlog to overtake", n)
	}
	if took >= backlog/2 {
		t.Fatalf("cancel took %v with a %v backlog: it waited behind the audio", took, backlog)
	}
}

// A node that forwards its input unchanged (a pass-through) emits it as
// its own output: the input's provenance (node "ingress", the upstream
// invocation) must not ride along, or the kernel would reject it.
func TestEmitStampsTheCallsIdentity(t *testing.T) {
	var got eventabi.Event
	c := NewTestCall("inv-7", "s1", "t1", "echo", nil, func(ev eventabi.Event) error { got = ev; return nil })
	in := eventabi.Event{Type: eventabi.TypeAudioFrame, SessionID: "s1", TurnID: "t1", NodeID: "ingress", InvocationID: "inv-2"}
	if err := c.Emit(in); err != nil {
		t.Fatal(err)
	}
	if got.NodeID != "echo" || got.InvocationID != "inv-7" || got.SessionID != "s1" || got.Lane != eventabi.LaneData {
		t.Fatalf("emitted %+v", got)
	}
}

func TestTailKeepsTheLastBytes(t *testing.T) {
	tl := &Tail{Max: 4}
	_, _ = tl.Write([]byte("abc"))
	_, _ = tl.Write([]byte("defg"))
	if tl.String() != "defg" {
		t.Fatalf("got %q", tl.String())
	}
}
