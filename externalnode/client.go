package externalnode

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/rspp/rspp/kernel/eventabi"
	rsppv1 "github.com/rspp/rspp/proto/rspp/v1"
)

// StartConfig says how to start one plugin instance.
type StartConfig struct {
	Name   string   // for logs, e.g. "tts/espeak#1"
	Binary string   // plugin executable
	Args   []string // extra arguments
	Env    []string // extra environment (added to the host's unless SkipHostEnv)
	// Checksum, if set, is the expected SHA-256 of Binary. It is checked by
	// the host itself, so it verifies the plugin even when a sandbox entry
	// point is what actually gets executed.
	Checksum []byte
	// Runner overrides how the process is started (isolation's sandboxed
	// start). Nil: ProcRunner(Binary, Args, Env).
	Runner      RunnerFunc
	SkipHostEnv bool
	// SocketDir is the parent under which go-plugin makes each instance its
	// own socket directory (PLUGIN_UNIX_SOCKET_DIR of the plugin); the
	// handshake must name a unix socket directly inside that one (see
	// pin.go). The runtime points it at a directory it sweeps on start.
	SocketDir    string
	StartTimeout time.Duration // default 10s
	Logger       hclog.Logger
	// Stderr receives the plugin's non-log stderr lines (default: discarded).
	Stderr io.Writer
	// Channel secures the connection (default ChannelPeerCred).
	Channel Channel
}

// Instance is one running plugin process with its two streams. It owns the
// goroutines that read them; Kill stops everything and is safe to call twice.
type Instance struct {
	name   string
	client *plugin.Client
	proc   *watchRunner
	rpc    rsppv1.NodeClient
	info   Info

	streamCtx    context.Context
	streamCancel context.CancelFunc
	data         rsppv1.Node_DataClient
	ctrl         rsppv1.Node_ControlClient
	ctrlSeq      atomic.Uint64
	// ctrlq feeds the Control writer: cancels never wait on the caller's
	// goroutine, and a plugin that stops reading Control fills it (the
	// cancel then fails and the pool's kill grace takes over).
	ctrlq chan *rsppv1.ControlRequest

	mu    sync.Mutex
	calls map[string]*HostCall
	dead  error

	// Writer state: calls with a frame they may send now, in round-robin
	// order. Only the writer goroutine sends on the Data stream.
	wmu   sync.Mutex
	ready []*HostCall
	wwake chan struct{}

	foreign     atomic.Int64 // output frames addressed to another invocation
	lastForeign atomic.Value // string

	done     chan struct{} // closed when the instance can serve no more
	loops    sync.WaitGroup
	killOnce sync.Once
}

