package websocket

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	cws "github.com/coder/websocket"

	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/kernel/fence"
	"github.com/rspp/rspp/transports"
)

// fakeRuntime accepts the server's connections like supervisor.ServeConn
// does, without a kernel: it binds each, counts its inbound frames and
// closes it when its input ends.
type fakeRuntime struct {
	srv *Server
	mu  sync.Mutex
	got map[string]int // session -> inbound audio frames
	cs  map[string]*Conn
	wg  sync.WaitGroup
	new chan *Conn
}

func startFake(t *testing.T, o Options) (*fakeRuntime, *httptest.Server) {
	t.Helper()
	srv := NewServer(o)
	hs := httptest.NewServer(srv)
	f := &fakeRuntime{srv: srv, got: map[string]int{}, cs: map[string]*Conn{}, new: make(chan *Conn, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			tc, err := srv.Accept(ctx)
			if err != nil {
				return
			}
			c := tc.(*Conn)
			f.mu.Lock()
			f.cs[c.ID()] = c
			f.mu.Unlock()
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				_ = c.Bind(transports.Binding{SessionID: c.ID(), Gate: fence.NewGate(0)})
				f.new <- c
				for ev := range c.Inbound() {
					if ev.Type == eventabi.TypeAudioFrame {
						f.mu.Lock()
						f.got[c.ID()]++
						f.mu.Unlock()
					}
				}
				c.Close("input ended")
			}()
		}
	}()
	t.Cleanup(func() {
		cancel()
		srv.Close()
		hs.Close()
		f.wg.Wait()
	})
	return f, hs
}

func (f *fakeRuntime) frames(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got[id]
}

type testClient struct {
	c   *cws.Conn
	ctx context.Context
}

func wsURL(hs *httptest.Server) string { return "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws" }

func connect(t *testing.T, hs *httptest.Server, start bool) *testClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c, _, err := cws.Dial(ctx, wsURL(hs), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	tc := &testClient{c: c, ctx: ctx}
	if start {
		tc.text(t, `{"type":"start","sample_rate":16000,"channels":1}`)
		if m := tc.next(t); m.Type != "ready" || m.Protocol != ProtocolVersion || m.Session == "" {
			t.Fatalf("after start: %+v", m)
		}
	}
	return tc
}

