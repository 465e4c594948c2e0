package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/isolation"
	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/kernel/runner"
	"github.com/rspp/rspp/supervisor/config"
)

// Options configure a Runtime beyond the config file.
type Options struct {
	Logger hclog.Logger
	// Clock drives restart backoff, kill grace and health checks (default
	// the system clock).
	Clock Clock
	// Events, if set, sees every pool lifecycle change (metrics, tests,
	// benchmarks). It must not block.
	Events func(PoolEvent)
	// Timeline, if set, also receives every session's timeline records
	// (telemetry). It must not block.
	Timeline runner.Timeline
}

// Runtime is a started supervisor: every provider's pool is up and sessions
// can be opened against them. A provider is served by one current pool; a
// hot upgrade starts a new pool beside it, binds new turns to it and drains
// the old one once no turn is bound to it.
type Runtime struct {
	cfg   *config.Config
	opts  Options
	log   hclog.Logger
	state *StateDir
	envs  *isolation.Envelopes // nil: isolation off or unavailable
	pids  PidLog

	upgradeMu sync.Mutex // one upgrade or reload at a time

	mu       sync.RWMutex
	pools    map[string]*Pool  // by pool key, current and draining
	current  map[string]string // provider -> pool key
	gen      map[string]int    // provider -> last pool generation
	sessions map[*sessionBindings]struct{}
	closed   bool
	drains   sync.WaitGroup
	stop     chan struct{}
}

// Start sweeps stale state (socket dirs, cgroup envelopes of dead runs),
// then starts every provider's pool concurrently. If any pool fails,
// everything started is stopped and the error names the provider.
func Start(ctx context.Context, cfg *config.Config, opts Options) (*Runtime, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	log := opts.Logger
	state, swept, err := OpenStateDir(cfg.Runtime.StateDir)
	if err != nil {
		return nil, err
	}
	for _, s := range swept {
		log.Info("swept stale state of a dead run", "path", s)
	}
	rt := &Runtime{cfg: cfg, opts: opts, log: log, state: state, pools: map[string]*Pool{},
		current: map[string]string{}, gen: map[string]int{}, sessions: map[*sessionBindings]struct{}{}, stop: make(chan struct{})}
	if err := rt.openIsolation(); err != nil {
		rt.Close()
		return nil, err
	}
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		errs  []error
	)
	for _, name := range cfg.ProviderNames() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := rt.startPool(ctx, cfg.Providers[name])
			errMu.Lock()
			defer errMu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			rt.mu.Lock()
			rt.pools[pool.Key()] = pool
			rt.current[name] = pool.Key()
			rt.mu.Unlock()
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		rt.Close()
		return nil, errors.Join(errs...)
	}
	return rt, nil
}

// openIsolation opens the cgroup envelopes per runtime.isolation.
func (rt *Runtime) openIsolation() error {
	mode := rt.cfg.Runtime.Isolation
	if mode == "off" {
		return nil
	}
	envs, err := isolation.OpenEnvelopes(isolation.EnvelopesConfig{})
	if err == nil {
		rt.envs = envs
		for _, name := range rt.cfg.ProviderNames() {
			if p := rt.cfg.Providers[name]; p.Profile == "tenant" {
				if dir := rt.state.ReachableByOthers(); dir != "" {
					return fmt.Errorf("provider %s: profile tenant runs the plugin as an unprivileged uid, which cannot reach its socket under %s (needs o+x): chmod it or choose another runtime.state_dir", name, dir)
				}
				break
			}
		}
		return nil
	}
	if mode == "on" {
		return fmt.Errorf("runtime.isolation is on: %w", err)
	}
	for _, p := range rt.cfg.Providers {
		if p.Profile != "trusted" {
			return fmt.Errorf("provider %s: profile %s needs isolation, which is unavailable here: %w", p.Name, p.Profile, err)
		}
	}
	rt.log.Warn("isolation unavailable: plugins run as plain processes", "error", err)
	return nil
}

// startPool starts a new generation of a provider's pool.
func (rt *Runtime) startPool(ctx context.Context, p *config.Provider) (*Pool, error) {
	rt.mu.Lock()
	rt.gen[p.Name]++
	gen := rt.gen[p.Name]
	rt.mu.Unlock()
	key := fmt.Sprintf("%s#%d", p.Name, gen)
	launch := Launch{
		Binary: p.BinaryPath, Args: p.Args, Checksum: p.Checksum, Tenant: p.Tenant,
		SocketDir: rt.state.Run, StartTimeout: time.Duration(p.StartTimeout), Logger: rt.log,
	}
	if rt.envs != nil {
		prof, err := providerProfile(p)
		if err != nil {
			return nil, fmt.Errorf("provider %s: %w", p.Name, err)
		}
		launch.Envelopes, launch.Profile = rt.envs, prof
	}
	r := p.Restart
	pool, err := StartPool(ctx, PoolConfig{
		Key: key, Provider: p.Name, NodeID: p.Name, Launch: launch, Warm: p.Instances,
		ConfigDir: rt.cfg.Dir, ConfigJSON: p.ConfigJSON,
		Restart: RestartPolicy{Intensity: r.Intensity, Period: time.Duration(r.Period), BackoffBase: time.Duration(r.Backoff),
			BackoffMax: time.Duration(r.BackoffMax), Jitter: r.Jitter, Cooldown: time.Duration(r.Cooldown)},
		KillGrace: time.Duration(rt.cfg.Runtime.KillGrace), AcquireWait: time.Duration(p.AcquireWait),
		HealthInterval: time.Duration(p.HealthInterval), HealthTimeout: time.Duration(p.HealthTimeout),
		Clock: rt.opts.Clock, Seed: uint64(gen), Logger: rt.log, Events: rt.opts.Events, Pids: &rt.pids,
	})
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", p.Name, err)
	}
	return pool, nil
}

