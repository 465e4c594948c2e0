package supervisor

import (
	"context"
	"fmt"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/fence"
	"github.com/rspp/rspp/supervisor/authority"
	"github.com/rspp/rspp/supervisor/config"
)

// openAuthority is the runtime's lease authority: Options.Authority, else
// etcd when the config names it, else the in-process one.
func openAuthority(ctx context.Context, cfg *config.Config, opts Options) (authority.Authority, bool, error) {
	if opts.Authority != nil {
		return opts.Authority, false, nil
	}
	e := cfg.Authority.Etcd
	if e == nil {
		return authority.NewLocal(), true, nil
	}
	a, err := authority.NewEtcd(ctx, authority.EtcdConfig{Endpoints: e.Endpoints, TTL: time.Duration(e.TTL),
		AcquireTimeout: time.Duration(e.AcquireTimeout), Prefix: e.Prefix})
	if err != nil {
		return nil, false, fmt.Errorf("authority.etcd: %w", err)
	}
	return a, true, nil
}

// acquireLease takes session's placement lease before its session opens
// (so before its first turn_open) and returns the kernel's view of it; the
// gate, if any, checks it on every output from then on.
func (rt *Runtime) acquireLease(session string, gate *fence.Gate) (authority.Lease, kernel.Authority, error) {
	lease, err := rt.auth.Acquire(rt.ctx, session)
	if err != nil {
		return nil, nil, fmt.Errorf("session %s: %w", session, err)
	}
	if gate != nil {
		gate.SetEpoch(lease.Epoch())
		gate.SetAuthority(authority.GateCheck{L: lease})
	}
	return lease, authority.Kernel{L: lease, Strict: rt.auth.Kind() != "local"}, nil
}

// recordGateStale records what the transport's gate refused because the
// session's lease was lost (output the kernel had handed out before it
// knew, such as audio already in a playout buffer).
func recordGateStale(tl interface{ Append(kernel.TimelineRecord) }, session string, gate *fence.Gate) {
	n := gate.Stale()
	if n == 0 || tl == nil {
		return
	}
	tl.Append(kernel.TimelineRecord{SessionID: session, Type: "egress_drop", Reason: kernel.ReasonStaleEpoch,
		Attrs: map[string]string{"count": fmt.Sprint(n), "at": "transport"}})
}
