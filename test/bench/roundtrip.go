package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
)

// roundTripper does one frame round trip to its plugin process and back.
// It is not safe for concurrent use: the measurement is a ping-pong.
type roundTripper interface {
	roundTrip() error
	pid() int
	// close kills and reaps the plugin process and removes its socket
	// directory; safe to call once start succeeded.
	close() error
}

// startTimeout bounds each plugin start; a start is not measured.
const startTimeout = 20 * time.Second

// realPath is the frame round trip through RSPP's own boundary:
// externalnode host -> Data stream -> plugin server -> Node.Invoke -> Emit
// -> Data stream -> reader goroutine -> Handler.OnEvent.
type realPath struct {
	ctx    context.Context
	dir    string
	inst   *externalnode.Instance
	call   *externalnode.HostCall
	frame  eventabi.Event
	echoed chan eventabi.Event
	ended  chan error
}

func startRealPath(ctx context.Context, self, tmp string, frame []byte, window int) (*realPath, error) {
	return startRealPathOf(ctx, self, []string{PluginEnv + "=" + pluginEchoNode, WindowEnv + "=" + strconv.Itoa(window)}, tmp, frame)
}

// startRealPathOf is the real path to any echo node binary (the Go one, or
// the Node.js and Python SDKs' example echo nodes).
func startRealPathOf(ctx context.Context, binary string, env []string, tmp string, frame []byte) (*realPath, error) {
	dir, err := os.MkdirTemp(tmp, "rspp-bench-real-")
	if err != nil {
		return nil, err
	}
	inst, err := externalnode.Start(ctx, externalnode.StartConfig{
		Name: "bench/echo", Binary: binary, Env: env,
		SocketDir: dir, StartTimeout: startTimeout,
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("real path: %w", err)
	}
	r := &realPath{
		ctx: ctx, dir: dir, inst: inst,
		// The fields the kernel fills on every frame ride along, so the
		// wire message is the size a real one is.
		frame: eventabi.Event{
			Type: eventabi.TypeAudioFrame, Lane: eventabi.DefaultLane(eventabi.TypeAudioFrame),
			SessionID: "bench-session", TurnID: "bench-turn", NodeID: "echo", InvocationID: "bench-inv",
			SchemaVersion: eventabi.SchemaVersion,
			Audio:         &eventabi.Audio{PCM: frame, SampleRate: 16000, Channels: 1},
		},
		// Ping-pong keeps at most one echo in flight; the buffer lets the
		// instance's reader goroutine hand it over without waiting.
		echoed: make(chan eventabi.Event, 1),
		ended:  make(chan error, 1),
	}
	// A ping-pong runs faster than any budget meant for speech allows.
	unbounded := externalnode.OutputBudget{EventsPerSecond: 1e9, BytesPerSecond: 1 << 40}
	r.call, err = inst.Open(externalnode.OpenRequest{InvocationID: "bench-inv", SessionID: "bench-session", TurnID: "bench-turn", NodeID: "echo",
		Budget: unbounded}, externalnode.Handler{
		OnEvent: func(ev eventabi.Event) {
			select {
			case r.echoed <- ev:
			default: // an echo nobody waits for would be a bug; never block the reader
			}
		},
		OnEnd: func(err error) { r.ended <- err },
	})
	if err != nil {
		_ = r.close()
		return nil, fmt.Errorf("real path: open: %w", err)
	}
	return r, nil
}

func (r *realPath) roundTrip() error {
	if err := r.call.Send(r.frame); err != nil {
		return err
	}
	select {
	case ev := <-r.echoed:
		if ev.Audio == nil || len(ev.Audio.PCM) != len(r.frame.Audio.PCM) {
			return fmt.Errorf("real path: echo is not the frame: %+v", ev)
		}
		return nil
	case err := <-r.ended:
		return fmt.Errorf("real path: invocation ended: %v", err)
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
}

func (r *realPath) pid() int { return r.inst.Pid() }

func (r *realPath) close() error {
	// Kill ends the open call and reaps the process; its socket directory
	// lives in ours, which goes too.
	r.inst.Kill()
	return os.RemoveAll(r.dir)
}

// spawnThreadRunner forks through externalnode's spawn thread, as the real
// path does, so Pdeathsig kills the plugin if the driver dies.
type spawnThreadRunner struct {
	runner.Runner
}

func (s spawnThreadRunner) Start(ctx context.Context) error {
	return externalnode.OnSpawnThread(func() error { return s.Runner.Start(ctx) })
}

// bareGRPC is the same process pair and transport (go-plugin, plaintext
// gRPC over a unix socket, as RSPP's default peercred channel) with none of
// RSPP's layers: one bidi stream that echoes bytes.
type bareGRPC struct {
	dir       string
	client    *plugin.Client
	proc      runner.Runner // set by RunnerFunc during client.Client
	stream    grpc.ClientStream
	cancel    context.CancelFunc
	req, resp *wrapperspb.BytesValue
}

func startBareGRPC(ctx context.Context, self, tmp string, frame []byte) (*bareGRPC, error) {
	dir, err := os.MkdirTemp(tmp, "rspp-bench-bare-")
	if err != nil {
		return nil, err
	}
	b := &bareGRPC{dir: dir, req: wrapperspb.Bytes(frame), resp: new(wrapperspb.BytesValue)}
	b.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  bareHandshake,
		Plugins:          plugin.PluginSet{barePluginName: bareEchoPlugin{}},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     startTimeout,
		Logger:           hclog.NewNullLogger(),
		UnixSocketConfig: &plugin.UnixSocketConfig{TempDir: dir},
		RunnerFunc: func(l hclog.Logger, cmd *exec.Cmd, sockDir string) (runner.Runner, error) {
			r, err := externalnode.ProcRunner(self, nil, []string{PluginEnv + "=" + pluginBareGRPC})(l, cmd, sockDir)
			if err != nil {
				return nil, err
			}
			b.proc = spawnThreadRunner{r}
			return b.proc, nil
		},
	})
	fail := func(err error) (*bareGRPC, error) {
		_ = b.close()
		return nil, fmt.Errorf("bare go-plugin gRPC: %w", err)
	}
	rpc, err := b.client.Client()
	if err != nil {
		return fail(err)
	}
	raw, err := rpc.Dispense(barePluginName)
	if err != nil {
		return fail(err)
	}
	conn, ok := raw.(*grpc.ClientConn)
	if !ok {
		return fail(fmt.Errorf("dispensed %T", raw))
	}
	sctx, cancel := context.WithCancel(ctx)
	b.cancel = cancel
	if b.stream, err = conn.NewStream(sctx, &bareEchoDesc.Streams[0], bareEchoMethod); err != nil {
		return fail(err)
	}
	return b, nil
}