func (tc *testClient) text(t *testing.T, s string) {
	t.Helper()
	if err := tc.c.Write(tc.ctx, cws.MessageText, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

func (tc *testClient) binary(n int) error {
	return tc.c.Write(tc.ctx, cws.MessageBinary, make([]byte, n))
}

type gotMsg struct {
	serverMsg
	audio int // binary frame length
}

func (tc *testClient) next(t *testing.T) gotMsg {
	t.Helper()
	typ, data, err := tc.c.Read(tc.ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ == cws.MessageBinary {
		return gotMsg{audio: len(data)}
	}
	var m gotMsg
	if err := json.Unmarshal(data, &m.serverMsg); err != nil {
		t.Fatal(err)
	}
	return m
}

// closed reads until the connection closes and returns the error
// message seen before and the close status.
func (tc *testClient) closed(t *testing.T) (string, cws.StatusCode, string) {
	t.Helper()
	reason := ""
	for {
		typ, data, err := tc.c.Read(tc.ctx)
		if err != nil {
			var ce cws.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("connection ended without a close frame: %v", err)
			}
			return reason, ce.Code, ce.Reason
		}
		var m serverMsg
		if typ == cws.MessageText && json.Unmarshal(data, &m) == nil && m.Type == "error" {
			reason = m.Reason
		}
	}
}

// Each kind of bad input closes its own connection with PROTOCOL.md's
// code and a reason naming what was wrong (sent as error first); a
// bystander session keeps going through all of it.
func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	f, hs := startFake(t, Options{})
	by := connect(t, hs, true)
	byConn := <-f.new
	cases := []struct {
		name  string
		start bool
		send  func(t *testing.T, tc *testClient)
		code  cws.StatusCode
		want  string
	}{
		{"short binary frame", true, func(t *testing.T, tc *testClient) { _ = tc.binary(100) }, cws.StatusUnsupportedData, "binary frame of 100 bytes"},
		{"10 MB frame", true, func(t *testing.T, tc *testClient) { _ = tc.binary(10 << 20) }, cws.StatusMessageTooBig, "message too big"},
		{"invalid JSON", true, func(t *testing.T, tc *testClient) { tc.text(t, `{"type":`) }, cws.StatusPolicyViolation, "invalid JSON"},
		{"unknown type", true, func(t *testing.T, tc *testClient) { tc.text(t, `{"type":"dance"}`) }, cws.StatusPolicyViolation, `unknown type "dance"`},
		{"audio before start", false, func(t *testing.T, tc *testClient) { _ = tc.binary(640) }, cws.StatusPolicyViolation, "audio before start"},
		{"wrong sample rate", false, func(t *testing.T, tc *testClient) {
			tc.text(t, `{"type":"start","sample_rate":48000,"channels":1}`)
		}, cws.StatusUnsupportedData, "sample_rate 48000"},
		{"stereo", false, func(t *testing.T, tc *testClient) {
			tc.text(t, `{"type":"start","sample_rate":16000,"channels":2}`)
		}, cws.StatusUnsupportedData, "channels 2"},
		{"bad playback", true, func(t *testing.T, tc *testClient) { tc.text(t, `{"type":"playback","turn":"t","event":"paused"}`) }, cws.StatusPolicyViolation, "playback: event"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tc := connect(t, hs, c.start)
			c.send(t, tc)
			reason, code, closeReason := tc.closed(t)
			if code != c.code || !strings.Contains(reason, c.want) || !strings.Contains(closeReason, c.want) {
				t.Fatalf("got code %d, error %q, close reason %q; want %d naming %q", code, reason, closeReason, c.code, c.want)
			}
			// The bystander still talks and listens.
			before := f.frames(byConn.ID())
			if err := by.binary(640); err != nil {
				t.Fatal(err)
			}
			byConn.Notify(transports.Notice{Kind: transports.NoticeReply, Turn: "t", Text: "still here"})
			if m := by.next(t); m.Type != "reply" || m.Text != "still here" {
				t.Fatalf("bystander got %+v", m)
			}
			deadline := time.Now().Add(10 * time.Second)
			for f.frames(byConn.ID()) == before && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if f.frames(byConn.ID()) != before+1 {
				t.Fatal("bystander's audio stopped arriving")
			}
		})
	}
}

