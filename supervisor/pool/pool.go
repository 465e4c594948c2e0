package pool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel"
)

// ErrPoolClosed: the pool was stopped (or is being drained after an
// upgrade). It unwraps to kernel.ErrNodeUnavailable.
var ErrPoolClosed = fmt.Errorf("pool closed: %w", kernel.ErrNodeUnavailable)

// Config says how to run one provider version's instances.
type Config struct {
	Key      string // pool key, e.g. "espeak#1"; the binding's Pool
	Provider string // provider name from the config
	Kind     string // configured kind: a node declaring another fails its start (KindMismatchError); empty: unchecked
	NodeID   string // sent to Configure
	// Tenant and Session say whom a keyed pool serves (status only; empty
	// for a shared pool).
	Tenant  string
	Session string
	Launch  Launch
	// Warm is how many ready instances the pool keeps (default 1). With 2
	// or more a crash leaves a ready standby while the replacement starts.
	Warm int
	// Max, when above Warm, lets the pool grow with its load up to Max
	// instances and shrink back to Warm by draining (poolscale.go).
	Max        int
	Scale      ScalePolicy
	ConfigDir  string
	ConfigJSON []byte
	Restart    RestartPolicy
	// KillGrace is how long a cancelled invocation may take to end before
	// its instance is killed as hung (default 2s).
	KillGrace time.Duration
	// AcquireWait bounds how long Acquire waits for a ready instance while
	// a replacement starts (default 5s).
	AcquireWait time.Duration
	// HealthInterval is how often idle-or-busy instances are health-checked
	// (default 2s; negative: never). HealthFailures consecutive failures of
	// HealthTimeout each kill the instance as hung (defaults 2 and 2s).
	HealthInterval time.Duration
	HealthTimeout  time.Duration
	HealthFailures int
	Clock          Clock
	Seed           uint64 // restart jitter
	Logger         hclog.Logger
	// Events, if set, is told about instance lifecycle changes. It is
	// called from pool goroutines and must not block.
	Events func(Event)
	// Pids, if set, records every process the pool starts.
	Pids *PidLog
}

