package bench

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	cws "github.com/coder/websocket"

	"github.com/rspp/rspp/providers/espeak/synth"
	"github.com/rspp/rspp/test/lkenv"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/test/wsload"
	"github.com/rspp/rspp/transports"
	"github.com/rspp/rspp/transports/livekit"
	"github.com/rspp/rspp/transports/livekit/lkclient"
	"github.com/rspp/rspp/transports/websocket"
)

// LiveKitConfig is the LiveKit-path measurement, run inside a network
// namespace of its own (the driver re-runs itself there: pion gathers no
// loopback candidates) with the pinned livekit-server:
//   - one-way media latency client -> kernel and kernel -> client: the
//     transport's Conn in this process echoes every inbound frame back to
//     the participant; marker frames (20 ms of tone in silence) are timed
//     when the participant sends them, when the Conn hands them to the
//     session (what the kernel ingests) and when the participant receives
//     them back. The WebSocket transport is measured the same way beside
//     it;
//   - first-audio latency through a real `rspp serve --livekit-url` (the
//     live section's light pipeline): the participant's last voiced frame
//     -> the reply's first audible frame received.
type LiveKitConfig struct {
	BinDir  string // rspp, rspp-opus, providers/, bench/energystt
	Server  string // livekit-server ("": lkenv.ServerBinary)
	Replies string
	Phrase  string
	Markers int // one-way samples per transport
	Turns   int // first-audio samples
	TempDir string
}

// LiveKitPath is one transport's figures. Times in the JSON are µs.
// Up runs from the participant's write of a marker frame (after its
// encode) to the Conn handing the decoded frame to the session; Down from
// the session's Send to the participant's decoded frame. The WebSocket
// path carries PCM, so it has no codec in either.
type LiveKitPath struct {
	Transport  string  `json:"transport"`
	Up         Summary `json:"one_way_client_to_kernel"`
	Down       Summary `json:"one_way_kernel_to_client"`
	FirstAudio Summary `json:"first_audio_client"`
	Lost       int     `json:"markers_unmatched"`
}

// LiveKitBench is the "livekit" section of results.json.
type LiveKitBench struct {
	Paths  []LiveKitPath    `json:"paths"`
	Ratios map[string]Ratio `json:"ratios"`
	Notes  []string         `json:"notes,omitempty"`
}

const liveKitChildEnv = "RSPP_BENCH_LIVEKIT_CHILD"

// MeasureLiveKit runs the measurement in a child in its own network
// namespace and returns what it found. Not root: nil and why.
func MeasureLiveKit(ctx context.Context, c LiveKitConfig) (*LiveKitBench, string, error) {
	if os.Geteuid() != 0 {
		return nil, "livekit path not measured: needs root (network namespace, veth pair)", nil
	}
	var err error
	if c.Server == "" {
		if c.Server, err = lkenv.ServerBinary(); err != nil {
			return nil, "livekit path not measured: " + err.Error(), nil
		}
	}
	for _, p := range []*string{&c.BinDir, &c.Replies} {
		if *p, err = filepath.Abs(*p); err != nil {
			return nil, "", err
		}
	}
	if _, err := os.Stat(filepath.Join(c.BinDir, "rspp-opus")); err != nil {
		return nil, "livekit path not measured: " + err.Error() + " (make build builds it when libopus-dev is installed)", nil
	}
	dir, err := os.MkdirTemp(c.TempDir, "rspp-bench-lk-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	cfgPath := filepath.Join(dir, "config.json")
	raw, _ := json.Marshal(c)
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		return nil, "", err
	}
	if code := lkenv.RunInNetns(nil, liveKitChildEnv+"="+cfgPath); code != 0 {
		return nil, "", fmt.Errorf("livekit measurement exited %d", code)
	}
	out, err := os.ReadFile(cfgPath + ".out")
	if err != nil {
		return nil, "", err
	}
	var b LiveKitBench
	if err := json.Unmarshal(out, &b); err != nil {
		return nil, "", err
	}
	return &b, "", nil
}

// RunLiveKitChildIfAsked is the child's body; it returns false in any
// other process. The driver's main calls it first.
func RunLiveKitChildIfAsked(ctx context.Context, stderr io.Writer) (bool, error) {
	cfgPath := os.Getenv(liveKitChildEnv)
	if cfgPath == "" || !lkenv.InNetns() {
		return false, nil
	}
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		return true, err
	}
	var c LiveKitConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return true, err
	}
	b, err := liveKitChild(ctx, c, filepath.Dir(cfgPath))
	if err != nil {
		return true, err
	}
	out, _ := json.Marshal(b)
	return true, os.WriteFile(cfgPath+".out", out, 0o600)
}

