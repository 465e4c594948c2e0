package externalnode

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	rsppv1 "github.com/rspp/rspp/proto/rspp/v1"
)

// behaveNode picks its behaviour per invocation from the call's node id,
// so one instance can serve a stuck invocation next to a healthy one:
// "stall" never reads its input and waits for cancel; "flood" emits 60 KiB
// text events as fast as it can until cancelled; "oversize" tries one
// event larger than the wire allows and reports what Emit said; anything
// else echoes its input.
type behaveNode struct{ echoNode }

func (behaveNode) Info() Info {
	return Info{Name: "behave", Kind: "custom", Version: "1.0.0", InputWindow: 8}
}

func (n behaveNode) Invoke(ctx context.Context, call *Call) error {
	switch call.NodeID {
	case "stall":
		<-ctx.Done()
		return ctx.Err()
	case "flood":
		big := strings.Repeat("x", 60<<10)
		for ctx.Err() == nil {
			if err := call.EmitText(eventabi.TypeTextDelta, big, false); err != nil {
				return err
			}
		}
		return ctx.Err()
	case "oversize":
		err := call.EmitAudio(make([]byte, 2<<20), 16000, 1)
		msg := "nil"
		if err != nil {
			msg = err.Error()
		}
		if !errors.Is(err, ErrEventTooLarge) {
			msg = "not ErrEventTooLarge: " + msg
		}
		return call.EmitText(eventabi.TypeTextFinal, msg, true)
	}
	return n.echoNode.Invoke(ctx, call)
}

// v1Server is a node of protocol version 1 (no flow control): the host
// must refuse it with an error that says what to do.
type v1Server struct{ rsppv1.UnimplementedNodeServer }

func (v1Server) Describe(context.Context, *rsppv1.DescribeRequest) (*rsppv1.NodeInfo, error) {
	return &rsppv1.NodeInfo{Name: "old", Kind: "custom", Version: "0.1.0", ProtocolVersion: 1}, nil
}

type v1Plugin struct{ plugin.NetRPCUnsupportedPlugin }

func (v1Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	rsppv1.RegisterNodeServer(s, v1Server{})
	return nil
}

func (v1Plugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("plugin side only")
}

func serveV1() {
	hs := Handshake
	hs.ProtocolVersion = 1
	plugin.Serve(&plugin.ServeConfig{HandshakeConfig: hs, Plugins: plugin.PluginSet{pluginName: v1Plugin{}},
		GRPCServer: plugin.DefaultGRPCServer})
}

func startPlugin(t *testing.T, mode string) *Instance {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	inst, err := Start(context.Background(), StartConfig{Name: mode, Binary: self, Env: []string{"RSPP_TEST_PLUGIN=" + mode}, SocketDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(inst.Kill)
	return inst
}

// flowCall is an open call with its delivery and output counts.
type flowCall struct {
	*HostCall
	mu        sync.Mutex
	texts     []string // text outputs, in order
	delivered atomic.Int64
	outputs   atomic.Int64
	inFlight  atomic.Int64
	end       chan error
}

func openNode(t *testing.T, inst *Instance, id, node string, budget OutputBudget) *flowCall {
	t.Helper()
	fc := &flowCall{end: make(chan error, 1)}
	c, err := inst.Open(OpenRequest{InvocationID: id, SessionID: "s-" + id, TurnID: "t1", NodeID: node, Budget: budget}, Handler{
		OnEvent: func(ev eventabi.Event) {
			fc.outputs.Add(1)
			if ev.Text != nil {
				fc.mu.Lock()
				fc.texts = append(fc.texts, ev.Text.Text)
				fc.mu.Unlock()
			}
		},
		OnEnd:       func(err error) { fc.end <- err },
		OnDelivered: func(n int) { fc.delivered.Add(int64(n)) },
		InFlight:    &fc.inFlight,
	})
	if err != nil {
		t.Fatalf("open %s: %v", id, err)
	}
	fc.HostCall = c
	return fc
}

func (fc *flowCall) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-fc.end:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("invocation %s did not end", fc.ID())
		return nil
	}
}

