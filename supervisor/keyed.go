package supervisor

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/supervisor/config"
	"github.com/rspp/rspp/supervisor/pool"
)

// ErrBadTenant: a session's tenant id is not a usable name. Tenant ids end
// up in pool keys, instance names, cgroup names and logs.
var ErrBadTenant = errors.New("bad tenant id")

var tenantName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// CheckTenant says whether id is a valid tenant id ("" is the default
// tenant of sessions that name none).
func CheckTenant(id string) error {
	if id == "" || tenantName.MatchString(id) {
		return nil
	}
	return fmt.Errorf("%w %q: want 1-64 of A-Z a-z 0-9 _ . - starting with a letter or digit", ErrBadTenant, id)
}

// defaultTenant stands for "no tenant" in pool keys; CheckTenant never
// accepts it as a real id.
const defaultTenant = "_"

// generation is one started version of a provider (its pool key prefix
// "name#N"). A trusted provider's generation has one shared pool whose key
// is the generation key. A tenant provider's generation has pools keyed by
// tenant ("name#N/tenant=acme") or by session
// ("name#N/tenant=acme/session=s-1"), each started on first use by the
// runner's asynchronous open and stopped when idle: instances are never
// shared across tenants, and each pool has its own restart intensity and
// circuit, so one tenant's crash loop never opens another's circuit.
type generation struct {
	name    string
	key     string
	n       int
	cfg     *config.Provider
	share   string // "" (one shared pool), "tenant" or "session"
	version string
	info    externalnode.Info // what its binary said it is (Describe)
	retired bool              // being drained after an upgrade: no keyed pool starts any more
}

// scope is whom a pool of a generation serves.
type scope struct {
	tenant  string // "" for the default tenant
	session string // share: session only
	probe   bool   // the start-up check of a tenant provider's binary
}

func (g *generation) keyed() bool { return g.share != "" }

// poolKey is the key of the pool serving a session of tenant.
func (g *generation) poolKey(tenant, session string) string {
	if !g.keyed() {
		return g.key
	}
	if tenant == "" {
		tenant = defaultTenant
	}
	k := g.key + "/tenant=" + tenant
	if g.share == "session" {
		k += "/session=" + session
	}
	return k
}

// parse reads a keyed pool key of this generation back into its scope.
func (g *generation) parse(key string) (scope, bool) {
	rest, ok := strings.CutPrefix(key, g.key+"/tenant=")
	if !ok || !g.keyed() {
		return scope{}, false
	}
	tenant, session, hasSession := strings.Cut(rest, "/session=")
	if hasSession != (g.share == "session") || tenant == "" {
		return scope{}, false
	}
	if tenant == defaultTenant {
		tenant = ""
	}
	return scope{tenant: tenant, session: session}, true
}

// idleTimeout is how long a keyed pool may sit unused before it stops.
func (g *generation) idleTimeout() time.Duration {
	if g.share == "session" {
		return 0 // its session is gone: nobody else can use it
	}
	if d := time.Duration(g.cfg.IdleTimeout); d > 0 {
		return d
	}
	return 30 * time.Second
}

// keyedGenLocked finds the generation and scope of a keyed pool key.
func (rt *Runtime) keyedGenLocked(key string) (*generation, scope) {
	for _, g := range rt.gens {
		if sc, ok := g.parse(key); ok {
			return g, sc
		}
	}
	return nil, scope{}
}

// poolStart is one keyed pool start in progress; opens of the same key
// wait for it instead of starting their own.
type poolStart struct {
	done chan struct{}
	pool *pool.Pool
	err  error
}

// poolFor returns the pool with key, starting a keyed pool on first use.
// It blocks while the pool starts: callers are the runner's asynchronous
// opens, never a session loop. Repeated start failures of one key open a
// circuit for that key alone (the provider's restart policy).
func (rt *Runtime) poolFor(key string) (*pool.Pool, error) {
	rt.mu.RLock()
	p := rt.pools[key]
	rt.mu.RUnlock()
	if p != nil {
		return p, nil // the common case: a shared or running keyed pool
	}
	for {
		rt.mu.Lock()
		if p := rt.pools[key]; p != nil {
			rt.mu.Unlock()
			return p, nil
		}
		if rt.closed {
			rt.mu.Unlock()
			return nil, fmt.Errorf("pool %s: runtime closing: %w", key, pool.ErrPoolClosed)
		}
		g, sc := rt.keyedGenLocked(key)
		if g == nil {
			rt.mu.Unlock()
			return nil, fmt.Errorf("no pool %q: %w", key, kernel.ErrNodeUnavailable)
		}
		if g.retired {
			rt.mu.Unlock()
			return nil, fmt.Errorf("pool %s: superseded by an upgrade: %w", key, pool.ErrPoolClosed)
		}
		if st := rt.starting[key]; st != nil {
			rt.mu.Unlock()
			<-st.done
			if st.err != nil {
				return nil, st.err
			}
			continue
		}
		if tr := rt.startFails[key]; tr != nil && tr.Open() {
			if at := tr.HalfOpenAt(); at.IsZero() || rt.opts.Clock.Now().Before(at) {
				rt.mu.Unlock()
				return nil, fmt.Errorf("provider %s (%s): pool does not start: %w", g.name, key, pool.ErrCircuitOpen)
			}
		}
		st := &poolStart{done: make(chan struct{})}
		rt.starting[key] = st
		rt.starts.Add(1)
		rt.mu.Unlock()

		st.pool, st.err = rt.startPoolOf(rt.ctx, g, sc)
		rt.finishStart(key, g, st)
		rt.starts.Done()
		return st.pool, st.err
	}
}

