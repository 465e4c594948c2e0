package live

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	cws "github.com/coder/websocket"
)

// msg is one server message as the test client saw it: a JSON control
// message, or (Type "audio") one binary frame.
type msg struct {
	Type      string `json:"type"`
	Session   string `json:"session"`
	Protocol  int    `json:"protocol"`
	Turn      string `json:"turn"`
	State     string `json:"state"`
	Reason    string `json:"reason"`
	LatencyMs *int64 `json:"latency_ms"`
	Text      string `json:"text"`
	Final     bool   `json:"final"`

	Bytes int       `json:"-"`
	At    time.Time `json:"-"`
	// AudioTurn is, for a frame, the turn of the audio_start before it.
	AudioTurn string `json:"-"`
}

// wsClient is a Go WebSocket client of PROTOCOL.md: it speaks a script of
// PCM in real time (20 ms a frame, silence when the script ran out) and
// logs everything the server sends.
type wsClient struct {
	t    *testing.T
	c    *cws.Conn
	ctx  context.Context
	stop context.CancelFunc

	mu      sync.Mutex
	log     []msg
	closeEr error
	speak   [][]byte // frames still to say
	sendErr error
	wg      sync.WaitGroup
	changed chan struct{}
}

func dial(t *testing.T, url string, start map[string]any) *wsClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, _, err := cws.Dial(ctx, url, nil)
	if err != nil {
		cancel()
		t.Fatalf("dial %s: %v", url, err)
	}
	c.SetReadLimit(1 << 20)
	cl := &wsClient{t: t, c: c, ctx: ctx, stop: cancel, changed: make(chan struct{}, 1)}
	t.Cleanup(cl.close)
	if start != nil {
		cl.sendJSON(start)
	}
	cl.wg.Add(1)
	go cl.read()
	return cl
}

func (cl *wsClient) sendJSON(v any) {
	b, _ := json.Marshal(v)
	if err := cl.c.Write(cl.ctx, cws.MessageText, b); err != nil {
		cl.t.Logf("send: %v", err)
	}
}

func (cl *wsClient) read() {
	defer cl.wg.Done()
	audioTurn := ""
	for {
		typ, data, err := cl.c.Read(cl.ctx)
		now := time.Now()
		if err != nil {
			cl.mu.Lock()
			cl.closeEr = err
			cl.mu.Unlock()
			cl.notify()
			return
		}
		m := msg{At: now}
		if typ == cws.MessageBinary {
			m.Type, m.Bytes, m.AudioTurn = "audio", len(data), audioTurn
		} else if err := json.Unmarshal(data, &m); err != nil {
			m.Type = "bad:" + string(data)
		}
		if m.Type == "audio_start" {
			audioTurn = m.Turn
		}
		cl.mu.Lock()
		cl.log = append(cl.log, m)
		cl.mu.Unlock()
		cl.notify()
	}
}

func (cl *wsClient) notify() {
	select {
	case cl.changed <- struct{}{}:
	default:
	}
}

// talk sends frames in real time from now on: the script first, then
// silence, until the client closes.
func (cl *wsClient) talk() {
	cl.wg.Add(1)
	go func() {
		defer cl.wg.Done()
		silence := make([]byte, 640)
		next := time.Now()
		for {
			if d := time.Until(next); d > 0 {
				select {
				case <-time.After(d):
				case <-cl.ctx.Done():
					return
				}
			}
			next = next.Add(20 * time.Millisecond)
			fr := silence
			cl.mu.Lock()
			if len(cl.speak) > 0 {
				fr = cl.speak[0]
				cl.speak = cl.speak[1:]
			}
			cl.mu.Unlock()
			if err := cl.c.Write(cl.ctx, cws.MessageBinary, fr); err != nil {
				cl.mu.Lock()
				cl.sendErr = err
				cl.mu.Unlock()
				return
			}
		}
	}()
}

// say queues PCM to be spoken next.
func (cl *wsClient) say(pcm []byte) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for off := 0; off+640 <= len(pcm); off += 640 {
		cl.speak = append(cl.speak, pcm[off:off+640])
	}
}

// saying reports whether script frames are still to be sent.
func (cl *wsClient) saying() bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return len(cl.speak) > 0
}

func (cl *wsClient) messages() []msg {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return append([]msg(nil), cl.log...)
}

func (cl *wsClient) closedWith() error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.closeEr
}

// waitFor waits until cond holds on the log (or the connection closed
// and it still does not), failing after limit.
func (cl *wsClient) waitFor(what string, limit time.Duration, cond func([]msg) bool) []msg {
	cl.t.Helper()
	deadline := time.After(limit)
	for {
		log := cl.messages()
		if cond(log) {
			return log
		}
		if cl.closedWith() != nil {
			cl.t.Fatalf("waiting for %s: connection closed: %v\nlog: %s", what, cl.closedWith(), summary(log))
		}
		select {
		case <-cl.changed:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			cl.t.Fatalf("waiting for %s: not after %s\nlog: %s", what, limit, summary(log))
		}
	}
}

func (cl *wsClient) close() {
	_ = cl.c.Close(cws.StatusNormalClosure, "test over")
	cl.stop()
	cl.wg.Wait()
}

// summary is a log without the run of frames.
func summary(log []msg) string {
	s := ""
	frames := 0
	flush := func() {
		if frames > 0 {
			s += fmt.Sprintf(" [%d frames]", frames)
			frames = 0
		}
	}
	for _, m := range log {
		if m.Type == "audio" {
			frames++
			continue
		}
		flush()
		switch m.Type {
		case "turn":
			s += fmt.Sprintf(" turn(%s %s %s)", m.Turn, m.State, m.Reason)
		case "transcript", "reply":
			s += fmt.Sprintf(" %s(%s %q)", m.Type, m.Turn, m.Text)
		default:
			s += fmt.Sprintf(" %s(%s%s%s)", m.Type, m.Turn, m.Session, m.Reason)
		}
	}
	flush()
	return s
}

func find(log []msg, pred func(msg) bool) (int, bool) {
	for i, m := range log {
		if pred(m) {
			return i, true
		}
	}
	return -1, false
}