// A node that stops reading holds only its own invocation: the host sends
// it exactly its window, keeps the rest queued without blocking the caller,
// and another invocation on the same instance and stream runs to the end.
func TestStalledInvocationHoldsUpNoOther(t *testing.T) {
	inst := startPlugin(t, "behave")
	window := inst.Info().InputWindow
	if window != 8 {
		t.Fatalf("window = %d, want the node's 8", window)
	}
	stuck := openNode(t, inst, "stuck", "stall", OutputBudget{})
	frame := eventabi.Event{Type: eventabi.TypeAudioFrame, Audio: &eventabi.Audio{PCM: make([]byte, 640), SampleRate: 16000, Channels: 1}}
	start := time.Now()
	for i := range 2000 {
		if err := stuck.Send(frame); err != nil {
			t.Fatalf("send %d to the stuck call: %v", i, err)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("2000 non-blocking sends took %v", took) // sanity, not a benchmark: a blocking send would hang forever
	}
	ok := openNode(t, inst, "ok", "echo", OutputBudget{})
	for range 500 {
		if err := ok.Send(text("x")); err != nil {
			t.Fatal(err)
		}
	}
	_ = ok.CloseInput()
	if err := ok.wait(t); err != nil {
		t.Fatalf("healthy invocation beside a stuck one: %v", err)
	}
	if got := ok.outputs.Load(); got != 500 {
		t.Fatalf("healthy invocation echoed %d of 500", got)
	}
	if got := ok.delivered.Load(); got != 500 {
		t.Fatalf("healthy invocation: %d inputs reported delivered, want 500", got)
	}
	if got := stuck.delivered.Load(); got != int64(window) {
		t.Fatalf("stuck invocation: %d inputs went to the plugin, want exactly its window %d", got, window)
	}
	// Its host queue is bounded too: past it Send says so instead of growing.
	var full error
	for range maxQueuedInputs {
		if full = stuck.Send(frame); full != nil {
			break
		}
	}
	if !errors.Is(full, ErrInputQueueFull) || !errors.Is(full, kernel.ErrQueueFull) {
		t.Fatalf("send past the host queue: %v, want ErrInputQueueFull", full)
	}
	if err := stuck.Cancel("timeout"); err != nil {
		t.Fatal(err)
	}
	if err := stuck.wait(t); !errors.Is(err, kernel.ErrCancelled) {
		t.Fatalf("stuck invocation after cancel: %v", err)
	}
}

// A host that ignores the window breaks the protocol: the plugin fails
// that invocation (it never blocks its stream on it) and serves on.
func TestWindowOverrunFailsTheInvocationNotTheStream(t *testing.T) {
	inst := startPlugin(t, "behave")
	c := openNode(t, inst, "over", "stall", OutputBudget{})
	frame := text("x")
	inst.wmu.Lock()
	c.credit = 100 // a host that miscounts
	inst.wmu.Unlock()
	for range 100 {
		_ = c.Send(frame)
	}
	err := c.wait(t)
	if !errors.Is(err, kernel.ErrProtocol) || !strings.Contains(err.Error(), "input window") {
		t.Fatalf("end = %v, want a protocol error naming the window", err)
	}
	again := openNode(t, inst, "after", "echo", OutputBudget{})
	_ = again.Send(text("y"))
	_ = again.CloseInput()
	if err := again.wait(t); err != nil || again.outputs.Load() != 1 {
		t.Fatalf("instance after an overrun: end %v, %d outputs", err, again.outputs.Load())
	}
}

// A node emitting past its output budget fails that invocation with a
// typed error naming the node and the budget; the plugin is told to stop
// (its call finishes), and the instance serves on.
func TestOutputBudgetNamesNodeAndBudget(t *testing.T) {
	inst := startPlugin(t, "behave")
	for _, tc := range []struct {
		budget OutputBudget
		name   string
	}{
		{OutputBudget{BytesPerSecond: 2 << 20, MaxBytesInFlight: 64 << 20}, BudgetBytesPerSecond},
		{OutputBudget{EventsPerSecond: 50, MaxBytesInFlight: 64 << 20}, BudgetEventsPerSecond},
		{OutputBudget{MaxBytesInFlight: 1 << 20}, BudgetBytesInFlight}, // nobody gives bytes back
		{OutputBudget{MaxEventBytes: 1 << 10}, BudgetMaxEventBytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := openNode(t, inst, "flood-"+tc.name, "flood", tc.budget)
			err := c.wait(t)
			var be *BudgetError
			if !errors.As(err, &be) || !errors.Is(err, ErrOutputBudget) || !errors.Is(err, kernel.ErrResourceLimit) {
				t.Fatalf("end = %v, want a BudgetError", err)
			}
			if be.Node != "flood" || be.Budget != tc.name {
				t.Fatalf("budget error names node %q budget %q, want flood / %s", be.Node, be.Budget, tc.name)
			}
			select {
			case <-c.Finished():
			case <-time.After(5 * time.Second):
				t.Fatal("the flooding plugin was not stopped")
			}
			t.Logf("%v (after %d outputs, %d more dropped)", err, c.outputs.Load(), c.BudgetRejectedFrames())
		})
	}
	ok := openNode(t, inst, "after", "echo", OutputBudget{})
	_ = ok.Send(text("y"))
	_ = ok.CloseInput()
	if err := ok.wait(t); err != nil || ok.outputs.Load() != 1 {
		t.Fatalf("instance after floods: end %v, %d outputs", err, ok.outputs.Load())
	}
}