// finishStart publishes a keyed pool start (or its failure) to the
// runtime and to the opens waiting on it.
func (rt *Runtime) finishStart(key string, g *generation, st *poolStart) {
	var stale *pool.Pool
	rt.mu.Lock()
	delete(rt.starting, key)
	switch {
	case st.err == nil && (rt.closed || g.retired):
		stale, st.pool = st.pool, nil
		st.err = fmt.Errorf("pool %s: %w", key, pool.ErrPoolClosed)
	case st.err == nil:
		rt.pools[key] = st.pool
		delete(rt.startFails, key)
	default:
		tr := rt.startFails[key]
		if tr == nil {
			tr = pool.NewRestartTracker(g.restartPolicy(), rt.opts.Clock, uint64(g.n))
			rt.startFails[key] = tr
		}
		if tr.Open() {
			tr.HalfOpenResult(st.err)
		} else if _, cerr := tr.Crashed(); cerr != nil {
			st.err = fmt.Errorf("%w (%w)", cerr, st.err)
		}
	}
	close(st.done)
	rt.mu.Unlock()
	if stale != nil {
		stale.Close()
	}
}

// restartPolicy is the provider's restart policy.
func (g *generation) restartPolicy() pool.RestartPolicy {
	r := g.cfg.Restart
	return pool.RestartPolicy{Intensity: r.Intensity, Period: time.Duration(r.Period), BackoffBase: time.Duration(r.Backoff),
		BackoffMax: time.Duration(r.BackoffMax), Jitter: r.Jitter, Cooldown: time.Duration(r.Cooldown)}
}

// sessionBoundLocked says whether a live session has bound key.
func (rt *Runtime) sessionBoundLocked(key string) bool {
	for sb := range rt.sessions {
		if sb.boundTo(key) {
			return true
		}
	}
	return false
}

// reapInterval is how often idle keyed pools are looked for (also on
// every session close).
const reapInterval = 250 * time.Millisecond

// reaper stops keyed pools that no live session is bound to and that have
// nothing in flight, once they were idle for their generation's idle
// timeout.
func (rt *Runtime) reaper() {
	defer rt.bg.Done()
	t := time.NewTicker(reapInterval)
	defer t.Stop()
	for {
		select {
		case <-rt.stop:
			return
		case <-t.C:
		case <-rt.reapKick:
		}
		rt.reapIdle(time.Now())
	}
}

func (rt *Runtime) reapIdle(now time.Time) {
	var stale []*pool.Pool
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return // Close stops every pool itself
	}
	for key, p := range rt.pools {
		g, _ := rt.keyedGenLocked(key)
		if g == nil || g.retired {
			continue
		}
		if rt.sessionBoundLocked(key) || p.OpenInvocations() > 0 {
			delete(rt.idleSince, key)
			continue
		}
		since, ok := rt.idleSince[key]
		if !ok {
			since = now
			rt.idleSince[key] = now
		}
		if now.Sub(since) >= g.idleTimeout() {
			delete(rt.pools, key)
			delete(rt.idleSince, key)
			stale = append(stale, p)
		}
	}
	for key, tr := range rt.startFails {
		if g, _ := rt.keyedGenLocked(key); g == nil || (!tr.Open() && tr.QuietSince(rt.opts.Clock.Now())) {
			delete(rt.startFails, key)
		}
	}
	if len(stale) > 0 {
		rt.bg.Add(1)
		go func() {
			defer rt.bg.Done()
			for _, p := range stale {
				rt.log.Debug("stopping idle pool", "pool", p.Key())
				p.Close()
			}
		}()
	}
	rt.mu.Unlock()
}

func (rt *Runtime) kickReaper() {
	select {
	case rt.reapKick <- struct{}{}:
	default:
	}
}

// probe starts a tenant provider's binary once, outside any tenant, to
// check that it starts and to learn its version; it is stopped at once.
func (rt *Runtime) probe(ctx context.Context, g *generation) (*pool.Pool, error) {
	return rt.startPoolOf(ctx, g, scope{probe: true})
}

// retireCtx bounds how long an old generation keeps serving turns bound
// to it after an upgrade.
func (rt *Runtime) retireCtx() (context.Context, context.CancelFunc) {
	timeout := time.Duration(rt.Config().Runtime.DrainTimeout)
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	return context.WithTimeout(context.Background(), timeout)
}
