package session

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
)

// slowPools is a fake pool whose Open blocks until release is closed, as
// when no standby is warm and a replacement instance is starting.
type slowPools struct {
	release chan struct{}
	opened  chan *recordingCall
}

func (p *slowPools) Open(string, externalnode.OpenRequest, []string, externalnode.Handler) (Call, error) {
	<-p.release
	c := &recordingCall{}
	p.opened <- c
	return c, nil
}

// recordingCall logs what the runner did with the call, in order.
type recordingCall struct {
	mu  sync.Mutex
	ops []string
}

func (c *recordingCall) log(op string) {
	c.mu.Lock()
	c.ops = append(c.ops, op)
	c.mu.Unlock()
}
func (c *recordingCall) Instance() string { return "slow.1" }
func (c *recordingCall) Send(ev eventabi.Event) error {
	c.log("send")
	return nil
}
func (c *recordingCall) CloseInput() error    { c.log("close_input"); return nil }
func (c *recordingCall) Cancel(reason string) { c.log("cancel:" + reason) }
func (c *recordingCall) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.ops...)
}

// ingestSoon fails the test if the session does not take an event while
// an instance is still being acquired for it.
func ingestSoon(t *testing.T, s *Session, ev eventabi.Event) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Ingest(ev) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ingest %s: %v", ev.Type, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("ingest %s blocked while an instance was being acquired: the session loop waits on the pool", ev.Type)
	}
}

// The session stays responsive while an instance is acquired, and the
// inputs that arrived meanwhile reach the call in order once it opens.
func TestSlowOpenDoesNotBlockTheSession(t *testing.T) {
	pools := &slowPools{release: make(chan struct{}), opened: make(chan *recordingCall, 1)}
	s := openSession(t, pools, &Collector{})
	ingestSoon(t, s, eventabi.Event{Type: eventabi.TypeSpeechStart})
	frame := eventabi.Event{Type: eventabi.TypeAudioFrame, Audio: &eventabi.Audio{PCM: make([]byte, 640), SampleRate: 16000, Channels: 1}}
	for i := range 3 {
		frame.MediaNanos = int64(i) * 20e6
		ingestSoon(t, s, frame)
	}
	ingestSoon(t, s, eventabi.Event{Type: eventabi.TypeSpeechEnd})
	close(pools.release)
	c := <-pools.opened
	want := "send send send close_input"
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if got := strings.Join(c.snapshot(), " "); got == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("call got %q, want %q", strings.Join(c.snapshot(), " "), want)
}

// A session that closes while an instance is being acquired cancels the
// call as soon as it opens, and Close waits for that.
func TestCloseDuringOpenCancelsOnArrival(t *testing.T) {
	pools := &slowPools{release: make(chan struct{}), opened: make(chan *recordingCall, 1)}
	s := openSession(t, pools, &Collector{})
	ingestSoon(t, s, eventabi.Event{Type: eventabi.TypeSpeechStart})
	closed := make(chan struct{})
	go func() {
		s.Close("bye")
		close(closed)
	}()
	time.Sleep(50 * time.Millisecond) // Close is now waiting for the open
	close(pools.release)
	c := <-pools.opened
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return after the open finished")
	}
	if got := strings.Join(c.snapshot(), " "); got != "cancel:session_close" {
		t.Fatalf("call got %q, want it cancelled (session_close) and nothing else", got)
	}
}