// One event too large for the wire is an error returned to the author:
// the stream, the invocation and the instance go on.
func TestOversizeEmitIsAnErrorToTheAuthor(t *testing.T) {
	inst := startPlugin(t, "behave")
	var got string
	end := make(chan error, 1)
	_, err := inst.Open(OpenRequest{InvocationID: "big", SessionID: "s", TurnID: "t", NodeID: "oversize"}, Handler{
		OnEvent: func(ev eventabi.Event) { got = ev.Text.Text },
		OnEnd:   func(err error) { end <- err },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-end; err != nil {
		t.Fatalf("end = %v", err)
	}
	if !strings.Contains(got, "too large") || strings.HasPrefix(got, "not") {
		t.Fatalf("the author saw %q, want ErrEventTooLarge", got)
	}
	if _, err := inst.Health(context.Background()); err != nil {
		t.Fatalf("instance died of the oversize emit: %v", err)
	}
}

func TestProtocolV1PluginIsRefusedSayingWhy(t *testing.T) {
	self, _ := os.Executable()
	_, err := Start(context.Background(), StartConfig{Name: "old", Binary: self, Env: []string{"RSPP_TEST_PLUGIN=v1"}, SocketDir: t.TempDir()})
	if !errors.Is(err, kernel.ErrProtocol) || !strings.Contains(err.Error(), "node protocol 1") || !strings.Contains(err.Error(), "rebuild") {
		t.Fatalf("err = %v, want a protocol error naming version 1 and the fix", err)
	}
}

// Inputs reach the node in the order sent, whether the recv loop hands one
// straight to a waiting node or the pump delivers a backlog, and credit
// keeps flowing: a node that reads in fits and starts (every seventh input
// is a "slow" one the echo node sleeps on) echoes 400 inputs, far more
// than its window of 8, in order.
func TestInputsStayInOrderAcrossDirectAndQueuedDelivery(t *testing.T) {
	inst := startPlugin(t, "behave")
	c := openNode(t, inst, "j1", "echo", OutputBudget{})
	const n = 400
	want := make([]string, n)
	for i := range n {
		want[i] = strconv.Itoa(i)
		if i%7 == 3 {
			want[i] = "slow " + want[i]
		}
		for {
			err := c.Send(eventabi.Event{Type: eventabi.TypeTextDelta, Text: &eventabi.Text{Text: want[i]}})
			if err == nil {
				break
			}
			if !errors.Is(err, ErrInputQueueFull) {
				t.Fatalf("send %d: %v", i, err)
			}
			time.Sleep(time.Millisecond) // the host-side queue is full: wait for credit
		}
		if i%50 == 0 {
			time.Sleep(5 * time.Millisecond) // let the node catch up and wait again
		}
	}
	if err := c.CloseInput(); err != nil {
		t.Fatal(err)
	}
	if err := c.wait(t); err != nil {
		t.Fatalf("invocation ended with %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.texts) != n {
		t.Fatalf("node echoed %d of %d inputs", len(c.texts), n)
	}
	for i, s := range c.texts {
		if s != want[i] {
			t.Fatalf("echo %d is %q, want %q: out of order (%q...)", i, s, want[i], c.texts[max(0, i-3):min(n, i+3)])
		}
	}
}