func (b *bareGRPC) roundTrip() error {
	if err := b.stream.SendMsg(b.req); err != nil {
		return err
	}
	if err := b.stream.RecvMsg(b.resp); err != nil {
		return err
	}
	if len(b.resp.Value) != len(b.req.Value) {
		return fmt.Errorf("bare go-plugin gRPC: echo of %d bytes, sent %d", len(b.resp.Value), len(b.req.Value))
	}
	return nil
}

func (b *bareGRPC) pid() int {
	if b.proc == nil {
		return 0
	}
	p, _ := strconv.Atoi(b.proc.ID())
	return p
}

func (b *bareGRPC) close() error {
	if b.cancel != nil {
		b.cancel()
	}
	// Kill is graceful (the plugin's shutdown RPC), then forced, and waits
	// for the process to be reaped.
	b.client.Kill()
	return os.RemoveAll(b.dir)
}

// rawUnix is the floor: a connected unix stream socket between the two
// processes (a socketpair, so no socket file exists at all), 640 bytes each
// way, nothing else.
type rawUnix struct {
	cmd     *exec.Cmd
	conn    net.Conn
	stop    func() bool
	out, in []byte
}

func startRawUnix(ctx context.Context, self string, frame []byte) (*rawUnix, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("raw unix: socketpair: %w", err)
	}
	mine := os.NewFile(uintptr(fds[0]), "bench-socket-host")
	theirs := os.NewFile(uintptr(fds[1]), "bench-socket-plugin")
	defer mine.Close() // FileConn duplicates it
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), PluginEnv+"="+pluginRawUnix)
	cmd.ExtraFiles = []*os.File{theirs} // becomes rawUnixFD
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = externalnode.OnSpawnThread(cmd.Start)
	_ = theirs.Close() // the child holds its copy
	if err != nil {
		return nil, fmt.Errorf("raw unix: start: %w", err)
	}
	conn, err := net.FileConn(mine)
	if err != nil {
		r := &rawUnix{cmd: cmd}
		_ = r.close()
		return nil, fmt.Errorf("raw unix: %w", err)
	}
	r := &rawUnix{cmd: cmd, conn: conn, out: frame, in: make([]byte, len(frame))}
	// A deadline in the past unblocks a pending read when the run is over.
	r.stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	return r, nil
}

