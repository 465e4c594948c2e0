package externalnode

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/rspp/rspp/kernel/eventabi"
)

// counterNode is idempotent: it emits "run N" (N counts its Invokes in
// this process) and then echoes its inputs.
type counterNode struct{ runs atomic.Int64 }

func (*counterNode) Info() Info {
	return Info{Name: "counter", Kind: "custom", Version: "1.0.0", Idempotent: true}
}
func (*counterNode) Configure(context.Context, Config) error { return nil }
func (n *counterNode) Invoke(ctx context.Context, call *Call) error {
	if err := call.EmitText(eventabi.TypeTextDelta, fmt.Sprintf("run %d", n.runs.Add(1)), false); err != nil {
		return err
	}
	for ev := range call.Inputs() {
		if err := call.Emit(ev); err != nil {
			return err
		}
	}
	return nil
}

func openReq(t *testing.T, inst *Instance, req OpenRequest) (*HostCall, *result) {
	t.Helper()
	r := &result{end: make(chan error, 1)}
	var evs []eventabi.Event
	c, err := inst.Open(req, Handler{
		OnEvent: func(ev eventabi.Event) { evs = append(evs, ev) },
		OnEnd:   func(err error) { r.events = evs; r.end <- err },
	})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return c, r
}

func texts(evs []eventabi.Event) []string {
	var out []string
	for _, ev := range evs {
		if ev.Text != nil {
			out = append(out, ev.Text.Text)
		}
	}
	return out
}

// A retried invocation (same idempotency key) of an idempotent plugin is
// answered from the first run: Invoke runs once per key; the replayed
// outputs carry the retry's invocation id and epoch.
func TestIdempotentRetryIsDeduplicated(t *testing.T) {
	inst := startPlugin(t, "counter")
	if !inst.Info().Idempotent {
		t.Fatal("Describe lost the idempotent declaration")
	}
	run := func(id, key string, epoch uint64) []eventabi.Event {
		c, r := openReq(t, inst, OpenRequest{InvocationID: id, SessionID: "s1", TurnID: "t1", NodeID: "n1", Epoch: epoch, IdempotencyKey: key})
		_ = c.Send(text("x"))
		_ = c.CloseInput()
		if err := waitEnd(t, r); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		return r.events
	}
	first := run("a1", "s1/t1/n1", 3)
	if got := texts(first); len(got) != 2 || got[0] != "run 1" || got[1] != "x" || first[0].Epoch != 3 {
		t.Fatalf("first run %v (epoch %d)", got, first[0].Epoch)
	}
	again := run("a2", "s1/t1/n1", 4)
	if got := texts(again); len(got) != 2 || got[0] != "run 1" || got[1] != "x" {
		t.Fatalf("retry ran again: %v", got)
	}
	for _, ev := range again {
		if ev.InvocationID != "a2" || ev.Epoch != 4 {
			t.Fatalf("replayed output not re-addressed: %+v", ev)
		}
	}
	if got := texts(run("a3", "s1/t2/n1", 4)); got[0] != "run 2" {
		t.Fatalf("another key was deduplicated: %v", got)
	}
}

// A plugin that does not declare idempotency runs every attempt, and
// stamps outputs with the OPEN's epoch.
func TestEmitStampsTheOpensEpoch(t *testing.T) {
	inst, _ := startEcho(t)
	c, r := openReq(t, inst, OpenRequest{InvocationID: "e1", SessionID: "s1", TurnID: "t1", NodeID: "n1", Epoch: 42, IdempotencyKey: "k"})
	_ = c.Send(text("hello"))
	_ = c.CloseInput()
	if err := waitEnd(t, r); err != nil || len(r.events) != 1 || r.events[0].Epoch != 42 {
		t.Fatalf("events %+v, %v", r.events, err)
	}
}
