package authority

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdConfig configures the etcd authority.
type EtcdConfig struct {
	Endpoints []string
	// TTL of a session's lease (default 5s; etcd rounds small TTLs up to
	// its minimum, and the granted TTL is what counts).
	TTL time.Duration
	// Prefix of the session keys (default "/rspp/sessions/").
	Prefix string
	// AcquireTimeout bounds the wait for a lease another holder has
	// (default 30s).
	AcquireTimeout time.Duration
	// DialTimeout bounds connecting (default 5s).
	DialTimeout time.Duration
	// Owner is written as the key's value (default "pid <pid>").
	Owner string
}

// Etcd is the etcd-backed authority.
type Etcd struct {
	cfg EtcdConfig
	cli *clientv3.Client

	mu     sync.Mutex
	leases map[*etcdLease]struct{}
	closed bool
}

// NewEtcd connects to etcd. It fails (naming the endpoints) when no
// endpoint answers within the dial timeout.
func NewEtcd(ctx context.Context, cfg EtcdConfig) (*Etcd, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, fmt.Errorf("%w: etcd: no endpoints", ErrAcquire)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Second
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/rspp/sessions/"
	}
	if cfg.AcquireTimeout <= 0 {
		cfg.AcquireTimeout = 30 * time.Second
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.Owner == "" {
		cfg.Owner = fmt.Sprintf("pid %d", os.Getpid())
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, DialTimeout: cfg.DialTimeout, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("%w: etcd %s: %v", ErrAcquire, strings.Join(cfg.Endpoints, ","), err)
	}
	// clientv3.New does not wait for a connection: ask once, bounded.
	sctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if _, err := cli.Status(sctx, cfg.Endpoints[0]); err != nil {
		cli.Close()
		return nil, fmt.Errorf("%w: etcd %s unreachable: %v", ErrAcquire, strings.Join(cfg.Endpoints, ","), err)
	}
	return &Etcd{cfg: cfg, cli: cli, leases: map[*etcdLease]struct{}{}}, nil
}

func (e *Etcd) Kind() string { return "etcd" }

// Acquire takes session's key under a fresh etcd lease. While another
// holder has the key it waits for the key to go (its lease expiring or
// its release), up to the acquire timeout.
func (e *Etcd) Acquire(ctx context.Context, session string) (Lease, error) {
	if session == "" {
		return nil, fmt.Errorf("%w: empty session id", ErrAcquire)
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.AcquireTimeout)
	defer cancel()
	key := e.cfg.Prefix + session
	ttl := max(1, int64((e.cfg.TTL+time.Second-1)/time.Second))
	for {
		sent := time.Now()
		grant, err := e.cli.Grant(ctx, ttl)
		if err != nil {
			return nil, fmt.Errorf("%w: session %s: grant: %v", ErrAcquire, session, err)
		}
		resp, err := e.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, e.cfg.Owner, clientv3.WithLease(grant.ID))).
			Else(clientv3.OpGet(key)).Commit()
		if err != nil {
			e.revoke(grant.ID)
			return nil, fmt.Errorf("%w: session %s: %v", ErrAcquire, session, err)
		}
		if resp.Succeeded {
			return e.hold(session, key, grant, uint64(resp.Header.Revision), sent)
		}
		e.revoke(grant.ID)
		holder := ""
		if kvs := resp.Responses[0].GetResponseRange().GetKvs(); len(kvs) > 0 {
			holder = string(kvs[0].Value)
		}
		if err := e.waitGone(ctx, key, resp.Header.Revision+1); err != nil {
			return nil, fmt.Errorf("%w: session %s is held by %q: %v", ErrAcquire, session, holder, err)
		}
	}
}

// waitGone waits until key is deleted (from revision rev on).
func (e *Etcd) waitGone(ctx context.Context, key string, rev int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for wr := range e.cli.Watch(wctx, key, clientv3.WithRev(rev)) {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				return nil
			}
		}
	}
	return ctx.Err()
}

func (e *Etcd) revoke(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = e.cli.Revoke(ctx, id)
}

func (e *Etcd) hold(session, key string, grant *clientv3.LeaseGrantResponse, epoch uint64, sent time.Time) (Lease, error) {
	ctx, cancel := context.WithCancel(context.Background())
	l := &etcdLease{e: e, session: session, key: key, id: grant.ID, epoch: epoch, ttl: time.Duration(grant.TTL) * time.Second,
		base: sent, cancel: cancel}
	l.current.Store(epoch)
	l.extend(sent, l.ttl)
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		cancel()
		e.revoke(grant.ID)
		return nil, fmt.Errorf("%w: authority closed", ErrAcquire)
	}
	e.leases[l] = struct{}{}
	e.mu.Unlock()
	l.wg.Add(2)
	go l.keepAlive(ctx)
	go l.watch(ctx)
	return l, nil
}