// Start launches the plugin, negotiates the handshake (protocol version,
// gRPC, the Channel), reads its Info and opens the Data and Control streams.
func Start(ctx context.Context, cfg StartConfig) (*Instance, error) {
	if cfg.Binary == "" {
		return nil, errors.New("externalnode: no plugin binary")
	}
	if _, err := os.Stat(cfg.Binary); err != nil {
		return nil, fmt.Errorf("externalnode: plugin binary: %w", err)
	}
	if len(cfg.Checksum) > 0 {
		if err := verifyChecksum(cfg.Binary, cfg.Checksum); err != nil {
			return nil, err
		}
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	run := cfg.Runner
	if run == nil {
		run = ProcRunner(cfg.Binary, cfg.Args, cfg.Env)
	}
	var proc *watchRunner
	pin := newHandshakePin(cfg.Name) // pin.go: handshake held to the instance's socket dir
	cfg.SocketDir = absDir(cfg.SocketDir)
	defer pin.abortOn(ctx)()
	stderr := cfg.Stderr
	if stderr == nil {
		stderr = io.Discard
	}
	channel, err := ParseChannel(string(cfg.Channel))
	if err != nil {
		return nil, fmt.Errorf("externalnode: %w", err)
	}
	plugins := plugin.PluginSet{pluginName: &grpcPlugin{}}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: Handshake,
		// The oldest version is accepted by the handshake only to be
		// refused after Describe with an error that says what to do.
		VersionedPlugins: map[int]plugin.PluginSet{oldestProtocolVersion: plugins, ProtocolVersion: plugins},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         channel == ChannelMTLS,
		SkipHostEnv:      cfg.SkipHostEnv,
		StartTimeout:     cfg.StartTimeout,
		Logger:           logger,
		Stderr:           stderr,
		UnixSocketConfig: &plugin.UnixSocketConfig{TempDir: cfg.SocketDir},
		GRPCDialOptions: []grpc.DialOption{
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
			grpc.WithContextDialer(pin.dial), // after go-plugin's own dialer: replaces it
		},
		RunnerFunc: func(l hclog.Logger, cmd *execCmd, dir string) (runnerT, error) {
			// The plugin accepts connections from this uid only
			// (ChannelPeerCred); go-plugin's own variables are in cmd.Env.
			cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", HostUIDEnv, os.Geteuid()))
			r, err := run(l, cmd, dir)
			if err != nil {
				return nil, err
			}
			proc = newWatchRunner(pin.wrap(r, dir))
			return proc, nil
		},
	})
	inst, err := connect(ctx, client, cfg.Name)
	if err != nil {
		client.Kill()
		pin.removeDir()
		if perr := pin.failure(ctx); perr != nil {
			return nil, perr
		}
		if proc != nil {
			select {
			case <-proc.exited:
				return nil, &ProtocolError{Msg: fmt.Sprintf("%s: %v (%v)", cfg.Name, err, proc.exitError(err))}
			default:
			}
			if pid := proc.pid(); pid > 0 {
				return nil, &ProtocolError{Msg: fmt.Sprintf("%s (pid %d): %v", cfg.Name, pid, err)}
			}
		}
		return nil, &ProtocolError{Msg: fmt.Sprintf("%s: %v", cfg.Name, err)}
	}
	inst.proc = proc
	inst.loops.Add(5)
	go inst.readData()
	go inst.readControl()
	go inst.watchExit()
	go inst.writeData()
	go inst.writeControl()
	return inst, nil
}

func connect(ctx context.Context, client *plugin.Client, name string) (*Instance, error) {
	cp, err := client.Client()
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	raw, err := cp.Dispense(pluginName)
	if err != nil {
		return nil, fmt.Errorf("dispense: %w", err)
	}
	rpc, ok := raw.(rsppv1.NodeClient)
	if !ok {
		return nil, fmt.Errorf("dispense: unexpected client type %T", raw)
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ni, err := rpc.Describe(dctx, &rsppv1.DescribeRequest{})
	if err != nil {
		return nil, fmt.Errorf("describe: %w", err)
	}
	if ni.ProtocolVersion != ProtocolVersion {
		return nil, fmt.Errorf("plugin %q speaks node protocol %d, this runtime speaks %d (per-invocation flow control): rebuild the node against the current SDK", ni.Name, ni.ProtocolVersion, ProtocolVersion)
	}
	if ni.InputWindow == 0 {
		return nil, fmt.Errorf("plugin %q offers no input window (NodeInfo.input_window is required by node protocol %d)", ni.Name, ProtocolVersion)
	}
	info := Info{Name: ni.Name, Kind: ni.Kind, Version: ni.Version, InputWindow: int(min(ni.InputWindow, maxInputWindow)), Idempotent: ni.Idempotent}
	for _, t := range ni.Accepts {
		info.Accepts = append(info.Accepts, eventabi.Type(t))
	}
	for _, t := range ni.Emits {
		info.Emits = append(info.Emits, eventabi.Type(t))
	}
	info.Caps = capsFromWire(ni.Capabilities)
	sctx, scancel := context.WithCancel(context.Background())
	data, err := rpc.Data(sctx)
	if err != nil {
		scancel()
		return nil, fmt.Errorf("open data stream: %w", err)
	}
	ctrl, err := rpc.Control(sctx)
	if err != nil {
		scancel()
		return nil, fmt.Errorf("open control stream: %w", err)
	}
	return &Instance{
		name: name, client: client, rpc: rpc, info: info,
		streamCtx: sctx, streamCancel: scancel, data: data, ctrl: ctrl,
		calls: make(map[string]*HostCall), done: make(chan struct{}),
		ctrlq: make(chan *rsppv1.ControlRequest, controlQueue), wwake: make(chan struct{}, 1),
	}, nil
}

func verifyChecksum(path string, want []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New() // fresh per check: a shared hash.Hash would accumulate
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return &ProtocolError{Msg: fmt.Sprintf("checksum of %s is %s, config expects %s", path, hex.EncodeToString(got), hex.EncodeToString(want))}
	}
	return nil
}

