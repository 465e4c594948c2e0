package browser

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/wav"
	"github.com/rspp/rspp/transports/websocket/web"
)

// fakeServer is a FAKE of `rspp serve --listen` for tests of the page
// alone: it serves web.Files at / and, at /ws, plays a script of server
// messages that a test writes, recording what the page sends. It is not
// the transport; the live tests run the real one.
type fakeServer struct {
	srv    *httptest.Server
	script func(c *fakeConn) error
	done   chan error // the script's result
	mu     sync.Mutex
	conns  []*websocket.Conn
	last   *fakeConn
}

// fakeConn is one page connection as the script sees it.
type fakeConn struct {
	ctx  context.Context
	ws   *websocket.Conn
	mu   sync.Mutex
	ctl  []map[string]any // text messages from the page, in order
	mic  int              // binary frames of 640 bytes
	pcm  []byte           // their audio, in order
	bad  int              // binary frames of any other size
	wake chan struct{}
}

func newFakeServer(t *testing.T, script func(c *fakeConn) error) *fakeServer {
	t.Helper()
	f := &fakeServer{script: script, done: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServerFS(web.Files))
	mux.HandleFunc("/ws", f.serveWS)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		f.mu.Lock()
		for _, c := range f.conns {
			c.CloseNow()
		}
		f.mu.Unlock()
		f.srv.Close()
	})
	return f
}

func (f *fakeServer) serveWS(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	f.mu.Lock()
	f.conns = append(f.conns, ws)
	f.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &fakeConn{ctx: ctx, ws: ws, wake: make(chan struct{}, 1)}
	f.mu.Lock()
	f.last = c
	f.mu.Unlock()
	go func() {
		defer cancel()
		for {
			typ, data, err := ws.Read(ctx)
			if err != nil {
				return
			}
			c.mu.Lock()
			if typ == websocket.MessageBinary {
				if len(data) == 640 {
					c.mic++
					c.pcm = append(c.pcm, data...)
				} else {
					c.bad++
				}
			} else {
				var m map[string]any
				if json.Unmarshal(data, &m) != nil {
					m = map[string]any{"type": "<invalid json>"}
				}
				c.ctl = append(c.ctl, m)
			}
			c.mu.Unlock()
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
	}()
	err = f.script(c)
	select {
	case f.done <- err:
	default:
	}
	<-ctx.Done() // hold the connection until the page or the test ends it
}

// send writes a control message.
func (c *fakeConn) send(m map[string]any) error {
	b, _ := json.Marshal(m)
	return c.ws.Write(c.ctx, websocket.MessageText, b)
}

// frame writes one 20 ms audio frame.
func (c *fakeConn) frame(pcm []byte) error {
	return c.ws.Write(c.ctx, websocket.MessageBinary, pcm)
}

// await waits until cond holds over what the page sent, or limit passes.
func (c *fakeConn) await(limit time.Duration, what string, cond func(ctl []map[string]any, mic int) bool) error {
	deadline := time.After(limit)
	for {
		c.mu.Lock()
		ok := cond(c.ctl, c.mic)
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-c.wake:
		case <-deadline:
			return fmt.Errorf("timed out after %v waiting for the page to %s", limit, what)
		case <-c.ctx.Done():
			return fmt.Errorf("connection closed while waiting for the page to %s", what)
		}
	}
}

func (c *fakeConn) sent() (ctl []map[string]any, mic, bad int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]map[string]any(nil), c.ctl...), c.mic, c.bad
}

// playback returns the page's playback reports for turn, in order.
func playbackOf(ctl []map[string]any, turn string) []map[string]any {
	var out []map[string]any
	for _, m := range ctl {
		if m["type"] == "playback" && m["turn"] == turn {
			out = append(out, m)
		}
	}
	return out
}

func hasPlayback(ctl []map[string]any, turn, event string) bool {
	for _, m := range playbackOf(ctl, turn) {
		if m["event"] == event {
			return true
		}
	}
	return false
}

// testPCM is n frames of audio particular to seed, so the test can tell
// which samples the page played.
func testPCM(seed, frames int) [][]byte {
	out := make([][]byte, frames)
	k := 0
	for i := range out {
		f := make([]byte, 640)
		for j := 0; j < 320; j++ {
			v := int16(((k*7919 + seed*104729) % 20000) - 10000)
			binary.LittleEndian.PutUint16(f[2*j:], uint16(v))
			k++
		}
		out[i] = f
	}
	return out
}

