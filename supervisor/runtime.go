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
	"github.com/rspp/rspp/kernel/fence"
	"github.com/rspp/rspp/supervisor/authority"
	"github.com/rspp/rspp/supervisor/builtin"
	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/pool"
	"github.com/rspp/rspp/supervisor/session"
)

// Options configure a Runtime beyond the config file.
type Options struct {
	Logger hclog.Logger
	// Clock drives restart backoff, kill grace and health checks (default
	// the system clock).
	Clock pool.Clock
	// Events, if set, sees every pool lifecycle change (metrics, tests,
	// benchmarks). It must not block.
	Events func(pool.Event)
	// Timeline, if set, also receives every session's timeline records
	// (telemetry). It must not block.
	Timeline session.Timeline
	// Authority hands out session placement leases (nil: from the config,
	// etcd or the in-process default; supervisor/authority).
	Authority authority.Authority
	// SandboxEntry is the binary started as the sandbox entry point
	// (default: this executable). A tenant plugin's unprivileged uid must
	// be able to execute it.
	SandboxEntry string
}

// Runtime is a started supervisor: every provider's pool is up and sessions
// can be opened against them. A trusted provider is served by one current
// pool; a tenant provider by pools keyed by tenant (or session), started
// on first use and stopped when idle. A hot upgrade starts a new
// generation beside the current one, binds new turns to it and drains the
// old generation's pools once no turn is bound to them.
type Runtime struct {
	cfg   *config.Config
	opts  Options
	log   hclog.Logger
	state *StateDir
	envs  *isolation.Envelopes // nil: isolation off or unavailable
	pids  pool.PidLog
	ctx   context.Context // cancelled by Close: aborts keyed pool starts
	halt  context.CancelFunc

	upgradeMu sync.Mutex // one upgrade or reload at a time

	mu         sync.RWMutex
	pools      map[string]*pool.Pool  // by pool key, current and draining, shared and keyed
	gens       map[string]*generation // by generation key, current and retiring
	current    map[string]string      // provider -> current generation key
	gen        map[string]int         // provider -> last generation number
	starting   map[string]*poolStart  // keyed pool starts in progress
	startFails map[string]*pool.RestartTracker
	idleSince  map[string]time.Time // keyed pools with nothing bound, since when
	sessions   map[*sessionBindings]struct{}
	down       map[string]*downProvider // replaceable providers that failed to start (providers.go)
	adm        *admission
	wheel      *session.Wheel // ticks every session and paces the load's frames
	closed     bool
	drains     sync.WaitGroup
	starts     sync.WaitGroup // keyed pool starts in progress
	bg         sync.WaitGroup // reaper and idle pool stops
	reapKick   chan struct{}
	stop       chan struct{}
	evidence   evidenceState // timeline file recording (evidence.go)

	auth     authority.Authority // session placement leases
	ownsAuth bool                // opened by Start: closed by Close

	builtins    *builtin.Host             // builtin providers, in process (builtins.go)
	builtinBind map[string]kernel.Binding // their bindings, fixed at Start
}