// Info is what the plugin reported about itself.
func (i *Instance) Info() Info { return i.info }

// Pid is the plugin process id.
func (i *Instance) Pid() int { return i.proc.pid() }

// Done is closed when the instance can serve no more (process exit, broken
// stream, Kill). Err then says why.
func (i *Instance) Done() <-chan struct{} { return i.done }

// Err is why the instance died (nil while alive). It unwraps to a kernel
// failure kind: kernel.ErrNodeCrashed for a process exit.
func (i *Instance) Err() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.dead
}

// Configure sends the node its configuration block.
func (i *Instance) Configure(ctx context.Context, cfg Config) error {
	_, err := i.rpc.Configure(ctx, &rsppv1.ConfigureRequest{NodeId: cfg.NodeID, ConfigDir: cfg.Dir, ConfigJson: cfg.Raw})
	if err != nil {
		return configureError(i.name, err)
	}
	return nil
}

// Health asks the plugin whether it serves; it fails on a dead or hung one.
func (i *Instance) Health(ctx context.Context) (open int, err error) {
	r, err := i.rpc.Health(ctx, &rsppv1.HealthRequest{})
	if err != nil {
		return 0, fmt.Errorf("health %s: %w", i.name, err)
	}
	if !r.Serving {
		return int(r.OpenInvocations), fmt.Errorf("health %s: not serving", i.name)
	}
	return int(r.OpenInvocations), nil
}

// OpenInvocations counts invocations in flight on this instance.
func (i *Instance) OpenInvocations() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return len(i.calls)
}

// Kill stops the plugin (graceful, then forced), ends every open call with
// an error, waits for the instance's goroutines and removes its socket dir.
// Safe to call more than once and concurrently.
func (i *Instance) Kill() {
	i.killOnce.Do(func() {
		i.markDead(errors.New("instance stopped"))
		i.client.Kill()
		i.streamCancel()
		i.loops.Wait()
	})
}

// markDead records the first cause of death and fails all open calls.
func (i *Instance) markDead(cause error) {
	i.mu.Lock()
	if i.dead != nil {
		i.mu.Unlock()
		return
	}
	i.dead = cause
	calls := i.calls
	i.calls = make(map[string]*HostCall)
	close(i.done)
	i.mu.Unlock()
	for _, c := range calls {
		c.end(cause)
		c.finish()
	}
}

// watchExit turns a process exit into a typed crash.
func (i *Instance) watchExit() {
	defer i.loops.Done()
	select {
	case <-i.proc.exited:
		i.markDead(i.proc.exitError(nil))
	case <-i.streamCtx.Done():
	}
}

// deathCause waits briefly for the process to exit after a stream broke, so
// that a SIGKILL is reported as a crash with its signal, not as a stream
// error.
func (i *Instance) deathCause(streamErr error) error {
	select {
	case <-i.proc.exited:
		return i.proc.exitError(streamErr)
	case <-time.After(200 * time.Millisecond):
		return &ProtocolError{Msg: fmt.Sprintf("%s: stream broken: %v", i.name, streamErr)}
	}
}

func (i *Instance) readControl() {
	defer i.loops.Done()
	for {
		if _, err := i.ctrl.Recv(); err != nil {
			return
		}
	}
}
