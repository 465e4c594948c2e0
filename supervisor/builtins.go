package supervisor

import (
	"errors"
	"fmt"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/supervisor/builtin"
	"github.com/rspp/rspp/supervisor/pool"
	"github.com/rspp/rspp/supervisor/session"
)

// Builtin providers (config builtin: NAME) run inside this process on
// the runtime's builtin.Host: each binds to the pool key
// builtin.PoolKey(provider), which Open routes to the host. No process,
// envelope or pool starts for one, and none is restarted, upgraded or
// reloaded: its code is the supervisor's own, so a new version of it is
// a new rspp. Upgrade and Reload refuse it with ErrBuiltinFixed.

// ErrBuiltinFixed: a builtin provider cannot be upgraded or reloaded.
var ErrBuiltinFixed = errors.New("builtin provider: runs inside rspp; restart rspp to change it")

// builtinClose bounds how long Close waits for builtin nodes to end.
const builtinClose = 5 * time.Second

// startBuiltins registers every builtin provider of the config on a new
// host and freezes their bindings (called by Start, before any session).
func (rt *Runtime) startBuiltins() error {
	rt.builtins = builtin.NewHost(builtin.Timeouts{}, 0)
	rt.builtinBind = map[string]kernel.Binding{}
	for _, name := range rt.cfg.ProviderNames() {
		p := rt.cfg.Providers[name]
		if p.Builtin == "" {
			continue
		}
		b, err := builtin.Lookup(p.Builtin)
		if err != nil {
			return fmt.Errorf("provider %s: %w", name, err)
		}
		f, err := b.New(externalnode.Config{NodeID: name, Dir: rt.cfg.Dir, Raw: p.ConfigJSON})
		if err != nil {
			return fmt.Errorf("provider %s: %w", name, err)
		}
		key := builtin.PoolKey(name)
		if err := rt.builtins.Register(key, b, f); err != nil {
			return fmt.Errorf("provider %s: %w", name, err)
		}
		rt.builtinBind[name] = kernel.Binding{Provider: name, Version: b.Version, Pool: key, Accepts: b.Accepts, Emits: b.Emits}
		rt.log.Info("builtin provider serves in process", "provider", name, "builtin", b.Name, "pool", key)
	}
	return nil
}

// openBuiltin opens an invocation on a builtin pool (ok false when key is
// not one).
func (rt *Runtime) openBuiltin(key string, req externalnode.OpenRequest, h externalnode.Handler) (session.Call, bool, error) {
	if rt.builtins == nil || !rt.builtins.Serves(key) {
		return nil, false, nil
	}
	c, err := rt.builtins.Open(key, req, h)
	if err != nil {
		return nil, true, err
	}
	return c, true, nil
}

// builtinStatus lists the builtin pools: one in-process "instance" each.
func (rt *Runtime) builtinStatus() []pool.Status {
	var out []pool.Status
	for _, name := range rt.cfg.ProviderNames() { // stable order, like the pools'
		b, ok := rt.builtinBind[name]
		if !ok {
			continue
		}
		open, opened, _ := rt.builtins.Load(b.Pool)
		out = append(out, pool.Status{Key: b.Pool, Provider: name, Version: b.Version, Builtin: rt.cfg.Providers[name].Builtin,
			Instances: map[string]string{"in-process": "builtin"}, Served: map[string]int64{"in-process": opened},
			Scale: pool.ScaleStatus{Min: 1, Max: 1, Target: 1, Load: open}})
	}
	return out
}

// refuseBuiltin is Upgrade's and Reload's answer for a builtin provider.
func refuseBuiltin(provider string) error {
	return fmt.Errorf("%w: provider %s: %w", ErrUpgradeFailed, provider, ErrBuiltinFixed)
}
