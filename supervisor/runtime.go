package supervisor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/kernel/runner"
	"github.com/rspp/rspp/supervisor/config"
)

// Options configure a Runtime beyond the config file.
type Options struct {
	Logger hclog.Logger
	// Runner, if set, chooses how each provider's processes are started
	// (isolation's sandboxed start); nil starts plain processes.
	Runner func(p *config.Provider) (externalnode.RunnerFunc, error)
}

// Runtime is a started supervisor: every provider's pool is up and sessions
// can be opened against them.
type Runtime struct {
	cfg   *config.Config
	log   hclog.Logger
	state *StateDir

	mu    sync.RWMutex
	pools map[string]*Pool // by pool key (provider name)
}

// Start sweeps stale state, then starts every provider's pool concurrently.
// If any pool fails, everything started is stopped and the error names the
// provider.
func Start(ctx context.Context, cfg *config.Config, opts Options) (*Runtime, error) {
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	state, swept, err := OpenStateDir(cfg.Runtime.StateDir)
	if err != nil {
		return nil, err
	}
	for _, s := range swept {
		log.Info("swept stale state of a dead run", "path", s)
	}
	rt := &Runtime{cfg: cfg, log: log, state: state, pools: map[string]*Pool{}}
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	for _, name := range cfg.ProviderNames() {
		p := cfg.Providers[name]
		var run externalnode.RunnerFunc
		if opts.Runner != nil {
			if run, err = opts.Runner(p); err != nil {
				rt.Close()
				return nil, fmt.Errorf("provider %s: %w", name, err)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := StartPool(ctx, PoolConfig{
				Provider: name, NodeID: name, Binary: p.BinaryPath, Args: p.Args, Checksum: p.Checksum,
				Instances: p.Instances, StartTimeout: time.Duration(p.StartTimeout), ConfigDir: cfg.Dir,
				ConfigJSON: p.ConfigJSON, SocketDir: state.Run, Runner: run, Logger: log,
			})
			errMu.Lock()
			defer errMu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				return
			}
			rt.mu.Lock()
			rt.pools[name] = pool
			rt.mu.Unlock()
		}()
	}
	wg.Wait()
	if first != nil {
		rt.Close()
		return nil, first
	}
	return rt, nil
}

// Config is the loaded configuration.
func (rt *Runtime) Config() *config.Config { return rt.cfg }

// Pool returns a provider's pool.
func (rt *Runtime) Pool(provider string) *Pool {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return rt.pools[provider]
}

// Binding implements kernel.BindingSource: what serves provider right now.
func (rt *Runtime) Binding(provider string) (kernel.Binding, bool) {
	p := rt.Pool(provider)
	if p == nil {
		return kernel.Binding{}, false
	}
	return kernel.Binding{Provider: provider, Version: p.Info().Version, Pool: provider}, true
}

// Acquire implements runner.Pools.
func (rt *Runtime) Acquire(pool string) (*externalnode.Instance, error) {
	p := rt.Pool(pool)
	if p == nil {
		return nil, fmt.Errorf("no pool %q: %w", pool, kernel.ErrNodeUnavailable)
	}
	return p.Acquire()
}

// SessionOptions open one session.
type SessionOptions struct {
	ID       string
	TenantID string
	Output   runner.Output
	Timeline runner.Timeline
	Observe  func(nodeID string, ev eventabi.Event)
}

// OpenSession starts a kernel session bound to this runtime's pools.
func (rt *Runtime) OpenSession(o SessionOptions) (*runner.Session, error) {
	return runner.Open(runner.Config{
		Kernel: kernel.SessionConfig{
			SessionID: o.ID, TenantID: o.TenantID, Epoch: 1, Graph: rt.cfg.Graph(), Bindings: rt,
			VAD: rt.cfg.KernelVAD(), UnknownEventPolicy: rt.cfg.Gateway.UnknownEvents,
		},
		Pools: rt, Output: o.Output, Timeline: o.Timeline, Observe: o.Observe, Tick: time.Duration(rt.cfg.Runtime.TickInterval),
	})
}

// Pids lists every live plugin process of this runtime.
func (rt *Runtime) Pids() map[string][]int {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	out := map[string][]int{}
	for name, p := range rt.pools {
		out[name] = p.Pids()
	}
	return out
}

// StateDir is where this run keeps sockets.
func (rt *Runtime) StateDir() *StateDir { return rt.state }

// Close stops every pool and removes the run's state. Safe to call twice.
func (rt *Runtime) Close() {
	rt.mu.Lock()
	pools := rt.pools
	rt.pools = map[string]*Pool{}
	rt.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Close()
		}()
	}
	wg.Wait()
	if rt.state != nil {
		_ = rt.state.Close()
	}
}