func (c *Config) defaults() {
	if c.Warm <= 0 {
		c.Warm = 1
	}
	if c.Max < c.Warm {
		c.Max = c.Warm
	}
	c.Scale.defaults()
	if c.KillGrace <= 0 {
		c.KillGrace = 2 * time.Second
	}
	if c.AcquireWait <= 0 {
		c.AcquireWait = 5 * time.Second
	}
	if c.HealthInterval == 0 {
		c.HealthInterval = 2 * time.Second
	}
	if c.HealthTimeout <= 0 {
		c.HealthTimeout = 2 * time.Second
	}
	if c.HealthFailures <= 0 {
		c.HealthFailures = 2
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.NodeID == "" {
		c.NodeID = c.Provider
	}
}

// Event is one lifecycle change of a pool.
type Event struct {
	Pool     string
	Type     string // "ready", "crashed", "restart_scheduled", "circuit_open", "circuit_closed", "stopped"
	Instance string
	Pid      int
	Crash    *CrashError   // for "crashed"
	Delay    time.Duration // for "restart_scheduled"
	At       time.Time
}

// Pool is one provider version's set of instances: it keeps Warm of them
// ready, replaces crashed ones under its restart policy and hands out the
// least loaded ready one.
type Pool struct {
	cfg    Config
	log    hclog.Logger
	ctx    context.Context // cancelled by Close: aborts starts in progress
	cancel context.CancelFunc

	mu        sync.Mutex
	insts     []*Instance // starting, ready or draining
	info      externalnode.Info
	seq       int
	pending   int   // crashes the supervise loop has not accounted for yet
	circuit   error // non-nil while the circuit is open
	readyWake chan struct{}
	closed    bool
	crashes   map[CrashKind]int
	restarts  int
	target    int // instances the pool keeps: Warm..Max (poolscale.go)
	waiting   int // Acquire calls waiting for a ready instance
	scaleUps  int
	scaleDown int

	stop      chan struct{}
	kick      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeDone chan struct{}
}

// Start starts cfg.Warm instances and waits until each is configured.
// On any failure it stops what it started and says which provider failed.
func Start(ctx context.Context, cfg Config) (*Pool, error) {
	cfg.defaults()
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &Pool{
		cfg: cfg, log: cfg.Logger.Named(cfg.Key), ctx: pctx, cancel: cancel,
		readyWake: make(chan struct{}), crashes: map[CrashKind]int{},
		stop: make(chan struct{}), kick: make(chan struct{}, 1), closeDone: make(chan struct{}),
		target: cfg.Warm,
	}
	for range cfg.Warm {
		inst, err := p.startInstance(ctx, false)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.adopt(inst)
	}
	p.wg.Add(1)
	go p.supervise()
	if cfg.HealthInterval > 0 {
		p.wg.Add(1)
		go p.healthLoop()
	}
	if cfg.Max > cfg.Warm {
		p.wg.Add(1)
		go p.autoscale()
	}
	return p, nil
}

// Key is the pool key.
func (p *Pool) Key() string { return p.cfg.Key }

func (p *Pool) emit(ev Event) {
	ev.Pool = p.cfg.Key
	ev.At = p.cfg.Clock.Now()
	if p.cfg.Events != nil {
		p.cfg.Events(ev)
	}
}

// startInstance launches one process and configures it. A failure is a
// *CrashError of kind handshake (or what the process died of).
func (p *Pool) startInstance(ctx context.Context, replacement bool) (*Instance, error) {
	p.mu.Lock()
	p.seq++
	name := fmt.Sprintf("%s.%d", p.cfg.Key, p.seq)
	p.mu.Unlock()
	node, env, scratch, err := p.cfg.Launch.start(ctx, name, replacement)
	if err != nil {
		return nil, &CrashError{Provider: p.cfg.Provider, Instance: name, Kind: CrashHandshake, Err: err}
	}
	inst := &Instance{name: name, provider: p.cfg.Provider, node: node, env: env, scratch: scratch, started: time.Now()}
	if p.cfg.Pids != nil {
		p.cfg.Pids.add(node.Pid())
	}
	if err := checkKind(p.cfg.Provider, p.cfg.Kind, node.Info()); err != nil {
		inst.release()
		return nil, &CrashError{Provider: p.cfg.Provider, Instance: name, Pid: node.Pid(), Kind: CrashHandshake, Err: err}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := node.Configure(cctx, externalnode.Config{NodeID: p.cfg.NodeID, Dir: p.cfg.ConfigDir, Raw: p.cfg.ConfigJSON}); err != nil {
		inst.release()
		return nil, &CrashError{Provider: p.cfg.Provider, Instance: name, Pid: node.Pid(), Kind: configKind(err), Err: err}
	}
	if err := inst.move(Ready); err != nil {
		inst.release()
		return nil, err
	}
	return inst, nil
}

// adopt adds a ready instance and watches it.
func (p *Pool) adopt(inst *Instance) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = inst.move(Stopped)
		inst.release()
		return
	}
	p.insts = append(p.insts, inst)
	p.info = inst.node.Info()
	close(p.readyWake)
	p.readyWake = make(chan struct{})
	p.wg.Add(1)
	p.mu.Unlock()
	p.emit(Event{Type: "ready", Instance: inst.name, Pid: inst.Pid()})
	go p.watch(inst)
}

// watch turns an instance's death into a typed crash and asks for a
// replacement.
func (p *Pool) watch(inst *Instance) {
	defer p.wg.Done()
	select {
	case <-inst.node.Done():
	case <-p.stop:
		return
	}
	c := inst.died()
	p.mu.Lock()
	p.insts = slices.DeleteFunc(p.insts, func(x *Instance) bool { return x == inst })
	if c != nil {
		p.pending++
		p.crashes[c.Kind]++
	}
	p.mu.Unlock()
	if c != nil && c.Kind == CrashFlood {
		inst.kill() // it ignores cancels: no graceful stop
	}
	if c != nil {
		p.log.Warn("instance crashed", "instance", inst.name, "kind", c.Kind, "error", c.Err)
		p.emit(Event{Type: "crashed", Instance: inst.name, Pid: c.Pid, Crash: c})
		p.poke()
	}
	inst.release() // reap, socket dir, envelope: after the replacement was asked for
}