func liveKitChild(ctx context.Context, c LiveKitConfig, dir string) (*LiveKitBench, error) {
	if err := lkenv.SetupNet(); err != nil {
		return nil, err
	}
	defer lkenv.TeardownNet()
	srv, err := lkenv.StartServer(c.Server, dir)
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	opus := filepath.Join(c.BinDir, "rspp-opus")
	b := &LiveKitBench{Ratios: map[string]Ratio{}}
	lk, err := liveKitOneWay(ctx, c, opus)
	if err != nil {
		return nil, fmt.Errorf("livekit one-way: %w", err)
	}
	if lk.FirstAudio, err = liveKitFirstAudio(ctx, c, opus, dir); err != nil {
		return nil, fmt.Errorf("livekit first audio: %w", err)
	}
	ws, err := webSocketOneWay(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("websocket one-way: %w", err)
	}
	b.Paths = []LiveKitPath{lk, ws}
	b.Ratios["one_way_client_to_kernel livekit/websocket"] = RatioOf(lk.Up, ws.Up)
	b.Ratios["one_way_kernel_to_client livekit/websocket"] = RatioOf(lk.Down, ws.Down)
	return b, nil
}

// marker is 20 ms of a 1 kHz tone at -6 dBFS.
func marker() []byte {
	b := make([]byte, 640)
	for i := range 320 {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(int16(0.5*32767*math.Sin(2*math.Pi*1000*float64(i)/16000))))
	}
	return b
}

// markerTimes collects the times markers were seen: a voiced frame after
// at least 100 ms without one.
type markerTimes struct {
	mu    sync.Mutex
	at    []time.Time
	lastV time.Time
}

func (m *markerTimes) frame(pcm []byte, now time.Time) {
	if !lkclient.Voiced(pcm) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.Sub(m.lastV) > 100*time.Millisecond {
		m.at = append(m.at, now)
	}
	m.lastV = now
}

func (m *markerTimes) times() []time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]time.Time(nil), m.at...)
}

// pair matches each send time with the first later time within 150 ms.
func pair(sent, seen []time.Time) (d []time.Duration, lost int) {
	j := 0
	for _, s := range sent {
		for j < len(seen) && seen[j].Before(s) {
			j++
		}
		if j < len(seen) && seen[j].Sub(s) < 150*time.Millisecond {
			d = append(d, seen[j].Sub(s))
			j++
		} else {
			lost++
		}
	}
	return d, lost
}

// echo serves one connection: every inbound frame is timed and sent back.
func echo(conn transports.Conn, kernel *markerTimes) {
	for ev := range conn.Inbound() {
		if ev.Audio == nil {
			continue
		}
		kernel.frame(ev.Audio.PCM, time.Now())
		ev.TurnID = "echo"
		_ = conn.Send(ev)
	}
}

func liveKitOneWay(ctx context.Context, c LiveKitConfig, opus string) (LiveKitPath, error) {
	p := LiveKitPath{Transport: "livekit"}
	agent, err := livekit.NewAgent(ctx, livekit.Options{URL: lkenv.WSURL(), APIKey: lkenv.APIKey, APISecret: lkenv.APISecret,
		AgentName: "bench-echo", OpusBinary: opus})
	if err != nil {
		return p, err
	}
	defer agent.Close()
	kernel := &markerTimes{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := agent.Accept(ctx)
		if err != nil {
			return
		}
		if err := conn.Bind(transports.Binding{SessionID: "bench-echo"}); err == nil {
			echo(conn, kernel)
		}
		conn.Close("done")
	}()
	if err := lkenv.Dispatch(ctx, "bench-echo", "bench-echo"); err != nil {
		return p, err
	}
	tok, err := lkenv.Token("bench-echo", "bench")
	if err != nil {
		return p, err
	}
	cl, err := lkclient.Join(ctx, lkenv.WSURL(), tok, "bench", lkclient.Options{OpusBinary: opus})
	if err != nil {
		return p, err
	}
	if _, err := cl.WaitFor(ctx, 30*time.Second, func(ms []lkclient.Received) bool {
		return len(ms) > 0 && ms[0].Type == "ready"
	}); err != nil {
		cl.Close()
		return p, err
	}
	time.Sleep(1500 * time.Millisecond) // both tracks subscribed end to end
	var sent []time.Time
	mk := marker()
	for range c.Markers {
		cl.Say(mk)
		time.Sleep(200 * time.Millisecond)
		if s := cl.VoiceStart(); !s.IsZero() {
			sent = append(sent, s)
		}
	}
	time.Sleep(300 * time.Millisecond)
	client := &markerTimes{}
	for _, f := range cl.Frames() {
		client.frame(f.PCM, f.At)
	}
	cl.Close()
	<-done
	up, lostUp := pair(sent, kernel.times())
	down, lostDown := pair(kernel.times(), client.times())
	p.Up, p.Down, p.Lost = Summarize(up), Summarize(down), lostUp+lostDown
	return p, nil
}

