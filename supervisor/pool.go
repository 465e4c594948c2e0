package supervisor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel"
)

// PoolConfig says how to run one provider's instances.
type PoolConfig struct {
	Provider     string // provider name from the config
	NodeID       string // sent to Configure
	Binary       string
	Args         []string
	Env          []string
	Checksum     []byte
	Instances    int
	StartTimeout time.Duration
	ConfigDir    string
	ConfigJSON   []byte
	SocketDir    string
	Runner       externalnode.RunnerFunc // nil: plain process
	SkipHostEnv  bool
	Logger       hclog.Logger
}

// Pool is a provider's set of running instances.
type Pool struct {
	cfg PoolConfig
	log hclog.Logger

	mu        sync.Mutex
	instances []*externalnode.Instance
	info      externalnode.Info
	closed    bool
	seq       int
	wg        sync.WaitGroup
	stop      chan struct{}
}

// StartPool starts cfg.Instances instances and waits until each is
// configured. On any failure it stops what it started and says which.
func StartPool(ctx context.Context, cfg PoolConfig) (*Pool, error) {
	if cfg.Instances <= 0 {
		cfg.Instances = 1
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	p := &Pool{cfg: cfg, log: log.Named(cfg.Provider), stop: make(chan struct{})}
	for range cfg.Instances {
		inst, err := p.startInstance(ctx)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.adopt(inst)
	}
	return p, nil
}

func (p *Pool) startInstance(ctx context.Context) (*externalnode.Instance, error) {
	p.mu.Lock()
	p.seq++
	name := fmt.Sprintf("%s#%d", p.cfg.Provider, p.seq)
	p.mu.Unlock()
	inst, err := externalnode.Start(ctx, externalnode.StartConfig{
		Name: name, Binary: p.cfg.Binary, Args: p.cfg.Args, Env: p.cfg.Env, Checksum: p.cfg.Checksum,
		Runner: p.cfg.Runner, SkipHostEnv: p.cfg.SkipHostEnv, SocketDir: p.cfg.SocketDir,
		StartTimeout: p.cfg.StartTimeout, Logger: p.log,
	})
	if err != nil {
		return nil, fmt.Errorf("provider %s: start %s: %w", p.cfg.Provider, p.cfg.Binary, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := inst.Configure(cctx, externalnode.Config{NodeID: p.cfg.NodeID, Dir: p.cfg.ConfigDir, Raw: p.cfg.ConfigJSON}); err != nil {
		inst.Kill()
		return nil, fmt.Errorf("provider %s: %w", p.cfg.Provider, err)
	}
	return inst, nil
}

// adopt adds a ready instance and watches it.
func (p *Pool) adopt(inst *externalnode.Instance) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		go inst.Kill()
		return
	}
	p.instances = append(p.instances, inst)
	p.info = inst.Info()
	p.wg.Add(1)
	go p.watch(inst)
}

// watch replaces an instance that died, with a short backoff between tries.
func (p *Pool) watch(inst *externalnode.Instance) {
	defer p.wg.Done()
	select {
	case <-inst.Done():
	case <-p.stop:
		return
	}
	p.log.Warn("instance died", "instance", inst.Name(), "error", inst.Err())
	inst.Kill() // reap and remove its socket dir
	p.remove(inst)
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		next, err := p.startInstance(context.Background())
		if err == nil {
			p.adopt(next)
			return
		}
		p.log.Error("restart failed", "error", err)
		select {
		case <-p.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (p *Pool) remove(inst *externalnode.Instance) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.instances {
		if x == inst {
			p.instances = append(p.instances[:i], p.instances[i+1:]...)
			return
		}
	}
}

// Acquire returns the live instance with the fewest open invocations.
func (p *Pool) Acquire() (*externalnode.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best *externalnode.Instance
	bestLoad := 0
	for _, inst := range p.instances {
		if inst.Err() != nil {
			continue
		}
		if load := inst.OpenInvocations(); best == nil || load < bestLoad {
			best, bestLoad = inst, load
		}
	}
	if best == nil {
		return nil, fmt.Errorf("provider %s: no live instance: %w", p.cfg.Provider, kernel.ErrNodeUnavailable)
	}
	return best, nil
}

// Info is what the pool's plugin reported (name, version).
func (p *Pool) Info() externalnode.Info {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.info
}

// Pids lists the pool's live plugin process ids.
func (p *Pool) Pids() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var pids []int
	for _, inst := range p.instances {
		pids = append(pids, inst.Pid())
	}
	return pids
}

// Close stops every instance and waits for the pool's goroutines. Safe to
// call twice.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return
	}
	p.closed = true
	close(p.stop)
	insts := p.instances
	p.instances = nil
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, inst := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inst.Kill()
		}()
	}
	wg.Wait()
	p.wg.Wait()
}
