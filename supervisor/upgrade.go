package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/pool"
)

// ErrUpgradeFailed: the new version did not start or failed its health
// check; the old version keeps serving.
var ErrUpgradeFailed = errors.New("upgrade failed: old version kept")

// UpgradeResult says what an upgrade switched.
type UpgradeResult struct {
	Provider   string `json:"provider"`
	OldKey     string `json:"old_pool"`
	OldVersion string `json:"old_version"`
	NewKey     string `json:"new_pool"`
	NewVersion string `json:"new_version"`
	Binary     string `json:"binary"`
}

// Upgrade hot-swaps a provider's binary: the new version's pool starts
// beside the old one and is health-checked; turns that open from then on
// are bound to it (a turn already open keeps its frozen binding and the
// old pool serves it); the old pool drains in the background and stops
// once no turn is bound to it (or runtime.drain_timeout passed). If the
// new pool fails to start or its health check, it is stopped, the old one
// stays, and the error says why.
func (rt *Runtime) Upgrade(ctx context.Context, provider, binary string) (UpgradeResult, error) {
	rt.mu.RLock()
	p, ok := rt.cfg.Providers[provider]
	rt.mu.RUnlock()
	if !ok {
		return UpgradeResult{}, fmt.Errorf("%w: unknown provider %q", ErrUpgradeFailed, provider)
	}
	if p.Builtin != "" {
		return UpgradeResult{}, refuseBuiltin(provider)
	}
	np := *p
	abs, err := filepath.Abs(binary)
	if err != nil {
		return UpgradeResult{}, fmt.Errorf("%w: %v", ErrUpgradeFailed, err)
	}
	if st, err := os.Stat(abs); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return UpgradeResult{}, fmt.Errorf("%w: %s is not an executable file", ErrUpgradeFailed, abs)
	}
	np.Binary, np.BinaryPath, np.SHA256, np.Checksum = abs, abs, "", nil
	return rt.replace(ctx, &np)
}

// replace starts np's generation (its shared pool, or a probe of a tenant
// provider's binary), health-checks it and switches the provider to it.
// The config's provider entry is replaced by np. A tenant provider's new
// pools start per tenant on first use; the old generation's tenant pools
// serve the turns already bound to them and are drained with it.
func (rt *Runtime) replace(ctx context.Context, np *config.Provider) (UpgradeResult, error) {
	rt.upgradeMu.Lock()
	defer rt.upgradeMu.Unlock()
	rt.mu.RLock()
	old := rt.gens[rt.current[np.Name]]
	rt.mu.RUnlock()
	res := UpgradeResult{Provider: np.Name, Binary: np.BinaryPath}
	if old != nil {
		res.OldKey, res.OldVersion = old.key, old.version
	}
	check := func(pool *pool.Pool) error {
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return pool.CheckHealth(hctx)
	}
	g := rt.newGeneration(np)
	pool, err := rt.startGeneration(ctx, g, check)
	var ce *checkError
	switch {
	case errors.As(err, &ce):
		return res, fmt.Errorf("%w: new version failed its health check: %v", ErrUpgradeFailed, ce.err)
	case err != nil:
		return res, fmt.Errorf("%w: new version did not start: %v", ErrUpgradeFailed, err)
	}
	res.NewKey, res.NewVersion = g.key, g.version
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		if pool != nil {
			pool.Close()
		}
		return res, fmt.Errorf("%w: runtime closing", ErrUpgradeFailed)
	}
	rt.install(g, pool)
	cfg := *rt.cfg
	cfg.Providers = make(map[string]*config.Provider, len(rt.cfg.Providers))
	for k, v := range rt.cfg.Providers {
		cfg.Providers[k] = v
	}
	cfg.Providers[np.Name] = np
	rt.cfg = &cfg
	if old != nil {
		rt.drains.Add(1)
	}
	rt.mu.Unlock()
	rt.log.Info("provider upgraded", "provider", np.Name, "from", res.OldVersion, "to", res.NewVersion, "pool", res.NewKey)
	if old != nil {
		go rt.retire(old)
	}
	return res, nil
}

// retire waits until no turn is bound to a pool of the old generation,
// then drains its pools (the shared one or every tenant's).
func (rt *Runtime) retire(old *generation) {
	defer rt.drains.Done()
	ctx, cancel := rt.retireCtx()
	defer cancel()
	for rt.poolHeld(old.key) && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-rt.stop:
			cancel()
		case <-time.After(20 * time.Millisecond):
		}
	}
	rt.mu.Lock()
	old.retired = true // no keyed pool of it starts from now on
	var pools []*pool.Pool
	for key, p := range rt.pools {
		if key == old.key || strings.HasPrefix(key, old.key+"/") {
			pools = append(pools, p)
		}
	}
	rt.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Drain(ctx)
		}()
	}
	wg.Wait()
	rt.mu.Lock()
	for _, p := range pools {
		delete(rt.pools, p.Key())
		delete(rt.idleSince, p.Key())
	}
	delete(rt.gens, old.key)
	rt.mu.Unlock()
	rt.log.Info("old generation drained and stopped", "generation", old.key, "pools", len(pools))
}

// Reload re-reads the config file (SIGHUP) and hot-upgrades every provider
// whose binary, arguments, checksum, config block, instance count or
// limits changed. Pipeline and kernel settings are not reloaded: they
// need a restart, and the result says so.
func (rt *Runtime) Reload(ctx context.Context) ([]UpgradeResult, error) {
	rt.mu.RLock()
	path, cur := rt.cfg.Path, rt.cfg
	rt.mu.RUnlock()
	next, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	var (
		out  []UpgradeResult
		errs []error
	)
	for _, name := range next.ProviderNames() {
		np, op := next.Providers[name], cur.Providers[name]
		if op == nil {
			errs = append(errs, fmt.Errorf("provider %s: new providers need a restart", name))
			continue
		}
		if sameProvider(op, np) && op.Builtin == np.Builtin {
			continue
		}
		if op.Builtin != "" || np.Builtin != "" {
			errs = append(errs, refuseBuiltin(name))
			continue
		}
		res, err := rt.replace(ctx, np)
		if err != nil {
			errs = append(errs, fmt.Errorf("provider %s: %w", name, err))
			continue
		}
		out = append(out, res)
	}
	return out, errors.Join(errs...)
}

func sameProvider(a, b *config.Provider) bool {
	return a.BinaryPath == b.BinaryPath && fmt.Sprint(a.Args) == fmt.Sprint(b.Args) &&
		string(a.Checksum) == string(b.Checksum) && string(a.ConfigJSON) == string(b.ConfigJSON) &&
		a.Instances == b.Instances && a.Limits == b.Limits && a.Profile == b.Profile && a.Restart == b.Restart &&
		a.Share == b.Share && a.IdleTimeout == b.IdleTimeout && a.Tenant == b.Tenant &&
		fmt.Sprint(a.ReadPaths) == fmt.Sprint(b.ReadPaths) && a.User == b.User
}