// Close releases every lease still held and closes the client.
func (e *Etcd) Close() error {
	e.mu.Lock()
	e.closed = true
	ls := make([]*etcdLease, 0, len(e.leases))
	for l := range e.leases {
		ls = append(ls, l)
	}
	e.mu.Unlock()
	for _, l := range ls {
		l.Release()
	}
	return e.cli.Close()
}

// etcdLease is one held session key.
type etcdLease struct {
	e            *Etcd
	session, key string
	id           clientv3.LeaseID
	epoch        uint64
	ttl          time.Duration
	base         time.Time // monotonic origin of validUntil

	validUntil atomic.Int64 // ns since base: the holder's own view of expiry
	lostFlag   atomic.Bool
	expired    atomic.Bool // lost because it ran past its TTL (set before lostFlag)
	current    atomic.Uint64

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	release sync.Once
}

func (l *etcdLease) Session() string { return l.session }
func (l *etcdLease) Epoch() uint64   { return l.epoch }
func (l *etcdLease) Current() uint64 { return l.current.Load() }

// Check: lost (the service said so) or expired by the holder's own clock:
// renewals are dated from when they were sent, so a process that was
// stopped past its TTL sees its lease expired the moment it runs again,
// before any late renewal could be believed.
//
// Expiry is final: a holder that once found its lease past its TTL cannot
// know whether another holder took the session meanwhile, so a late
// renewal that would revive it is never sent.
func (l *etcdLease) Check() error {
	if l.lostFlag.Load() {
		if l.expired.Load() {
			return ErrExpired
		}
		return ErrLost
	}
	if time.Since(l.base).Nanoseconds() >= l.validUntil.Load() {
		l.expired.Store(true)
		l.lose(0)
		return ErrExpired
	}
	return nil
}

// extend moves the expiry to sent+ttl (less a 5 % margin), never back.
func (l *etcdLease) extend(sent time.Time, ttl time.Duration) {
	until := sent.Sub(l.base).Nanoseconds() + int64(ttl) - int64(ttl)/20
	for {
		cur := l.validUntil.Load()
		if until <= cur || l.validUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

func (l *etcdLease) lose(current uint64) {
	if current != 0 {
		l.current.Store(current)
	} else if l.current.Load() == l.epoch {
		l.current.Store(0)
	}
	l.lostFlag.Store(true)
}

// keepAlive renews the lease every third of its TTL. A renewal that finds
// the lease gone (it expired at the service) loses it.
func (l *etcdLease) keepAlive(ctx context.Context) {
	defer l.wg.Done()
	t := time.NewTicker(max(l.ttl/3, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if l.Check() != nil {
			return // lost or expired: never revived
		}
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, l.ttl/3+time.Second)
		resp, err := l.e.cli.KeepAliveOnce(rctx, l.id)
		cancel()
		switch {
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			l.lose(0)
			return
		case err != nil:
			// Unreachable for now: the lease runs out by the clock unless
			// a later renewal gets through.
		case resp.TTL <= 0:
			l.lose(0)
			return
		default:
			l.extend(sent, time.Duration(resp.TTL)*time.Second)
		}
	}
}

// watch loses the lease when its key changes hands: deleted (expired,
// removed) or written by another holder, whose epoch it remembers.
func (l *etcdLease) watch(ctx context.Context) {
	defer l.wg.Done()
	rev := int64(l.epoch) + 1
	for ctx.Err() == nil {
		for wr := range l.e.cli.Watch(clientv3.WithRequireLeader(ctx), l.key, clientv3.WithRev(rev)) {
			if wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				rev = ev.Kv.ModRevision + 1
				switch {
				case ev.Type == mvccpb.DELETE:
					l.lose(0)
				case ev.Kv.CreateRevision != int64(l.epoch):
					l.lose(uint64(ev.Kv.CreateRevision))
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Release deletes the key if it is still this lease's, revokes the lease
// and stops the goroutines. Safe to call twice.
func (l *etcdLease) Release() {
	l.release.Do(func() {
		l.cancel()
		l.wg.Wait()
		held := !l.lostFlag.Swap(true)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if held {
			_, _ = l.e.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(l.key), "=", int64(l.epoch))).
				Then(clientv3.OpDelete(l.key)).Commit()
		}
		_, _ = l.e.cli.Revoke(ctx, l.id)
		l.e.mu.Lock()
		delete(l.e.leases, l)
		l.e.mu.Unlock()
	})
}