func (r *rawUnix) roundTrip() error {
	if _, err := r.conn.Write(r.out); err != nil {
		return err
	}
	_, err := io.ReadFull(r.conn, r.in)
	return err
}

func (r *rawUnix) pid() int { return r.cmd.Process.Pid }

func (r *rawUnix) close() error {
	if r.stop != nil {
		r.stop()
	}
	if r.conn != nil {
		_ = r.conn.Close() // the plugin reads EOF and exits
	}
	waited := make(chan error, 1)
	go func() { waited <- r.cmd.Wait() }()
	select {
	case <-waited:
	case <-time.After(2 * time.Second):
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-waited
	}
	return nil
}

// Names of the three measurements, as they appear in results.json.
const (
	NameRealPath = "frame_roundtrip_real_path"
	NameBareGRPC = "frame_roundtrip_bare_goplugin_grpc"
	NameRawUnix  = "frame_roundtrip_raw_unix_socket"
	// NameSessionPath is kernel -> plugin -> kernel through a session.
	NameSessionPath = "frame_roundtrip_session_path"
	// The real path with the smallest and the largest input window: a
	// CREDIT frame after every input, or after every 2048 (flow control
	// all but off). The default window (64) credits every 32.
	NameRealWindow1   = "frame_roundtrip_real_path_window_1"
	NameRealWindowMax = "frame_roundtrip_real_path_window_4096"
	// The real path to the Node.js and Python SDKs' echo nodes.
	NameNodeJS = "frame_roundtrip_nodejs_sdk"
	NamePython = "frame_roundtrip_python_sdk"
)

// RoundTripConfig says how to measure the frame round trips.
type RoundTripConfig struct {
	// Self is the binary to re-execute as the plugins; it must call
	// ServePluginIfAsked first thing.
	Self       string
	TempDir    string // parent of the socket directories; default os.TempDir()
	FrameBytes int    // default 640: 20 ms of 16 kHz mono s16le
	Samples    int    // measured round trips per path; default 5000
	Warmup     int    // unmeasured round trips per path first; default 200
	// Rounds splits the samples of each path into this many blocks,
	// interleaved (A B C, B C A, C A B, ...) so that a burst of machine noise
	// lands on all paths alike rather than on whichever ran then.
	Rounds  int           // default 10
	Timeout time.Duration // whole measurement; default 5 min
	// NodeJSNode and PythonNode, when set, are echo nodes on the Node.js
	// and Python SDKs measured beside the Go node in the same rounds.
	NodeJSNode, PythonNode string

	// started, if set, is told the plugin pids once all three run (the
	// tests check that they are gone afterwards).
	started func(pids []int)
}

func (c *RoundTripConfig) defaults() {
	if c.FrameBytes <= 0 {
		c.FrameBytes = 640
	}
	if c.Samples <= 0 {
		c.Samples = 5000
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	}
	if c.Rounds <= 0 {
		c.Rounds = 10
	}
	if c.Rounds > c.Samples {
		c.Rounds = c.Samples
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Minute
	}
	if c.TempDir == "" {
		c.TempDir = os.TempDir()
	}
}

// RoundTrips is the "frame_roundtrip" section of results.json.
type RoundTrips struct {
	FrameBytes int     `json:"frame_bytes"`
	Warmup     int     `json:"warmup"`
	Rounds     int     `json:"rounds"`
	RealPath   Summary `json:"frame_roundtrip_real_path"`
	BareGRPC   Summary `json:"frame_roundtrip_bare_goplugin_grpc"`
	RawUnix    Summary `json:"frame_roundtrip_raw_unix_socket"`
	// SessionPath adds the kernel and the session runner on both sides:
	// transport ingress -> kernel -> plugin -> kernel -> egress.
	SessionPath Summary `json:"frame_roundtrip_session_path"`
	// The flow-control variants of the real path.
	RealWindow1   Summary `json:"frame_roundtrip_real_path_window_1"`
	RealWindowMax Summary `json:"frame_roundtrip_real_path_window_4096"`
	// The same real path to echo nodes written on the other SDKs.
	NodeJS *Summary `json:"frame_roundtrip_nodejs_sdk,omitempty"`
	Python *Summary `json:"frame_roundtrip_python_sdk,omitempty"`
	// Ratios compare the paths of this same run: "real/bare" is what RSPP's
	// layers add over the bare go-plugin stream it rides on.
	Ratios map[string]Ratio `json:"ratios"`
}