// A session ends through its connection: server-side Err says how.
func TestConnErrSaysHowItEnded(t *testing.T) {
	f, hs := startFake(t, Options{IdleTimeout: 300 * time.Millisecond, PingInterval: time.Hour})
	t.Run("stop", func(t *testing.T) {
		tc := connect(t, hs, true)
		c := <-f.new
		tc.text(t, `{"type":"stop"}`)
		if _, code, _ := tc.closed(t); code != cws.StatusNormalClosure {
			t.Fatalf("close code %d", code)
		}
		<-c.done
		if err := c.Err(); !errors.Is(err, transports.ErrClientClosed) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("client vanishes", func(t *testing.T) {
		tc := connect(t, hs, true)
		c := <-f.new
		tc.c.CloseNow()
		<-c.done
		if err := c.Err(); !errors.Is(err, transports.ErrConnectionLost) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("idle", func(t *testing.T) {
		tc := connect(t, hs, true)
		c := <-f.new
		reason, code, _ := tc.closed(t)
		if code != cws.StatusGoingAway || !strings.Contains(reason, "idle timeout") {
			t.Fatalf("code %d reason %q", code, reason)
		}
		<-c.done
		if err := c.Err(); !errors.Is(err, transports.ErrConnectionLost) {
			t.Fatalf("err %v", err)
		}
	})
}

// Audio of a turn follows its audio_start; after a fence no frame of the
// turn is written, also none already queued, and the fence comes before
// the next turn's audio.
func TestFenceOrderOnTheWire(t *testing.T) {
	f, hs := startFake(t, Options{SendQueue: 1000})
	tc := connect(t, hs, true)
	c := <-f.new
	gate := fence.NewGate(0)
	c.gate.Store(gate)
	frame := func(turn string) eventabi.Event {
		return eventabi.Event{Type: eventabi.TypeAudioFrame, TurnID: turn, Audio: &eventabi.Audio{PCM: make([]byte, 640), SampleRate: 16000, Channels: 1}}
	}
	for range 200 {
		if err := c.Send(frame("t1")); err != nil {
			t.Fatal(err)
		}
	}
	gate.Fence("t1", "barge_in")
	c.Fence("t1", "barge_in")
	// Queued after the fence (a racing producer): the gate refuses it.
	c.Send(frame("t1"))
	c.Send(frame("t2"))
	audioTurn, fenced, t1After, t2 := "", false, 0, 0
	for t2 == 0 {
		m := tc.next(t)
		switch {
		case m.Type == "audio_start":
			audioTurn = m.Turn
		case m.Type == "fence" && m.Turn == "t1":
			fenced = true
		case m.audio > 0 && audioTurn == "t1" && fenced:
			t1After++
		case m.audio > 0 && audioTurn == "t2":
			if !fenced {
				t.Fatal("t2 audio before the fence of t1")
			}
			t2++
		case m.audio > 0 && audioTurn == "":
			t.Fatal("audio without audio_start")
		}
	}
	if t1After != 0 {
		t.Fatalf("%d frames of t1 after its fence", t1After)
	}
	if st := c.Stats(); st.FencedDropped == 0 {
		t.Fatalf("nothing dropped: %+v", st)
	}
}

// A client that never reads: the send queue fills, Send refuses (typed),
// and once it stayed full for the grace the connection is closed as too
// slow; memory stays at the queue's bound.
func TestSlowReaderIsClosed(t *testing.T) {
	f, hs := startFake(t, Options{SendQueue: 10, SlowReaderGrace: 200 * time.Millisecond, WriteTimeout: 500 * time.Millisecond})
	_ = connect(t, hs, true) // never reads again
	c := <-f.new
	frame := eventabi.Event{Type: eventabi.TypeAudioFrame, TurnID: "t", Audio: &eventabi.Audio{PCM: make([]byte, 640), SampleRate: 16000, Channels: 1}}
	full := 0
	deadline := time.Now().Add(60 * time.Second)
	for c.Err() == nil && time.Now().Before(deadline) {
		if err := c.Send(frame); errors.Is(err, transports.ErrQueueFull) {
			full++
			time.Sleep(2 * time.Millisecond)
		}
	}
	err := c.Err()
	if !errors.Is(err, transports.ErrConnectionLost) {
		t.Fatalf("slow reader not closed: %v", err)
	}
	if full == 0 {
		t.Fatal("Send never reported the queue full")
	}
	if st := c.Stats(); st.MaxAudioQ > 10 {
		t.Fatalf("queue grew past its bound: %+v", st)
	}
	t.Logf("closed after %d refused frames: %v", full, err)
}

// Origins: same host by default; others only when allowed.
func TestOriginCheck(t *testing.T) {
	_, hs := startFake(t, Options{AllowedOrigins: []string{"good.example"}})
	for origin, want := range map[string]int{"http://evil.example": http.StatusForbidden, "http://good.example": http.StatusSwitchingProtocols} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, resp, err := cws.Dial(ctx, wsURL(hs), &cws.DialOptions{HTTPHeader: http.Header{"Origin": {origin}}})
		cancel()
		if c != nil {
			c.CloseNow()
		}
		if resp == nil || resp.StatusCode != want {
			t.Fatalf("origin %s: resp %v err %v, want %d", origin, resp, err, want)
		}
	}
}
