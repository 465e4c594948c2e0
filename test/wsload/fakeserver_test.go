package wsload

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeServer is a fake of `rspp serve --listen` for the client's unit
// tests: it speaks PROTOCOL.md with an energy VAD of its own, opens a turn
// per utterance, answers each with ReplyFrames of paced audio and commits;
// speech during that audio fences and aborts the turn. Its faults let a
// test check that the client notices what a broken server does.
type fakeServer struct {
	ReplyFrames int
	// Faults.
	FramesAfterFence int           // frames of the fenced turn sent after its fence
	DoubleCommit     bool          // every commit is sent twice
	DropAfter        time.Duration // close the connection abruptly this long after ready
	FramePeriod      time.Duration // agent audio pacing (default 20 ms; longer: a server falling behind)

	srv *httptest.Server
	wg  sync.WaitGroup
}

func startFakeServer(t *testing.T, f *fakeServer) string {
	t.Helper()
	if f.ReplyFrames == 0 {
		f.ReplyFrames = 40
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		f.wg.Add(1)
		defer f.wg.Done()
		f.serve(conn)
	}))
	t.Cleanup(func() {
		f.srv.CloseClientConnections()
		f.srv.Close()
		f.wg.Wait()
	})
	return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/ws"
}

type fakeIn struct {
	typ websocket.MessageType
	b   []byte
	err error
}

func (f *fakeServer) serve(conn *websocket.Conn) {
	defer conn.CloseNow()
	ctx := context.Background()
	in := make(chan fakeIn, 64)
	go func() {
		for {
			typ, b, err := conn.Read(ctx)
			in <- fakeIn{typ, b, err}
			if err != nil {
				close(in)
				return
			}
		}
	}()
	defer func() {
		conn.CloseNow()
		for range in {
		}
	}()
	send := func(m map[string]any) {
		b, _ := json.Marshal(m)
		_ = conn.Write(ctx, websocket.MessageText, b)
	}
	audio := func() { _ = conn.Write(ctx, websocket.MessageBinary, make([]byte, FrameBytes)) }
	commit := func(turn string) {
		send(map[string]any{"type": "turn", "turn": turn, "state": "commit"})
		if f.DoubleCommit {
			send(map[string]any{"type": "turn", "turn": turn, "state": "commit"})
		}
	}

	var (
		started        bool
		drop           <-chan time.Time
		voiced, silent int
		speaking       bool
		n              int
		listening      string // turn the user speaks into
		playing        string // turn whose audio is going out
		left           int    // its frames still to send
		tick           = time.NewTicker(cmp.Or(f.FramePeriod, FrameDuration))
	)
	defer tick.Stop()
	for {
		select {
		case <-drop:
			return
		case <-tick.C:
			if playing == "" {
				continue
			}
			audio()
			if left--; left == 0 {
				commit(playing)
				playing = ""
			}
		case m, ok := <-in:
			if !ok || m.err != nil {
				return
			}
			if m.typ == websocket.MessageText {
				var msg Message
				_ = json.Unmarshal(m.b, &msg)
				switch msg.Type {
				case TypeStart:
					started = true
					send(map[string]any{"type": "ready", "session": fmt.Sprintf("fake-%p", conn), "protocol": 1})
					if f.DropAfter > 0 {
						drop = time.After(f.DropAfter)
					}
				case TypeStop:
					_ = conn.Close(websocket.StatusNormalClosure, "stopped")
					return
				}
				continue
			}
			if !started {
				_ = conn.Close(websocket.StatusPolicyViolation, "audio before start")
				return
			}
			if LevelDB(m.b) >= DefaultVoicedDB {
				voiced, silent = voiced+1, 0
			} else {
				voiced, silent = 0, silent+1
			}
			switch {
			case !speaking && voiced == 2:
				speaking = true
				if playing != "" {
					send(map[string]any{"type": "fence", "turn": playing, "reason": "barge_in"})
					for range f.FramesAfterFence {
						audio()
					}
					send(map[string]any{"type": "turn", "turn": playing, "state": "abort", "reason": "barge_in"})
					playing = ""
				}
				n++
				listening = fmt.Sprintf("turn-%d", n)
				send(map[string]any{"type": "turn", "turn": listening, "state": "open"})
				send(map[string]any{"type": "turn", "turn": listening, "state": "active"})
			case speaking && silent == 10:
				speaking = false
				send(map[string]any{"type": "transcript", "turn": listening, "text": "what time is it", "final": true})
				send(map[string]any{"type": "reply", "turn": listening, "text": "it is time to test"})
				send(map[string]any{"type": "audio_start", "turn": listening})
				playing, left, listening = listening, f.ReplyFrames, ""
			}
		}
	}
}