func webSocketOneWay(ctx context.Context, c LiveKitConfig) (LiveKitPath, error) {
	p := LiveKitPath{Transport: "websocket"}
	srv := websocket.NewServer(websocket.Options{})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()
	kernel := &markerTimes{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := srv.Accept(ctx)
		if err != nil {
			return
		}
		if err := conn.Bind(transports.Binding{SessionID: "ws-echo"}); err == nil {
			echo(conn, kernel)
		}
		conn.Close("done")
	}()
	ws, _, err := cws.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+"/ws", nil)
	if err != nil {
		return p, err
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, cws.MessageText, []byte(`{"type":"start","sample_rate":16000,"channels":1}`)); err != nil {
		return p, err
	}
	client := &markerTimes{}
	go func() {
		for {
			typ, data, err := ws.Read(ctx)
			if err != nil {
				return
			}
			if typ == cws.MessageBinary {
				client.frame(data, time.Now())
			}
		}
	}()
	silence, mk := make([]byte, 640), marker()
	var sent []time.Time
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for i := range c.Markers * 10 {
		<-t.C
		f := silence
		if i%10 == 5 {
			f = mk
		}
		now := time.Now()
		if err := ws.Write(ctx, cws.MessageBinary, f); err != nil {
			return p, err
		}
		if i%10 == 5 {
			sent = append(sent, now)
		}
	}
	time.Sleep(300 * time.Millisecond)
	_ = ws.Write(ctx, cws.MessageText, []byte(`{"type":"stop"}`))
	_ = ws.Close(cws.StatusNormalClosure, "")
	<-done
	up, lostUp := pair(sent, kernel.times())
	down, lostDown := pair(kernel.times(), client.times())
	p.Up, p.Down, p.Lost = Summarize(up), Summarize(down), lostUp+lostDown
	return p, nil
}

func liveKitFirstAudio(ctx context.Context, c LiveKitConfig, opus, dir string) (Summary, error) {
	s, err := synth.NewSynth("", "", "", 0)
	if err != nil {
		return Summary{}, err
	}
	pcm, err := s.Synthesize(ctx, c.Phrase)
	if err != nil {
		return Summary{}, err
	}
	state, err := os.MkdirTemp("", "rsb")
	if err != nil {
		return Summary{}, err
	}
	defer os.RemoveAll(state)
	cfg, err := wsload.WriteConfig(wsload.ServerConfig{
		RSPP: filepath.Join(c.BinDir, "rspp"), STT: filepath.Join(c.BinDir, "bench", "energystt"),
		Rules: filepath.Join(c.BinDir, "providers", "rules"), Espeak: filepath.Join(c.BinDir, "providers", "espeak"),
		Replies: c.Replies, Dir: dir, StateDir: state})
	if err != nil {
		return Summary{}, err
	}
	w, err := testenv.StartServeEnv(filepath.Join(c.BinDir, "rspp"), cfg, dir,
		[]string{"LIVEKIT_API_KEY=" + lkenv.APIKey, "LIVEKIT_API_SECRET=" + lkenv.APISecret}, `livekit worker (\S+) registered`,
		"--livekit-url", lkenv.WSURL(), "--livekit-agent-name", "bench", "--livekit-opus", opus, "--livekit-drain", "-1s")
	if err != nil {
		return Summary{}, err
	}
	defer w.Stop(20 * time.Second)
	if err := lkenv.Dispatch(ctx, "bench-first-audio", "bench"); err != nil {
		return Summary{}, err
	}
	tok, err := lkenv.Token("bench-first-audio", "speaker")
	if err != nil {
		return Summary{}, err
	}
	cl, err := lkclient.Join(ctx, lkenv.WSURL(), tok, "speaker", lkclient.Options{OpusBinary: opus})
	if err != nil {
		return Summary{}, err
	}
	defer cl.Close()
	commits := func(n int) func([]lkclient.Received) bool {
		return func(ms []lkclient.Received) bool {
			k := 0
			for _, m := range ms {
				if m.Type == "turn" && m.State == "commit" {
					k++
				}
			}
			return k >= n
		}
	}
	var samples []time.Duration
	for i := range c.Turns {
		cl.Say(pcm)
		if _, err := cl.WaitFor(ctx, 60*time.Second, commits(i+1)); err != nil {
			return Summary{}, err
		}
		end := cl.VoiceEnd()
		for _, f := range cl.Frames() {
			if f.At.After(end) && lkclient.Voiced(f.PCM) {
				samples = append(samples, f.At.Sub(end))
				break
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(samples) == 0 {
		return Summary{}, errors.New("no reply audio heard")
	}
	return Summarize(samples), nil
}

func printLiveKit(w io.Writer, b *LiveKitBench) {
	fmt.Fprintln(w, "\nLiveKit path beside WebSocket (own network namespace, pinned livekit-server; ms)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "transport\tfigure\tn\tp50\tp99\tmax\t")
	for _, p := range b.Paths {
		for _, f := range []struct {
			name string
			s    Summary
		}{{"one-way client -> kernel", p.Up}, {"one-way kernel -> client", p.Down}, {"first audio (rspp serve), client", p.FirstAudio}} {
			if f.s.N == 0 {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%.2f\t%.2f\t\n", p.Transport, f.name, f.s.N, f.s.P50us/1e3, f.s.P99us/1e3, f.s.MaxUs/1e3)
		}
	}
	_ = tw.Flush()
	for k, r := range b.Ratios {
		fmt.Fprintf(w, "  %s: p50 %.2f, p99 %.2f\n", k, r.P50, r.P99)
	}
}