// Start sweeps stale state (socket dirs, cgroup envelopes of dead runs),
// then starts every provider's pool concurrently. If any pool fails,
// everything started is stopped and the error names the provider.
func Start(ctx context.Context, cfg *config.Config, opts Options) (*Runtime, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Clock == nil {
		opts.Clock = pool.SystemClock{}
	}
	log := opts.Logger
	state, swept, err := OpenStateDir(cfg.Runtime.StateDir)
	if err != nil {
		return nil, err
	}
	for _, s := range swept {
		log.Info("swept stale state of a dead run", "path", s)
	}
	rctx, halt := context.WithCancel(context.WithoutCancel(ctx))
	rt := &Runtime{cfg: cfg, opts: opts, log: log, state: state, ctx: rctx, halt: halt, pools: map[string]*pool.Pool{},
		gens: map[string]*generation{}, current: map[string]string{}, gen: map[string]int{},
		starting: map[string]*poolStart{}, startFails: map[string]*pool.RestartTracker{}, idleSince: map[string]time.Time{},
		sessions: map[*sessionBindings]struct{}{}, reapKick: make(chan struct{}, 1), stop: make(chan struct{})}
	rt.adm = newAdmission(rt)
	rt.wheel = session.NewWheel(wheelResolution, sessionTick(cfg))
	if sock := AdminSocketPath(cfg.Runtime.AdminSocket, state.Root); SweepAdminSocket(sock) {
		log.Info("swept stale admin socket of a dead run", "path", sock)
	}
	if rt.auth, rt.ownsAuth, err = openAuthority(ctx, cfg, opts); err != nil {
		rt.Close()
		return nil, err
	}
	if err := rt.openIsolation(); err != nil {
		rt.Close()
		return nil, err
	}
	if err := rt.startBuiltins(); err != nil {
		rt.Close()
		return nil, err
	}
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		errs  []error
	)
	for _, name := range cfg.ProviderNames() {
		if cfg.Providers[name].Builtin != "" {
			continue // served in process: startBuiltins
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := rt.newGeneration(cfg.Providers[name])
			started, err := rt.startGeneration(ctx, g, nil)
			if err != nil && cfg.Replaceable(name) && ctx.Err() == nil {
				rt.markDown(g, err) // its nodes switch to another provider
				return
			}
			errMu.Lock()
			defer errMu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			rt.mu.Lock()
			rt.install(g, started)
			rt.mu.Unlock()
		}()
	}
	wg.Wait()
	if err := rt.unservedNode(); err != nil && len(errs) == 0 {
		errs = append(errs, err)
	}
	if err := rt.checkCapabilities(); err != nil && len(errs) == 0 {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		rt.Close()
		return nil, errors.Join(errs...)
	}
	rt.bg.Add(1)
	go rt.reaper()
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

// newGeneration numbers a new generation of provider p.
func (rt *Runtime) newGeneration(p *config.Provider) *generation {
	rt.mu.Lock()
	rt.gen[p.Name]++
	n := rt.gen[p.Name]
	rt.mu.Unlock()
	g := &generation{name: p.Name, key: fmt.Sprintf("%s#%d", p.Name, n), n: n, cfg: p, share: p.Share}
	if p.Profile != "tenant" {
		g.share = "" // trusted: one pool for every session
	}
	return g
}

// startGeneration starts g: its shared pool, or for a tenant provider a
// probe of its binary (no tenant's pool starts before the tenant uses
// it), which learns the version and is stopped again. check, if set,
// must pass on what started. The pool returned is the shared one (nil for
// a tenant provider).
func (rt *Runtime) startGeneration(ctx context.Context, g *generation, check func(*pool.Pool) error) (*pool.Pool, error) {
	started, err := rt.startPoolOf(ctx, g, scope{probe: g.keyed()})
	if err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(started); err != nil {
			started.Close()
			return nil, &checkError{err}
		}
	}
	g.info = started.Info()
	g.version = g.info.Version
	if g.keyed() {
		started.Close()
		return nil, nil
	}
	return started, nil
}

// checkError: what started failed its health check.
type checkError struct{ err error }

func (e *checkError) Error() string { return e.err.Error() }
func (e *checkError) Unwrap() error { return e.err }

// install makes g the provider's current generation (rt.mu held).
func (rt *Runtime) install(g *generation, shared *pool.Pool) {
	rt.gens[g.key] = g
	rt.current[g.name] = g.key
	if shared != nil {
		rt.pools[shared.Key()] = shared
	}
}

// startPoolOf starts the pool of generation g serving sc.
func (rt *Runtime) startPoolOf(ctx context.Context, g *generation, sc scope) (*pool.Pool, error) {
	p := g.cfg
	key := g.key
	switch {
	case sc.probe:
		key += "/probe"
	case g.keyed():
		key = g.poolKey(sc.tenant, sc.session)
	}
	tenant := p.Tenant
	if sc.tenant != "" {
		tenant = sc.tenant
	}
	launch := pool.Launch{
		Binary: p.BinaryPath, Args: p.Args, Checksum: p.Checksum, Tenant: tenant,
		SocketDir: rt.state.Run, ScratchRoot: rt.state.Scratch(), StartTimeout: time.Duration(p.StartTimeout), Logger: rt.log,
		Channel: externalnode.Channel(rt.cfg.Runtime.PluginChannel),
	}
	if rt.envs != nil {
		prof, err := providerProfile(p, rt.state.Scratch())
		if err != nil {
			return nil, fmt.Errorf("provider %s: %w", p.Name, err)
		}
		if rt.opts.SandboxEntry != "" {
			prof.EntryPath = rt.opts.SandboxEntry
		}
		defaultEnvelope(&prof, p, p.Instances.Max)
		launch.Envelopes, launch.Profile = rt.envs, prof
	}
	warm, most := p.Instances.Min, p.Instances.Max
	if sc.probe {
		warm, most = 1, 1
	}
	started, err := pool.Start(ctx, pool.Config{
		Key: key, Provider: p.Name, Kind: p.Kind, NodeID: p.Name, Tenant: sc.tenant, Session: sc.session, Launch: launch, Warm: warm,
		Max: most, Scale: pool.ScalePolicy{UpBusy: p.Instances.ScaleUpBusy, DownIdle: time.Duration(p.Instances.ScaleDownIdle)},
		ConfigDir: rt.cfg.Dir, ConfigJSON: p.ConfigJSON, Restart: g.restartPolicy(),
		KillGrace: time.Duration(rt.cfg.Runtime.KillGrace), AcquireWait: time.Duration(p.AcquireWait),
		HealthInterval: time.Duration(p.HealthInterval), HealthTimeout: time.Duration(p.HealthTimeout),
		Clock: rt.opts.Clock, Seed: uint64(g.n), Logger: rt.log, Events: rt.opts.Events, Pids: &rt.pids,
	})
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", p.Name, err)
	}
	return started, nil
}