// TestPageAgainstFakeServer checks the page's side of the protocol with a
// fake server: it sends start, 640-byte microphone frames only after
// ready, shows the transcript and the reply, plays a turn's audio exactly
// as sent and reports started/position/done with the played length; a
// fence empties its buffer of the fenced turn at once (nothing of it
// played afterwards, frames after the fence not played) and the next
// turn plays whole.
func TestPageAgainstFakeServer(t *testing.T) {
	ctx := newBrowser(t, "") // Chromium's fake microphone: a beep
	one, two, three := testPCM(1, 60), testPCM(2, 25), testPCM(3, 10)
	f := newFakeServer(t, func(c *fakeConn) error {
		if err := c.await(5*time.Second, "send start", func(ctl []map[string]any, _ int) bool { return len(ctl) > 0 }); err != nil {
			return err
		}
		ctl, mic, _ := c.sent()
		if ctl[0]["type"] != "start" || ctl[0]["sample_rate"] != 16000.0 || ctl[0]["channels"] != 1.0 {
			return fmt.Errorf("first message %v, want start with sample_rate 16000 and channels 1", ctl[0])
		}
		if mic != 0 {
			return fmt.Errorf("%d audio frames before ready", mic)
		}
		time.Sleep(200 * time.Millisecond)
		if _, mic, _ := c.sent(); mic != 0 {
			return fmt.Errorf("%d audio frames before ready", mic)
		}
		if err := c.send(map[string]any{"type": "ready", "session": "fake-1", "protocol": 1}); err != nil {
			return err
		}
		if err := c.await(5*time.Second, "send microphone frames", func(_ []map[string]any, mic int) bool { return mic >= 10 }); err != nil {
			return err
		}
		// Turn 1: transcript, reply, 60 frames paced at 20 ms, commit.
		for _, m := range []map[string]any{
			{"type": "turn", "turn": "t1", "state": "open"},
			{"type": "transcript", "turn": "t1", "text": "hello there", "final": true},
			{"type": "turn", "turn": "t1", "state": "active"},
			{"type": "reply", "turn": "t1", "text": "hello how can i help you"},
			{"type": "audio_start", "turn": "t1"},
		} {
			if err := c.send(m); err != nil {
				return err
			}
		}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for _, fr := range one {
			<-tick.C
			if err := c.frame(fr); err != nil {
				return err
			}
		}
		if err := c.send(map[string]any{"type": "turn", "turn": "t1", "state": "commit", "latency_ms": 321}); err != nil {
			return err
		}
		if err := c.await(10*time.Second, "report t1 done", func(ctl []map[string]any, _ int) bool { return hasPlayback(ctl, "t1", "done") }); err != nil {
			return err
		}
		// Turn 2: a burst of 25 frames (500 ms, more than the page plays
		// in 100 ms), then the fence, then 3 frames the page must not play.
		for _, m := range []map[string]any{
			{"type": "turn", "turn": "t2", "state": "open"},
			{"type": "transcript", "turn": "t2", "text": "tell me a joke", "final": true},
			{"type": "turn", "turn": "t2", "state": "active"},
			{"type": "reply", "turn": "t2", "text": "the computer went to sleep"},
			{"type": "audio_start", "turn": "t2"},
		} {
			if err := c.send(m); err != nil {
				return err
			}
		}
		for _, fr := range two {
			if err := c.frame(fr); err != nil {
				return err
			}
		}
		time.Sleep(100 * time.Millisecond)
		if err := c.send(map[string]any{"type": "fence", "turn": "t2", "reason": "barge_in"}); err != nil {
			return err
		}
		for _, fr := range two[:3] {
			if err := c.frame(fr); err != nil {
				return err
			}
		}
		if err := c.send(map[string]any{"type": "turn", "turn": "t2", "state": "abort", "reason": "barge_in", "latency_ms": 150}); err != nil {
			return err
		}
		// Turn 3 plays whole.
		if err := c.send(map[string]any{"type": "audio_start", "turn": "t3"}); err != nil {
			return err
		}
		for _, fr := range three {
			<-tick.C
			if err := c.frame(fr); err != nil {
				return err
			}
		}
		return c.await(10*time.Second, "report t3 done", func(ctl []map[string]any, _ int) bool { return hasPlayback(ctl, "t3", "done") })
	})
	if err := chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+"/"), chromedp.Click(chromedp.ID("start"))); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatalf("fake server script: %v (page: %+v)", err, pageState(t, ctx))
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("fake server script did not finish (page: %+v)", pageState(t, ctx))
	}
	time.Sleep(200 * time.Millisecond) // one more frame of drawing
	screenshot(t, ctx, "fake-server.png")

	f.mu.Lock()
	conns := len(f.conns)
	f.mu.Unlock()
	if conns != 1 {
		t.Errorf("%d connections, want 1", conns)
	}
	st := pageState(t, ctx)
	if !st.Ready || st.Session != "fake-1" || len(st.Errors) != 0 {
		t.Errorf("page status %+v, want ready in session fake-1 without errors", st)
	}
	turns := pageTurns(t, ctx)

	// What the page shows.
	if got := pageText(t, ctx, ".transcript"); got != "hello there\ntell me a joke" {
		t.Errorf("transcripts shown %q", got)
	}
	if got := pageText(t, ctx, ".reply"); got != "hello how can i help you\nthe computer went to sleep" {
		t.Errorf("replies shown %q", got)
	}
	if got := pageText(t, ctx, ".turn.abort .reason"); got != "barge_in" {
		t.Errorf("timeline shows abort reason %q, want barge_in", got)
	}
	if got := pageText(t, ctx, ".turn.commit .lat"); !strings.Contains(got, "321 ms") {
		t.Errorf("timeline of the committed turn shows %q, want its latency 321 ms", got)
	}

	// Turn 1: played exactly as sent, and reported.
	t1 := findTurn(turns, "t1")
	if t1 == nil {
		t.Fatalf("page has no turn t1: %+v", turns)
	}
	if got := playedPCM(t, ctx, "t1"); string(got) != string(concat(one)) {
		t.Errorf("t1: the page played %d bytes that differ from the %d sent", len(got), len(concat(one)))
	}
	ctl, mic, bad := f.connSent()
	evs := playbackOf(ctl, "t1")
	if len(evs) < 3 || evs[0]["event"] != "started" || evs[len(evs)-1]["event"] != "done" {
		t.Errorf("t1 playback reports %v, want started, position..., done", evs)
	} else if got := evs[len(evs)-1]["played_ms"]; got != 1200.0 {
		t.Errorf("t1 done played_ms %v, want 1200", got)
	}
	positions := 0
	for _, e := range evs {
		if e["event"] == "position" {
			positions++
		}
	}
	if positions < 1 {
		t.Errorf("t1: no position report in 1.2 s of audio: %v", evs)
	}
	if mic == 0 || bad != 0 {
		t.Errorf("microphone: %d frames of 640 bytes, %d of other sizes", mic, bad)
	}

	// Turn 2: fenced.
	t2 := findTurn(turns, "t2")
	if t2 == nil || t2.Fence == nil || t2.Fence.AppliedAt == nil {
		t.Fatalf("t2 not fenced in the page: %+v", t2)
	}
	if t2.SamplesAfter != 0 {
		t.Errorf("t2: %d samples handed to the output after the fence was applied", t2.SamplesAfter)
	}
	if *t2.Fence.Dropped < 1 || t2.PlayedSamples >= 25*320 {
		t.Errorf("t2: fence dropped %d frames, %d samples played: the buffer was not flushed", *t2.Fence.Dropped, t2.PlayedSamples)
	}
	played2 := playedPCM(t, ctx, "t2")
	if string(played2) != string(concat(two)[:len(played2)]) {
		t.Errorf("t2: the page played other samples than the start of what was sent")
	}
	t.Logf("t2: played %d ms before the fence, dropped %d buffered frames; %s", t2.PlayedSamples/16, *t2.Fence.Dropped, lastChunkVsFence(t2))
	if hasPlayback(ctl, "t2", "done") {
		// done after a fence reports what was heard.
		evs := playbackOf(ctl, "t2")
		if got := evs[len(evs)-1]["played_ms"].(float64); got != math.Round(float64(t2.PlayedSamples)/16) {
			t.Errorf("t2 done played_ms %v, page played %d ms", got, t2.PlayedSamples/16)
		}
	}

	// Turn 3: whole, after the fence's stray frames.
	if got := playedPCM(t, ctx, "t3"); string(got) != string(concat(three)) {
		t.Errorf("t3: played %d bytes that differ from the %d sent", len(got), len(concat(three)))
	}
	if n := st.Counts["orphanAudio"] + st.Counts["afterFence"]; n != 3 {
		t.Errorf("page set aside %d frames that came after the fence, want 3", n)
	}
}