// Config is the loaded configuration.
func (rt *Runtime) Config() *config.Config {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return rt.cfg
}

// Pool returns a provider's current pool.
func (rt *Runtime) Pool(provider string) *Pool {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return rt.pools[rt.current[provider]]
}

// PoolByKey returns a pool by key (current or draining).
func (rt *Runtime) PoolByKey(key string) *Pool {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return rt.pools[key]
}

// Binding implements kernel.BindingSource: what serves provider for turns
// opening now.
func (rt *Runtime) Binding(provider string) (kernel.Binding, bool) {
	p := rt.Pool(provider)
	if p == nil {
		return kernel.Binding{}, false
	}
	return kernel.Binding{Provider: provider, Version: p.Info().Version, Pool: p.Key()}, true
}

// Open implements runner.Pools: it opens an invocation on the pool the
// turn's frozen binding names, even if that pool is draining after an
// upgrade.
func (rt *Runtime) Open(pool string, req externalnode.OpenRequest, avoid []string, h externalnode.Handler) (runner.Call, error) {
	p := rt.PoolByKey(pool)
	if p == nil {
		return nil, fmt.Errorf("no pool %q: %w", pool, kernel.ErrNodeUnavailable)
	}
	c, err := p.Open(req, avoid, h)
	if err != nil {
		return nil, err
	}
	return c, nil
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
	next := o.Timeline
	if rt.opts.Timeline != nil {
		next = teeTimeline{o.Timeline, rt.opts.Timeline}
	}
	sb := &sessionBindings{rt: rt, next: next, turns: map[string]map[string]bool{}}
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return nil, fmt.Errorf("runtime closed: %w", kernel.ErrSessionClosed)
	}
	rt.sessions[sb] = struct{}{}
	cfg := rt.cfg
	rt.mu.Unlock()
	s, err := runner.Open(runner.Config{
		Kernel: kernel.SessionConfig{
			SessionID: o.ID, TenantID: o.TenantID, Epoch: 1, Graph: cfg.Graph(), Bindings: sb,
			VAD: cfg.KernelVAD(), UnknownEventPolicy: cfg.Gateway.UnknownEvents,
		},
		Pools: rt, Output: o.Output, Timeline: sb, Observe: o.Observe, Tick: time.Duration(cfg.Runtime.TickInterval),
	})
	if err != nil {
		rt.forget(sb)
		return nil, err
	}
	return s, nil
}

func (rt *Runtime) forget(sb *sessionBindings) {
	rt.mu.Lock()
	delete(rt.sessions, sb)
	rt.mu.Unlock()
}

// Pids lists every live plugin process of this runtime by pool key.
func (rt *Runtime) Pids() map[string][]int {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	out := map[string][]int{}
	for key, p := range rt.pools {
		out[key] = p.Pids()
	}
	return out
}

// StartedPids is every plugin process this runtime ever started.
func (rt *Runtime) StartedPids() *PidLog { return &rt.pids }

// Status is a snapshot of every pool, current ones first.
func (rt *Runtime) Status() []PoolStatus {
	rt.mu.RLock()
	pools := make([]*Pool, 0, len(rt.pools))
	for _, p := range rt.pools {
		pools = append(pools, p)
	}
	rt.mu.RUnlock()
	out := make([]PoolStatus, 0, len(pools))
	for _, p := range pools {
		out = append(out, p.Status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// StateDir is where this run keeps sockets.
func (rt *Runtime) StateDir() *StateDir { return rt.state }

// Close stops every pool (draining ones included), the cgroup envelopes
// and removes the run's state. Safe to call twice.
func (rt *Runtime) Close() {
	rt.mu.Lock()
	if !rt.closed {
		rt.closed = true
		close(rt.stop)
	}
	pools := rt.pools
	rt.pools = map[string]*Pool{}
	rt.mu.Unlock()
	rt.drains.Wait()
	var wg sync.WaitGroup
	for _, p := range pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Close()
		}()
	}
	wg.Wait()
	if rt.envs != nil {
		_ = rt.envs.Close()
	}
	if rt.state != nil {
		_ = rt.state.Close()
	}
}

// teeTimeline hands each record to every non-nil timeline, in order.
type teeTimeline []runner.Timeline

func (t teeTimeline) Append(rec kernel.TimelineRecord) {
	for _, tl := range t {
		if tl != nil {
			tl.Append(rec)
		}
	}
}
