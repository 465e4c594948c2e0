package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cws "github.com/coder/websocket"

	"github.com/rspp/rspp/test/testenv"
)

// rssKB is a process's resident set size.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// badClose sends one bad input on a fresh connection and returns the
// error message and close code the server answered with.
func badClose(t *testing.T, url string, start bool, send func(ctx context.Context, c *cws.Conn)) (string, cws.StatusCode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := cws.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if start {
		b, _ := json.Marshal(startMsg())
		_ = c.Write(ctx, cws.MessageText, b)
	}
	send(ctx, c)
	reason := ""
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			return reason, cws.CloseStatus(err)
		}
		var m msg
		if typ == cws.MessageText && json.Unmarshal(data, &m) == nil && m.Type == "error" {
			reason = m.Reason
		}
	}
}

// Bad input against a real rspp serve --listen: each closes only its own
// connection with the protocol's code and a reason, while a bystander's
// spoken turn goes on and commits; a client that never reads is closed
// at a bounded send queue; the supervisor's memory stays bounded.
func TestLiveBadInputOnlyThatConnection(t *testing.T) {
	s := startServer(t, testenv.ConfigOptions{}, "--log-level", "info")
	pid := s.Pid()
	rss0 := rssKB(t, pid)
	by := dial(t, s.url(), startMsg())
	by.talk()
	by.say(synth(t, "what time is it"))

	// A client that never reads its socket, with a small receive buffer
	// so that the server's writes back up quickly: it speaks, the agent
	// answers at real time, nobody reads.
	dialer := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	deaf := &wsClient{t: t, changed: make(chan struct{}, 1)}
	deaf.ctx, deaf.stop = context.WithCancel(context.Background())
	var err error
	deaf.c, _, err = cws.Dial(deaf.ctx, s.url(), &cws.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(deaf.close)
	deaf.sendJSON(startMsg())
	deaf.talk()
	for range 3 {
		deaf.say(synth(t, "what is the weather like"))
		deaf.say(make([]byte, 640*60)) // silence: the turn ends, its reply plays
	}

	cases := []struct {
		name  string
		start bool
		send  func(ctx context.Context, c *cws.Conn)
		code  cws.StatusCode
	}{
		{"non-audio binary frame", true, func(ctx context.Context, c *cws.Conn) {
			_ = c.Write(ctx, cws.MessageBinary, []byte("GIF89a not audio"))
		}, cws.StatusUnsupportedData},
		{"10 MB frame", true, func(ctx context.Context, c *cws.Conn) { _ = c.Write(ctx, cws.MessageBinary, make([]byte, 10<<20)) }, cws.StatusMessageTooBig},
		{"invalid JSON", true, func(ctx context.Context, c *cws.Conn) { _ = c.Write(ctx, cws.MessageText, []byte("{not json")) }, cws.StatusPolicyViolation},
		{"wrong sample rate", false, func(ctx context.Context, c *cws.Conn) {
			_ = c.Write(ctx, cws.MessageText, []byte(`{"type":"start","sample_rate":44100,"channels":1}`))
		}, cws.StatusUnsupportedData},
	}
	for _, c := range cases {
		for range 3 { // repeated: memory must not grow with each
			reason, code := badClose(t, s.url(), c.start, c.send)
			if code != c.code || reason == "" {
				t.Fatalf("%s: close code %d, error %q; want %d with a reason", c.name, code, reason, c.code)
			}
			t.Logf("%s: closed %d %q; rspp RSS %d KB", c.name, int(code), reason, rssKB(t, pid))
		}
	}
	by.waitFor("the bystander's commit", 90*time.Second, func(l []msg) bool {
		_, ok := find(l, func(m msg) bool { return m.Type == "turn" && m.State == "commit" })
		return ok
	})
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		deaf.mu.Lock()
		gone := deaf.sendErr != nil
		deaf.mu.Unlock()
		if gone {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	deaf.mu.Lock()
	deafErr := deaf.sendErr
	deaf.mu.Unlock()
	if deafErr == nil {
		t.Fatal("the client that never reads was not closed")
	}
	rss1 := rssKB(t, pid)
	t.Logf("rspp RSS: %d KB before, %d KB after (%+d KB); never-reading client ended: %v", rss0, rss1, rss1-rss0, deafErr)
	// Three 10 MB frames held in memory would be 30 MB.
	if rss1-rss0 > 25<<10 {
		t.Fatalf("rspp RSS grew %d KB", rss1-rss0)
	}
	// The bystander still gets a second turn through.
	by.say(synth(t, "goodbye"))
	by.waitFor("the bystander's second commit", 90*time.Second, func(l []msg) bool {
		n := 0
		for _, m := range l {
			if m.Type == "turn" && m.State == "commit" {
				n++
			}
		}
		return n >= 2
	})
	by.sendJSON(map[string]any{"type": "stop"})
	by.waitFor("close after stop", 10*time.Second, func([]msg) bool { return by.closedWith() != nil })
	s.stop(t)
	recs := s.records(t)
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Fatal(err)
	}
	reasons := map[string]int{}
	for _, r := range recs {
		if r.Type == "session_close" {
			reasons[r.Reason]++
		}
	}
	t.Logf("session_close reasons: %v", reasons)
	// A client that never reads answers no ping either: whichever comes
	// first, the full send queue or the missing pong, closes it.
	if out := s.output(); !strings.Contains(out, "client too slow to read") && !strings.Contains(out, "failed to wait for pong") {
		t.Errorf("the never-reading client was not closed as too slow or unresponsive; server log:\n%s", out)
	}
	// Up to nine bad sessions (three of each kind that gets past start;
	// one closed before its session opened has none), the deaf client
	// lost, the bystander's own stop.
	if reasons["bad_input"] < 1 || reasons["bad_input"] > 9 || reasons["connection_lost"] != 1 || reasons["client_close"] != 1 || len(reasons) != 3 {
		t.Fatalf("session_close reasons %v: want only bad_input (1..9), connection_lost 1 (the client that never reads), client_close 1", reasons)
	}
}