// MeasureRoundTrips starts the three plugin processes, measures them
// interleaved and stops them all again, whatever happened.
func MeasureRoundTrips(ctx context.Context, cfg RoundTripConfig) (res *RoundTrips, err error) {
	cfg.defaults()
	if cfg.Self == "" {
		return nil, errors.New("bench: no binary to re-execute as plugin")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	frame := make([]byte, cfg.FrameBytes)
	for i := range frame {
		frame[i] = byte(i) // not all zeros, in case anything on the way compresses
	}

	names := []string{NameRealPath, NameBareGRPC, NameRawUnix, NameSessionPath, NameRealWindow1, NameRealWindowMax}
	paths := make([]roundTripper, 0, len(names))
	defer func() {
		for _, p := range paths {
			if cerr := p.close(); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	realPath, err := startRealPath(ctx, cfg.Self, cfg.TempDir, frame, 0)
	if err != nil {
		return nil, err
	}
	paths = append(paths, realPath)
	bare, err := startBareGRPC(ctx, cfg.Self, cfg.TempDir, frame)
	if err != nil {
		return nil, err
	}
	paths = append(paths, bare)
	raw, err := startRawUnix(ctx, cfg.Self, frame)
	if err != nil {
		return nil, err
	}
	paths = append(paths, raw)
	session, err := startSessionPath(ctx, cfg.Self, cfg.TempDir, frame)
	if err != nil {
		return nil, err
	}
	paths = append(paths, session)
	for _, w := range []int{1, 4096} {
		p, err := startRealPath(ctx, cfg.Self, cfg.TempDir, frame, w)
		if err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	sdkAt := map[string]int{}
	for _, n := range []struct{ name, binary string }{{NameNodeJS, cfg.NodeJSNode}, {NamePython, cfg.PythonNode}} {
		if n.binary == "" {
			continue
		}
		p, err := startRealPathOf(ctx, n.binary, nil, cfg.TempDir, frame)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.name, err)
		}
		sdkAt[n.name] = len(paths)
		paths = append(paths, p)
		names = append(names, n.name)
	}

	if cfg.started != nil {
		pids := make([]int, len(paths))
		for i, p := range paths {
			pids[i] = p.pid()
		}
		cfg.started(pids)
	}
	for i, p := range paths {
		for range cfg.Warmup {
			if err := p.roundTrip(); err != nil {
				return nil, fmt.Errorf("%s: warm-up: %w", names[i], err)
			}
		}
	}
	samples := make([][]time.Duration, len(paths))
	for i := range samples {
		samples[i] = make([]time.Duration, 0, cfg.Samples)
	}
	for round := range cfg.Rounds {
		// Spread the remainder over the first rounds so every path gets
		// exactly Samples.
		n := cfg.Samples / cfg.Rounds
		if round < cfg.Samples%cfg.Rounds {
			n++
		}
		for k := range paths {
			i := (round + k) % len(paths)
			for range n {
				start := time.Now()
				if err := paths[i].roundTrip(); err != nil {
					return nil, fmt.Errorf("%s: round %d: %w", names[i], round, err)
				}
				samples[i] = append(samples[i], time.Since(start))
			}
		}
	}

	r, b, w, s := Summarize(samples[0]), Summarize(samples[1]), Summarize(samples[2]), Summarize(samples[3])
	w1, wmax := Summarize(samples[4]), Summarize(samples[5])
	res = &RoundTrips{
		FrameBytes: cfg.FrameBytes, Warmup: cfg.Warmup, Rounds: cfg.Rounds,
		RealPath: r, BareGRPC: b, RawUnix: w, SessionPath: s, RealWindow1: w1, RealWindowMax: wmax,
		Ratios: map[string]Ratio{"real/bare": RatioOf(r, b), "real/raw": RatioOf(r, w), "bare/raw": RatioOf(b, w),
			"session/real": RatioOf(s, r), "session/bare": RatioOf(s, b),
			// Flow control's own cost: the default window against flow
			// control all but off, and its worst case.
			"real/window_4096": RatioOf(r, wmax), "window_1/window_4096": RatioOf(w1, wmax)},
	}
	if i, ok := sdkAt[NameNodeJS]; ok {
		sum := Summarize(samples[i])
		res.NodeJS = &sum
		res.Ratios["nodejs/real"] = RatioOf(sum, r)
	}
	if i, ok := sdkAt[NamePython]; ok {
		sum := Summarize(samples[i])
		res.Python = &sum
		res.Ratios["python/real"] = RatioOf(sum, r)
	}
	return res, nil
}