// connSent is what the page sent on the latest connection.
func (f *fakeServer) connSent() ([]map[string]any, int, int) {
	f.mu.Lock()
	c := f.last
	f.mu.Unlock()
	if c == nil {
		return nil, 0, 0
	}
	return c.sent()
}

func concat(frames [][]byte) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, f...)
	}
	return b
}

// lastChunkVsFence says when the last samples of a fenced turn were handed
// to the output, relative to the fence message reaching the page
// (negative: before it).
func lastChunkVsFence(tr *pageTurn) string {
	for i := len(tr.PlayedChunks) - 1; i >= 0; i-- {
		if c := tr.PlayedChunks[i]; c.AfterFence != nil {
			return fmt.Sprintf("its last samples were handed to the output %.1f ms after the fence message reached the page (render-clock estimate)", *c.AfterFence+float64(c.N)/16)
		}
	}
	if len(tr.PlayedChunks) > 0 {
		return "all its samples were handed out before the fence message reached the page"
	}
	return "none of it was played"
}

// micPCM is the microphone audio the page sent on the latest connection.
func (f *fakeServer) micPCM() []byte {
	f.mu.Lock()
	c := f.last
	f.mu.Unlock()
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.pcm...)
}

// TestPageCapturesSpeech: what the page sends of Chromium's fake
// microphone playing "what time is it" (48 kHz WAV, through the browser's
// default speech processing and the capture worklet's resampler) decodes
// with pocketsphinx to that phrase.
func TestPageCapturesSpeech(t *testing.T) {
	requireChromium(t)
	speechtest.Require(t)
	dir := t.TempDir()
	mic := micWAV(t, dir, segment{silence: time.Second}, segment{say: "what time is it"}, segment{silence: 60 * time.Second})
	ctx := newBrowser(t, mic)
	f := newFakeServer(t, func(c *fakeConn) error {
		if err := c.await(5*time.Second, "send start", func(ctl []map[string]any, _ int) bool { return len(ctl) > 0 }); err != nil {
			return err
		}
		if err := c.send(map[string]any{"type": "ready", "session": "fake-2", "protocol": 1}); err != nil {
			return err
		}
		// The WAV's first 4 s hold the phrase; take 5.
		return c.await(30*time.Second, "send 5 s of microphone", func(_ []map[string]any, mic int) bool { return mic >= 250 })
	})
	if err := chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+"/"), chromedp.Click(chromedp.ID("start"))); err != nil {
		t.Fatal(err)
	}
	if err := <-f.done; err != nil {
		t.Fatalf("fake server script: %v (page: %+v)", err, pageState(t, ctx))
	}
	pcm := f.micPCM()
	path := filepath.Join(outDir(t), "mic-sent.wav")
	if err := wav.WriteFile(path, pcm); err != nil {
		t.Fatal(err)
	}
	t.Logf("microphone audio the page sent: %s (%d ms)", path, len(pcm)/32)
	got, err := speechtest.DecodePCM(context.Background(), pcm, filepath.Join(testenv.MustModuleRoot(t), "examples", "grammar.jsgf"))
	if err != nil {
		t.Fatal(err)
	}
	if got != "what time is it" {
		t.Errorf("the page's microphone audio decodes as %q, want %q", got, "what time is it")
	}
	if sp := evaluate[[]map[string]any](t, ctx, `window.rsppTest.speech()`); len(sp) == 0 {
		t.Errorf("the page detected no speech in its microphone")
	}
}

