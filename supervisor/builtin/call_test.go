package builtin

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeNode is a test node: it answers each text input with one text.delta
// of the same text uppercased; hooks misbehave on request.
type fakeNode struct {
	panics    bool
	hang      chan struct{} // OnEvent waits on it, ignoring ctx: a stuck node
	block     chan struct{} // OnEvent waits on it or ctx
	flood     bool          // OnEvent emits until emit refuses
	emitType  eventabi.Type // overrides the output type
	turn      string        // overrides the output's turn id
	size      int           // output text size (0: the input's)
	initErr   error
	cancelled *atomic.Int32
	shutdowns *atomic.Int32
	stuckDown chan struct{} // Shutdown waits on it, ignoring ctx
}

func (n *fakeNode) Init(context.Context, Config) error { return n.initErr }

func (n *fakeNode) OnEvent(ctx context.Context, ev eventabi.Event, emit Emit) error {
	switch {
	case n.panics:
		panic("boom")
	case n.hang != nil:
		<-n.hang
		return nil
	case n.block != nil:
		select {
		case <-n.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	case n.flood:
		for {
			if err := emit(eventabi.Event{Type: eventabi.TypeTextDelta, Text: &eventabi.Text{Text: "x"}}); err != nil {
				return err
			}
		}
	}
	out := eventabi.Event{Type: eventabi.TypeTextDelta, TurnID: n.turn, Text: &eventabi.Text{Text: strings.ToUpper(ev.Text.Text)}}
	if n.emitType != "" {
		out.Type = n.emitType
	}
	if n.size > 0 {
		out.Text.Text = strings.Repeat("a", n.size)
	}
	return emit(out)
}

func (n *fakeNode) OnCancel(context.Context, string) error {
	if n.cancelled != nil {
		n.cancelled.Add(1)
	}
	return nil
}

func (n *fakeNode) Shutdown(context.Context) error {
	if n.stuckDown != nil {
		<-n.stuckDown
	}
	if n.shutdowns != nil {
		n.shutdowns.Add(1)
	}
	return nil
}

// closer is a fakeNode that emits a text.final "<end>" when its input closes.
type closer struct{ fakeNode }

func (c *closer) OnInputClosed(_ context.Context, emit Emit) error {
	return emit(eventabi.Event{Type: eventabi.TypeTextFinal, Text: &eventabi.Text{Text: "<end>", Final: true}})
}

// recorder is a Handler that records what reaches it; after stop is set,
// anything reaching it is a failure.
type recorder struct {
	mu        sync.Mutex
	events    []eventabi.Event
	delivered int
	ends      []error
	endC      chan struct{}
	stopped   atomic.Bool
	late      atomic.Int32
	inFlight  atomic.Int64
}

func newRecorder() *recorder { return &recorder{endC: make(chan struct{}, 1)} }

func (r *recorder) handler() externalnode.Handler {
	return externalnode.Handler{
		OnEvent: func(ev eventabi.Event) {
			if r.stopped.Load() {
				r.late.Add(1)
			}
			r.mu.Lock()
			r.events = append(r.events, ev)
			r.mu.Unlock()
		},
		OnDelivered: func(n int) {
			if r.stopped.Load() {
				r.late.Add(1)
			}
			r.mu.Lock()
			r.delivered += n
			r.mu.Unlock()
		},
		OnEnd: func(err error) {
			if r.stopped.Load() {
				r.late.Add(1)
			}
			r.mu.Lock()
			r.ends = append(r.ends, err)
			r.mu.Unlock()
			r.endC <- struct{}{}
		},
		InFlight: &r.inFlight,
	}
}

func (r *recorder) waitEnd(t *testing.T) error {
	t.Helper()
	select {
	case <-r.endC:
	case <-time.After(10 * time.Second):
		t.Fatal("the call never ended")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ends[0]
}

func (r *recorder) texts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		out = append(out, ev.Text.Text)
	}
	return out
}

var testBuiltin = Builtin{Name: "fake", Kind: "custom", Version: "0.1",
	Emits: []eventabi.Type{eventabi.TypeTextDelta, eventabi.TypeTextFinal}}

func host(t *testing.T, tm Timeouts, limit int, f Factory) *Host {
	t.Helper()
	h := NewHost(tm, limit)
	if err := h.Register("builtin:fake", testBuiltin, f); err != nil {
		t.Fatal(err)
	}
	if err := h.Register("builtin:fake", testBuiltin, f); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second Register: %v, want ErrDuplicate", err)
	}
	t.Cleanup(func() {
		if !h.Close(5 * time.Second) {
			t.Error("host goroutines did not end")
		}
	})
	return h
}

var req = externalnode.OpenRequest{InvocationID: "s1/inv-1", SessionID: "s1", TurnID: "turn-1", NodeID: "filter", Epoch: 3}

func text(s string) eventabi.Event {
	return eventabi.Event{Type: eventabi.TypeTextDelta, Text: &eventabi.Text{Text: s}}
}

