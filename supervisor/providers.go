package supervisor

import (
	"errors"
	"fmt"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/pool"
)

// Provider lists (config: provider: [espeak, flite]) need the supervisor to
// say, at each plan freeze, which providers cannot serve right now
// (kernel.Binding.Down): a pool whose circuit is open, a tenant's pool
// key whose starts keep failing, or a provider that failed to start at
// all. A provider that failed to start is not fatal when every node that
// uses it has another provider to switch to: the runtime starts without
// it, binds its nodes to the next provider, and retries its start in the
// background every restart cooldown until it comes up.

// downProvider is a replaceable provider that failed to start.
type downProvider struct {
	err error
	at  time.Time
}

// markDown records that provider g failed to start with err and starts
// retrying it (rt.bg owns the goroutine; Close stops it).
func (rt *Runtime) markDown(g *generation, err error) {
	rt.mu.Lock()
	if rt.down == nil {
		rt.down = map[string]*downProvider{}
	}
	rt.down[g.name] = &downProvider{err: err, at: rt.opts.Clock.Now()}
	closed := rt.closed
	if !closed {
		rt.bg.Add(1)
	}
	rt.mu.Unlock()
	rt.log.Error("provider failed to start; its nodes switch to the next provider of their list", "provider", g.name, "error", err)
	if rt.opts.Events != nil {
		rt.opts.Events(pool.Event{Type: "circuit_open", Pool: g.key, At: rt.opts.Clock.Now()})
	}
	if !closed {
		go rt.retryDown(g)
	}
}

// retryDown tries a failed provider's start again after each cooldown
// (its restart policy's; 10 s by default) and installs it once it starts.
func (rt *Runtime) retryDown(g *generation) {
	defer rt.bg.Done()
	wait := g.restartPolicy().WithDefaults().Cooldown
	if wait <= 0 {
		wait = pool.DefaultRestartPolicy.Cooldown
	}
	for {
		select {
		case <-rt.stop:
			return
		case <-rt.opts.Clock.After(wait):
		}
		ng := rt.newGeneration(g.cfg)
		started, err := rt.startGeneration(rt.ctx, ng, nil)
		rt.mu.Lock()
		if rt.closed {
			rt.mu.Unlock()
			if started != nil {
				started.Close()
			}
			return
		}
		if err != nil {
			rt.down[g.name].err = err
			rt.mu.Unlock()
			rt.log.Warn("provider still fails to start", "provider", g.name, "error", err)
			continue
		}
		delete(rt.down, g.name)
		rt.install(ng, started)
		rt.mu.Unlock()
		rt.log.Info("provider started after all; its nodes bind it again", "provider", g.name, "version", ng.version)
		if rt.opts.Events != nil {
			rt.opts.Events(pool.Event{Type: "circuit_closed", Pool: ng.key, At: rt.opts.Clock.Now()})
		}
		return
	}
}

// downBindingLocked is the binding of a provider that failed to start
// (ok false when it did not). rt.mu held.
func (rt *Runtime) downBindingLocked(provider string) (kernel.Binding, bool) {
	d := rt.down[provider]
	if d == nil {
		return kernel.Binding{}, false
	}
	return kernel.Binding{Provider: provider, Down: "failed to start: " + d.err.Error()}, true
}

// downReasonLocked says why the pool with key of generation g cannot
// serve now ("" when it can). rt.mu held (read).
func (rt *Runtime) downReasonLocked(g *generation, key string) string {
	if p := rt.pools[key]; p != nil {
		if err := p.CircuitErr(); err != nil {
			return err.Error()
		}
		return ""
	}
	if g.keyed() {
		if tr := rt.startFails[key]; tr != nil && tr.Open() {
			if at := tr.HalfOpenAt(); at.IsZero() || rt.opts.Clock.Now().Before(at) {
				return "provider circuit open: its pool does not start"
			}
		}
	}
	return ""
}

// unservedNode fails Start when a node has no provider that started: a
// provider list makes a down provider bearable, not a node with none.
func (rt *Runtime) unservedNode() error {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	for _, n := range rt.cfg.Pipeline.Nodes {
		names := n.Providers
		if len(names) == 0 {
			names = []string{n.Provider}
		}
		var why []error
		for _, name := range names {
			if d := rt.down[name]; d != nil {
				why = append(why, fmt.Errorf("%s: %w", name, d.err))
			}
		}
		if len(why) == len(names) {
			return fmt.Errorf("node %s: no provider of its list started: %w", n.ID, errors.Join(why...))
		}
	}
	return nil
}

// checkCapabilities is the plan resolver's start-up check: every provider
// a node may bind must declare it can serve the node's requirements (the
// runtime's 16 kHz audio for stt and tts, and the node's requires block).
// The error is a config error naming both the node and the provider.
func (rt *Runtime) checkCapabilities() error {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	graph := rt.cfg.Graph()
	for i, n := range graph.Nodes {
		names := n.Providers
		if len(names) == 0 {
			names = []string{n.Provider}
		}
		if n.Fallback != "" {
			names = append(names, n.Fallback)
		}
		for _, name := range names {
			g := rt.gens[rt.current[name]]
			if g == nil {
				continue // down: checked when it starts
			}
			if err := g.info.Caps.Serves(n.Requires); err != nil {
				return &config.Error{File: rt.cfg.Path, Key: fmt.Sprintf("pipeline.nodes[%d].provider", i),
					Msg: fmt.Sprintf("provider %s (%s %s) cannot serve node %s: %v", name, g.info.Name, g.version, n.ID, err)}
			}
		}
	}
	return nil
}
