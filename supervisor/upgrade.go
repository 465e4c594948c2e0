package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rspp/rspp/supervisor/config"
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

// replace starts np's pool, health-checks it and switches the provider to
// it. The config's provider entry is replaced by np.
func (rt *Runtime) replace(ctx context.Context, np *config.Provider) (UpgradeResult, error) {
	rt.upgradeMu.Lock()
	defer rt.upgradeMu.Unlock()
	old := rt.Pool(np.Name)
	res := UpgradeResult{Provider: np.Name, Binary: np.BinaryPath}
	if old != nil {
		res.OldKey, res.OldVersion = old.Key(), old.Info().Version
	}
	pool, err := rt.startPool(ctx, np)
	if err != nil {
		return res, fmt.Errorf("%w: new version did not start: %v", ErrUpgradeFailed, err)
	}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = pool.CheckHealth(hctx)
	cancel()
	if err != nil {
		pool.Close()
		return res, fmt.Errorf("%w: new version failed its health check: %v", ErrUpgradeFailed, err)
	}
	res.NewKey, res.NewVersion = pool.Key(), pool.Info().Version
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		pool.Close()
		return res, fmt.Errorf("%w: runtime closing", ErrUpgradeFailed)
	}
	rt.pools[pool.Key()] = pool
	rt.current[np.Name] = pool.Key()
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

// retire waits until no turn is bound to the old pool, then drains it.
func (rt *Runtime) retire(old *Pool) {
	defer rt.drains.Done()
	timeout := time.Duration(rt.Config().Runtime.DrainTimeout)
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for rt.poolHeld(old.Key()) && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-rt.stop:
			cancel()
		case <-time.After(20 * time.Millisecond):
		}
	}
	old.Drain(ctx)
	rt.mu.Lock()
	delete(rt.pools, old.Key())
	rt.mu.Unlock()
	rt.log.Info("old pool drained and stopped", "pool", old.Key())
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
		if sameProvider(op, np) {
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
		fmt.Sprint(a.ReadPaths) == fmt.Sprint(b.ReadPaths) && a.User == b.User
}