// TestPageShowsServerClose: when the server rejects the session (an
// `error` message, then a close with a code and reason), the page shows
// the reason, says the connection closed with that code, and stops its
// microphone and audio.
func TestPageShowsServerClose(t *testing.T) {
	ctx := newBrowser(t, "")
	const reason = "start: sample_rate 8000: want 16000"
	f := newFakeServer(t, func(c *fakeConn) error {
		if err := c.await(5*time.Second, "send start", func(ctl []map[string]any, _ int) bool { return len(ctl) > 0 }); err != nil {
			return err
		}
		if err := c.send(map[string]any{"type": "error", "reason": reason}); err != nil {
			return err
		}
		return c.ws.Close(websocket.StatusUnsupportedData, reason)
	})
	if err := chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+"/"), chromedp.Click(chromedp.ID("start"))); err != nil {
		t.Fatal(err)
	}
	if err := <-f.done; err != nil {
		t.Fatalf("fake server script: %v", err)
	}
	var st pageStatus
	waitFor(t, 10*time.Second, "the page to see the close", func() bool {
		st = pageState(t, ctx)
		return st.Closed != nil
	}, func() string { return fmt.Sprintf("%+v", st) })
	if st.Closed.Code != 1003 || st.Closed.Reason != reason {
		t.Errorf("page saw close %+v, want 1003 %q", st.Closed, reason)
	}
	if got := pageText(t, ctx, "#error"); !strings.Contains(got, reason) {
		t.Errorf("the page shows error %q, want it to name %q", got, reason)
	}
	if got := pageText(t, ctx, "#status"); !strings.Contains(got, "1003") {
		t.Errorf("status %q does not give the close code", got)
	}
	waitFor(t, 5*time.Second, "the page to stop its audio", func() bool {
		return evaluate[bool](t, ctx, `!document.getElementById('start').disabled`)
	}, func() string { return "the start button stayed disabled" })
	screenshot(t, ctx, "server-close.png")
}