func open(t *testing.T, h *Host, r *recorder) *Call {
	t.Helper()
	c, err := h.Open("builtin:fake", req, r.handler())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Inputs reach the node in Send order, each taken input is credited
// back once (the session's edge slot), outputs carry the invocation's
// ids, and the call ends exactly once, after its last output.
func TestCallRunsInOrderAndEndsOnce(t *testing.T) {
	var shutdowns atomic.Int32
	h := host(t, Timeouts{}, 0, func() Node { return &closer{fakeNode{shutdowns: &shutdowns}} })
	r := newRecorder()
	c := open(t, h, r)
	if c.Instance() != "builtin:fake" {
		t.Fatalf("instance %q", c.Instance())
	}
	words := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for _, w := range words {
		if err := c.Send(text(w)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CloseInput(); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(text("after close")); err != nil {
		t.Fatalf("send after close: %v", err)
	}
	if err := r.waitEnd(t); err != nil {
		t.Fatalf("end %v", err)
	}
	if got, want := strings.Join(r.texts(), ""), "ABCDEFGH<end>"; got != want {
		t.Fatalf("outputs %q, want %q", got, want)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.delivered != len(words) || len(r.ends) != 1 {
		t.Fatalf("delivered %d, ends %d", r.delivered, len(r.ends))
	}
	for _, ev := range r.events {
		if ev.InvocationID != req.InvocationID || ev.NodeID != req.NodeID || ev.SessionID != req.SessionID || ev.TurnID != req.TurnID || ev.Epoch != req.Epoch {
			t.Fatalf("output not stamped with the call's ids: %+v", ev)
		}
	}
	// Every output counts in flight until its consumer releases it.
	var sum int64
	for _, ev := range r.events {
		sum += int64(externalnode.EventBytes(ev))
	}
	if r.inFlight.Load() != sum {
		t.Fatalf("in flight %d, want %d", r.inFlight.Load(), sum)
	}
	r.mu.Unlock()
	if !h.Close(5 * time.Second) {
		t.Fatal("goroutines left")
	}
	r.mu.Lock()
	if shutdowns.Load() != 1 {
		t.Fatalf("shutdown ran %d times", shutdowns.Load())
	}
}

// A slow clean-up does not hold the turn: the end is reported before
// Shutdown runs.
func TestEndIsNotHeldByShutdown(t *testing.T) {
	stuck := make(chan struct{})
	h := host(t, Timeouts{Shutdown: time.Hour}, 0, func() Node { return &fakeNode{stuckDown: stuck} })
	defer close(stuck) // before the host's Close (cleanup) waits
	r := newRecorder()
	c := open(t, h, r)
	_ = c.Send(text("x"))
	_ = c.CloseInput()
	if err := r.waitEnd(t); err != nil {
		t.Fatal(err)
	}
	if got := r.texts(); len(got) != 1 || got[0] != "X" {
		t.Fatalf("outputs %q", got)
	}
}

// Send never waits on the node: with the node stuck on its first input,
// the queue fills to its bound and the next Send fails at once, typed.
func TestSendIsBoundedAndNeverBlocks(t *testing.T) {
	block := make(chan struct{})
	h := host(t, Timeouts{}, 2, func() Node { return &fakeNode{block: block} })
	r := newRecorder()
	c := open(t, h, r)
	if err := c.Send(text("first")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		taken := r.delivered
		r.mu.Unlock()
		if taken == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the node never took its first input")
		}
		time.Sleep(time.Millisecond)
	}
	for i := range 2 {
		if err := c.Send(text("queued")); err != nil {
			t.Fatalf("queued send %d: %v", i, err)
		}
	}
	err := c.Send(text("one too many"))
	if !errors.Is(err, ErrInputQueueFull) || !errors.Is(err, kernel.ErrQueueFull) {
		t.Fatalf("send past the bound: %v, want ErrInputQueueFull (kernel.ErrQueueFull)", err)
	}
	close(block)
	_ = c.CloseInput()
	if err := r.waitEnd(t); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.texts(), " "); got != "FIRST QUEUED QUEUED" {
		t.Fatalf("outputs %q", got)
	}
}

// A hook that hangs (ignoring its context) ends the call as a timeout; a
// panic is recovered and ends it as a crash; an Init error as a failure.
// Each error names the builtin and the hook.
func TestHookFailuresAreTyped(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang) // releases the stuck node so its goroutine ends before goleak looks
	cases := []struct {
		name string
		node func() Node
		kind error
		says string
	}{
		{"hang", func() Node { return &fakeNode{hang: hang} }, kernel.ErrNodeTimeout, "builtin fake on_event"},
		{"panic", func() Node { return &fakeNode{panics: true} }, kernel.ErrNodeCrashed, "panic in builtin fake on_event: boom"},
		{"init", func() Node { return &fakeNode{initErr: errors.New("no model")} }, kernel.ErrNodeFailed, "builtin fake init: no model"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHost(Timeouts{Event: 50 * time.Millisecond}, 0)
			_ = h.Register("builtin:fake", testBuiltin, tc.node)
			r := newRecorder()
			c := open(t, h, r)
			_ = c.Send(text("x"))
			err := r.waitEnd(t)
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("end %v, want %v saying %q", err, tc.kind, tc.says)
			}
			if tc.name == "hang" && !errors.Is(err, ErrHookTimeout) {
				t.Fatalf("timeout %v is not ErrHookTimeout", err)
			}
			_ = c.Send(text("y")) // a call that ended takes no more, quietly
			if tc.name != "hang" && !h.Close(5*time.Second) {
				t.Fatal("goroutines left")
			}
		})
	}
}

