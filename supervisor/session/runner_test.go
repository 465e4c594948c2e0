package session

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

// fakePools hands out instances "p.1", "p.2", ... skipping avoided ones,
// and records every Open.
type fakePools struct {
	mu    sync.Mutex
	opens chan openRec
	n     int
}

type openRec struct {
	inst  string
	avoid []string
	h     externalnode.Handler
	call  *fakeCall
}

type fakeCall struct {
	inst      string
	cancelled chan string
}

func (c *fakeCall) Instance() string          { return c.inst }
func (c *fakeCall) Send(eventabi.Event) error { return nil }
func (c *fakeCall) CloseInput() error         { return nil }
func (c *fakeCall) Cancel(reason string)      { c.cancelled <- reason }
func (p *fakePools) instFor(avoid []string) string {
	for {
		p.n++
		name := fmt.Sprintf("p.%d", (p.n-1)%2+1)
		ok := true
		for _, a := range avoid {
			ok = ok && a != name
		}
		if ok {
			return name
		}
	}
}

func (p *fakePools) Open(pool string, req externalnode.OpenRequest, avoid []string, h externalnode.Handler) (Call, error) {
	p.mu.Lock()
	inst := p.instFor(avoid)
	p.mu.Unlock()
	c := &fakeCall{inst: inst, cancelled: make(chan string, 1)}
	p.opens <- openRec{inst: inst, avoid: append([]string(nil), avoid...), h: h, call: c}
	return c, nil
}

func openSession(t *testing.T, pools Pools, tl Timeline) *Session {
	t.Helper()
	s, err := Open(Config{
		Kernel: kernel.SessionConfig{SessionID: "s1", Epoch: 1, VAD: kernel.VADConfig{Disabled: true},
			Graph: kernel.GraphSpec{
				Nodes: []kernel.NodeSpec{{ID: "n", Kind: "custom", Provider: "p", Timeout: time.Minute, OnFailure: "retry", MaxRetries: 2}},
				Edges: []kernel.EdgeSpec{{From: kernel.Ingress, To: "n"}, {From: "n", To: kernel.Egress}},
			}},
		Pools: pools, Timeline: tl,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close("test done") })
	return s
}

func nextOpen(t *testing.T, p *fakePools) openRec {
	t.Helper()
	select {
	case o := <-p.opens:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("no invocation opened")
	}
	return openRec{}
}

// A retry after a crash avoids the instance the failed attempt ran on,
// and the crash's late output is not news to the kernel.
func TestRetryAvoidsTheFailedInstance(t *testing.T) {
	pools := &fakePools{opens: make(chan openRec, 8)}
	tl := &Collector{}
	s := openSession(t, pools, tl)
	if err := s.Ingest(eventabi.Event{Type: eventabi.TypeSpeechStart}); err != nil {
		t.Fatal(err)
	}
	first := nextOpen(t, pools)
	if len(first.avoid) != 0 {
		t.Fatalf("first attempt avoids %v", first.avoid)
	}
	first.h.OnEnd(fmt.Errorf("instance %s died: %w", first.inst, kernel.ErrNodeCrashed))
	retry := nextOpen(t, pools)
	if len(retry.avoid) != 1 || retry.avoid[0] != first.inst || retry.inst == first.inst {
		t.Fatalf("retry on %s avoiding %v; first attempt ran on %s", retry.inst, retry.avoid, first.inst)
	}
	// Late output and a second end of the failed call are dropped.
	first.h.OnEvent(eventabi.Event{Type: eventabi.TypeTextFinal, Text: &eventabi.Text{Text: "late", Final: true}})
	first.h.OnEnd(nil)
	s.Close("done")
	fails := 0
	for _, r := range tl.Records() {
		if r.Type == "invocation_fail" {
			fails++
			if !strings.Contains(r.Reason, kernel.ErrNodeCrashed.Error()) || r.Attrs["decision"] != "retry" {
				t.Fatalf("fail record %+v", r)
			}
		}
	}
	if fails != 1 {
		t.Fatalf("%d invocation_fail records, want 1", fails)
	}
	select {
	case reason := <-retry.call.cancelled:
		if reason != "session_close" {
			t.Fatalf("retry cancelled with %q", reason)
		}
	default:
		t.Fatal("open call not cancelled at session close")
	}
}