// Config is the loaded configuration.
func (rt *Runtime) Config() *config.Config {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return rt.cfg
}

// Pool returns a provider's current shared pool (nil for a tenant
// provider: see TenantPool).
func (rt *Runtime) Pool(provider string) *pool.Pool {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return rt.pools[rt.current[provider]]
}

// TenantPool returns the current pool serving tenant's sessions of a
// share: tenant provider, nil if none is running (it starts on first use).
func (rt *Runtime) TenantPool(provider, tenant string) *pool.Pool {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	g := rt.gens[rt.current[provider]]
	if g == nil {
		return nil
	}
	return rt.pools[g.poolKey(tenant, "")]
}

// PoolByKey returns a pool by key (current or draining).
func (rt *Runtime) PoolByKey(key string) *pool.Pool {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return rt.pools[key]
}

// Binding implements kernel.BindingSource: what serves provider for turns
// opening now, for a session of the default tenant.
func (rt *Runtime) Binding(provider string) (kernel.Binding, bool) {
	return rt.binding(provider, "", "")
}

// binding is what serves provider for turns of session (of tenant) that
// open now. It never starts anything: a keyed pool starts when the
// runner opens the first invocation on it.
func (rt *Runtime) binding(provider, tenant, session string) (kernel.Binding, bool) {
	if b, ok := rt.builtinBind[provider]; ok {
		return b, true
	}
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	g := rt.gens[rt.current[provider]]
	if g == nil {
		return rt.downBindingLocked(provider)
	}
	key := g.poolKey(tenant, session)
	return kernel.Binding{Provider: provider, Version: g.version, Pool: key, Accepts: g.info.Accepts, Emits: g.info.Emits,
		Down: rt.downReasonLocked(g, key), Caps: g.info.Caps, Idempotent: g.info.Idempotent}, true
}

// Open implements session.Pools: it opens an invocation on the pool the
// turn's frozen binding names, even if that pool is draining after an
// upgrade, and starts a tenant's (or session's) pool on its first use.
// The runner calls it off the session loop.
func (rt *Runtime) Open(key string, req externalnode.OpenRequest, avoid []string, h externalnode.Handler) (session.Call, error) {
	if c, ok, err := rt.openBuiltin(key, req, h); ok {
		return c, err
	}
	for attempt := 0; ; attempt++ {
		p, err := rt.poolFor(key)
		if err != nil {
			return nil, err
		}
		c, err := p.Open(req, avoid, h)
		if err != nil {
			// An idle keyed pool may have been stopped between lookup and
			// open: start it again, once.
			if attempt == 0 && errors.Is(err, pool.ErrPoolClosed) && rt.PoolByKey(key) == nil {
				continue
			}
			return nil, err
		}
		return c, nil
	}
}

// SessionOptions open one session.
type SessionOptions struct {
	ID       string
	TenantID string
	Output   session.Output
	Timeline session.Timeline
	Observe  func(nodeID string, ev eventabi.Event)
	// AwaitPlayback: the output plays audio in real time and the session's
	// turns end when their audio has played (kernel.SessionConfig).
	AwaitPlayback bool
	// Gate, if set, is the session's egress fence: it checks every output
	// against the session's placement lease.
	Gate *fence.Gate
}