// Cancel stops a node mid-flood: once Cancel has returned, not one output,
// credit or end reaches the handler; the node hears OnCancel and Shutdown.
func TestNothingReachesTheHandlerAfterCancel(t *testing.T) {
	var cancelled, shutdowns atomic.Int32
	h := host(t, Timeouts{}, 0, func() Node { return &fakeNode{flood: true, cancelled: &cancelled, shutdowns: &shutdowns} })
	r := newRecorder()
	c := open(t, h, r)
	_ = c.Send(text("go"))
	for len(r.texts()) < 100 {
		time.Sleep(time.Millisecond)
	}
	c.Cancel("barge_in")
	r.stopped.Store(true)
	c.Cancel("again") // idempotent
	_ = c.Send(text("late"))
	_ = c.CloseInput()
	if !h.Close(5 * time.Second) {
		t.Fatal("goroutines left")
	}
	if n := r.late.Load(); n != 0 {
		t.Fatalf("%d callbacks after Cancel returned", n)
	}
	r.mu.Lock()
	ends := len(r.ends)
	r.mu.Unlock()
	if ends != 0 {
		t.Fatalf("a cancelled call reported %d ends", ends)
	}
	if cancelled.Load() != 1 || shutdowns.Load() != 1 {
		t.Fatalf("OnCancel %d, Shutdown %d; want 1 each", cancelled.Load(), shutdowns.Load())
	}
}

// Outputs are held to a plugin's rules: the declared emits and the
// invocation's correlation (kernel.NodeOutputRules), and its output budget.
func TestOutputsAreCheckedLikeAPlugins(t *testing.T) {
	cases := []struct {
		name   string
		node   *fakeNode
		kinds  []error
		budget externalnode.OutputBudget
	}{
		{"undeclared", &fakeNode{emitType: eventabi.TypeTranscriptFinal}, []error{kernel.ErrProtocol, eventabi.ErrUndeclaredType}, externalnode.OutputBudget{}},
		{"foreign turn", &fakeNode{turn: "turn-9"}, []error{kernel.ErrProtocol, eventabi.ErrCorrelation}, externalnode.OutputBudget{}},
		{"too big", &fakeNode{size: 4096}, []error{kernel.ErrResourceLimit, externalnode.ErrOutputBudget}, externalnode.OutputBudget{MaxEventBytes: 1024}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := host(t, Timeouts{}, 0, func() Node { return tc.node })
			r := newRecorder()
			rq := req
			rq.Budget = tc.budget
			c, err := h.Open("builtin:fake", rq, r.handler())
			if err != nil {
				t.Fatal(err)
			}
			_ = c.Send(text("x"))
			err = r.waitEnd(t)
			for _, k := range tc.kinds {
				if !errors.Is(err, k) {
					t.Fatalf("end %v, want %v", err, k)
				}
			}
			if len(r.texts()) != 0 || c.refused.Load() != 1 {
				t.Fatalf("refused output reached the handler (%v) or was not counted (%d)", r.texts(), c.refused.Load())
			}
		})
	}
}

func TestOpenUnknownPoolAndClosedHost(t *testing.T) {
	h := NewHost(Timeouts{}, 0)
	if _, err := h.Open("builtin:nope", req, externalnode.Handler{}); !errors.Is(err, ErrUnknownPool) || !errors.Is(err, kernel.ErrNodeUnavailable) {
		t.Fatalf("unknown pool: %v", err)
	}
	_ = h.Register("builtin:fake", testBuiltin, func() Node { return &fakeNode{} })
	h.Close(time.Second)
	if _, err := h.Open("builtin:fake", req, externalnode.Handler{}); !errors.Is(err, ErrHostClosed) || !errors.Is(err, kernel.ErrNodeUnavailable) {
		t.Fatalf("closed host: %v", err)
	}
}

func TestShapeTypesHookErrors(t *testing.T) {
	for _, c := range []struct {
		in   error
		kind error
	}{
		{errors.New("x"), kernel.ErrNodeFailed},
		{context.DeadlineExceeded, kernel.ErrNodeTimeout},
		{context.Canceled, kernel.ErrCancelled},
		{kernel.ErrResourceLimit, kernel.ErrResourceLimit},
	} {
		if got := shape("on_event", c.in); !errors.Is(got, c.kind) {
			t.Fatalf("Shape(%v) = %v", c.in, got)
		}
	}
	if shape("x", nil) != nil {
		t.Fatal("nil shaped")
	}
}