func (p *Pool) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// supervise owns restarts: it applies the restart policy to crashes and
// keeps Warm instances ready, or opens the circuit.
func (p *Pool) supervise() {
	defer p.wg.Done()
	clock := p.cfg.Clock
	tr := NewRestartTracker(p.cfg.Restart, clock, p.cfg.Seed)
	var (
		timer     <-chan time.Time
		nextStart time.Time
	)
	for {
		select {
		case <-p.stop:
			return
		case <-p.kick:
		case <-timer:
		}
		timer = nil
		p.mu.Lock()
		n := p.pending
		p.pending = 0
		p.mu.Unlock()
		for range n {
			d, err := tr.Crashed()
			switch {
			case err != nil && !errors.Is(p.CircuitErr(), ErrCircuitOpen):
				p.setCircuit(err)
				p.log.Error("circuit open: provider marked unavailable", "error", err)
				p.emit(Event{Type: "circuit_open"})
			case err == nil:
				if t := clock.Now().Add(d); t.After(nextStart) {
					nextStart = t
				}
				p.emit(Event{Type: "restart_scheduled", Delay: d})
			}
		}
		now := clock.Now()
		if tr.Open() {
			at := tr.HalfOpenAt()
			if at.IsZero() || p.deficit() == 0 {
				continue
			}
			if now.Before(at) {
				timer = clock.After(at.Sub(now))
				continue
			}
			inst, err := p.startInstance(p.ctx, true)
			tr.HalfOpenResult(err)
			if err != nil {
				timer = clock.After(tr.HalfOpenAt().Sub(clock.Now()))
				continue
			}
			p.setCircuit(nil)
			p.emit(Event{Type: "circuit_closed"})
			p.restarted(inst)
			continue
		}
		if p.deficit() == 0 {
			continue
		}
		if now.Before(nextStart) {
			timer = clock.After(nextStart.Sub(now))
			continue
		}
		inst, err := p.startInstance(p.ctx, true)
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			p.log.Error("restart failed", "error", err)
			p.mu.Lock()
			p.pending++
			p.crashes[CrashHandshake]++
			p.mu.Unlock()
			p.poke()
			continue
		}
		p.restarted(inst)
	}
}

func (p *Pool) restarted(inst *Instance) {
	p.mu.Lock()
	p.restarts++
	p.mu.Unlock()
	p.adopt(inst)
	p.poke() // more may be missing
}

// deficit is how many instances are missing to the pool's target
// (draining ones do not count: they are on their way out).
func (p *Pool) deficit() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0
	}
	n := 0
	for _, inst := range p.insts {
		if inst.State() != Draining {
			n++
		}
	}
	return max(p.target-n, 0)
}

// CircuitErr is why the pool's circuit is open (nil while closed).
func (p *Pool) CircuitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.circuit
}

func (p *Pool) setCircuit(err error) {
	p.mu.Lock()
	p.circuit = err
	close(p.readyWake) // waiters re-check: fail fast or take the new instance
	p.readyWake = make(chan struct{})
	p.mu.Unlock()
}

// Acquire returns the least loaded ready instance whose name is not in
// avoid (instances an earlier attempt of the same invocation failed on).
// While none is ready and a replacement is on its way it waits up to
// AcquireWait for it; an avoided live instance is the last resort.
func (p *Pool) Acquire(avoid []string) (*Instance, error) {
	inst, err := p.acquire(avoid)
	if inst != nil {
		inst.reserved.Add(-1)
	}
	return inst, err
}