// OpenSession starts a kernel session bound to this runtime's pools.
func (rt *Runtime) OpenSession(o SessionOptions) (*session.Session, error) {
	next := o.Timeline
	if rt.opts.Timeline != nil {
		next = session.Tee{o.Timeline, rt.opts.Timeline}
	}
	if err := CheckTenant(o.TenantID); err != nil {
		return nil, fmt.Errorf("session %s: %w", o.ID, err)
	}
	release, err := rt.adm.admitSession(o.TenantID)
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", o.ID, err)
	}
	sb := &sessionBindings{rt: rt, next: next, tenant: o.TenantID, session: o.ID, turns: map[string]map[string]bool{}, bound: map[string]bool{},
		admit: rt.adm.forSession(o.TenantID), release: release}
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		release()
		return nil, fmt.Errorf("runtime closed: %w", kernel.ErrSessionClosed)
	}
	rt.sessions[sb] = struct{}{}
	cfg := rt.cfg
	rt.mu.Unlock()
	lease, auth, err := rt.acquireLease(o.ID, o.Gate)
	if err != nil {
		rt.forget(sb)
		return nil, err
	}
	s, err := session.Open(session.Config{
		Kernel: kernel.SessionConfig{
			SessionID: o.ID, TenantID: o.TenantID, Epoch: lease.Epoch(), Authority: auth, Graph: cfg.Graph(), Bindings: sb,
			VAD: cfg.KernelVAD(), UnknownEventPolicy: cfg.Gateway.UnknownEvents,
			AwaitPlayback: o.AwaitPlayback, Budgets: cfg.KernelBudgets(), Admission: sb.admit,
		},
		Pools: rt, Output: o.Output, Timeline: sb, Observe: o.Observe, Tick: sessionTick(cfg), Wheel: rt.wheel,
		Budgets: cfg.NodeBudget, Recording: rt.recording(cfg),
	})
	if err != nil {
		lease.Release()
		rt.forget(sb)
		return nil, err
	}
	go func() { <-s.Done(); lease.Release() }() // the session's lease ends with it
	return s, nil
}

func (rt *Runtime) forget(sb *sessionBindings) {
	rt.mu.Lock()
	delete(rt.sessions, sb)
	rt.mu.Unlock()
	if sb.release != nil {
		sb.release()
	}
	rt.kickReaper() // its session pools are idle now
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
func (rt *Runtime) StartedPids() *pool.PidLog { return &rt.pids }

// Status is a snapshot of every pool, current ones first.
func (rt *Runtime) Status() []pool.Status {
	rt.mu.RLock()
	pools := make([]*pool.Pool, 0, len(rt.pools))
	for _, p := range rt.pools {
		pools = append(pools, p)
	}
	rt.mu.RUnlock()
	out := make([]pool.Status, 0, len(pools))
	for _, p := range pools {
		out = append(out, p.Status())
	}
	out = append(out, rt.builtinStatus()...)
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// StateDir is where this run keeps sockets.
func (rt *Runtime) StateDir() *StateDir { return rt.state }

// Close stops every pool (draining and keyed ones included), the cgroup
// envelopes and removes the run's state. Safe to call twice.
func (rt *Runtime) Close() {
	rt.mu.Lock()
	if !rt.closed {
		rt.closed = true
		close(rt.stop)
	}
	rt.mu.Unlock()
	rt.halt()
	rt.starts.Wait() // a start that ends now sees closed and stops its pool
	rt.drains.Wait()
	rt.bg.Wait()
	rt.mu.Lock()
	pools := rt.pools
	rt.pools = map[string]*pool.Pool{}
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
	if rt.builtins != nil && !rt.builtins.Close(builtinClose) {
		rt.log.Warn("builtin nodes still running after close", "waited", builtinClose)
	}
	if rt.envs != nil {
		_ = rt.envs.Close()
	}
	if rt.auth != nil && rt.ownsAuth {
		_ = rt.auth.Close()
	}
	rt.wheel.Close()
	if rt.state != nil {
		_ = rt.state.Close()
	}
}

// Wheel is the runtime's one timer facility: every session's deadline
// checks and the paced feeds of serve tick on it.
func (rt *Runtime) Wheel() *session.Wheel { return rt.wheel }

// Logger is the runtime's logger, for the applications that serve on it.
func (rt *Runtime) Logger() hclog.Logger { return rt.log }