// acquire is Acquire that reserves the instance it returns (counted as
// load until the caller's open has reached it and calls
// inst.reserved.Add(-1)): concurrent acquires after a crash or at a burst
// spread over the instances instead of all taking the one that looked
// idle before any of their invocations had opened.
func (p *Pool) acquire(avoid []string) (*Instance, error) {
	deadline := p.cfg.Clock.Now().Add(p.cfg.AcquireWait)
	waited := false
	defer func() {
		if waited {
			p.mu.Lock()
			p.waiting--
			p.mu.Unlock()
		}
	}()
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, fmt.Errorf("provider %s (%s): %w", p.cfg.Provider, p.cfg.Key, ErrPoolClosed)
		}
		best, fallback := p.pickLocked(avoid)
		circuit, wake := p.circuit, p.readyWake
		coming := p.liveLocked() < p.target // a replacement is on its way
		switch {
		case best != nil:
			best.reserved.Add(1)
		case fallback != nil && !coming:
			fallback.reserved.Add(1)
		case !waited:
			waited = true
			p.waiting++ // queued: the autoscaler counts it as load
		}
		p.mu.Unlock()
		if best != nil {
			return best, nil
		}
		if fallback != nil && !coming {
			return fallback, nil // nothing else will be ready: the avoided one is all there is
		}
		if circuit != nil {
			return nil, fmt.Errorf("provider %s: %w", p.cfg.Provider, circuit)
		}
		left := deadline.Sub(p.cfg.Clock.Now())
		if left <= 0 {
			if fallback != nil {
				fallback.reserved.Add(1)
				return fallback, nil
			}
			return nil, fmt.Errorf("provider %s: no ready instance within %s: %w", p.cfg.Provider, p.cfg.AcquireWait, kernel.ErrNodeUnavailable)
		}
		select {
		case <-wake:
		case <-p.cfg.Clock.After(left):
		case <-p.stop:
		}
	}
}

// liveLocked counts instances that are not known dead.
func (p *Pool) liveLocked() int {
	n := 0
	for _, inst := range p.insts {
		if inst.node.Err() == nil && !inst.isHung() {
			n++
		}
	}
	return n
}

func (p *Pool) pickLocked(avoid []string) (best, fallback *Instance) {
	bestLoad, fbLoad := 0, 0
	for _, inst := range p.insts {
		if inst.State() != Ready || inst.node.Err() != nil || inst.isHung() {
			continue // dead, or being killed but not yet seen dead
		}
		load := inst.load()
		if slices.Contains(avoid, inst.name) {
			if fallback == nil || load < fbLoad {
				fallback, fbLoad = inst, load
			}
			continue
		}
		if best == nil || load < bestLoad {
			best, bestLoad = inst, load
		}
	}
	return best, fallback
}

// killHung kills an instance that stopped answering; its death is then a
// crash of kind hung. The process is SIGKILLed directly (with its group
// and envelope): a graceful stop would wait on the hung plugin.
func (p *Pool) killHung(inst *Instance, why string) {
	if !inst.markHung() {
		return
	}
	p.log.Warn("killing hung instance", "instance", inst.name, "why", why)
	inst.kill()
}

// healthLoop asks every ready instance whether it serves; one that fails
// HealthFailures checks in a row is killed as hung (a SIGSTOPped plugin
// with no invocation open would otherwise never be noticed).
func (p *Pool) healthLoop() {
	defer p.wg.Done()
	fails := map[*Instance]int{}
	for {
		select {
		case <-p.stop:
			return
		case <-p.cfg.Clock.After(p.cfg.HealthInterval):
		}
		p.mu.Lock()
		insts := slices.Clone(p.insts)
		p.mu.Unlock()
		for _, inst := range insts {
			if inst.State() != Ready {
				delete(fails, inst)
				continue
			}
			ctx, cancel := context.WithTimeout(p.ctx, p.cfg.HealthTimeout)
			_, err := inst.node.Health(ctx)
			cancel()
			if err == nil || inst.node.Err() != nil || p.ctx.Err() != nil {
				delete(fails, inst)
				continue
			}
			if fails[inst]++; fails[inst] >= p.cfg.HealthFailures {
				delete(fails, inst)
				p.killHung(inst, "health check: "+err.Error())
			}
		}
		for inst := range fails {
			if !slices.Contains(insts, inst) {
				delete(fails, inst)
			}
		}
	}
}
