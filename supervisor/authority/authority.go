// Package authority is RK-09's placement lease: single-writer authority
// over a session. A runtime takes a session's lease before the session's
// first turn_open; the lease's epoch is stamped on everything the session
// does, checked at ingress and at the egress fence, and a session whose
// lease is lost (expired, taken over by another process) can no longer
// put anything on its transport.
//
// Two implementations: Local, in-process (the default without a lease
// service: every session holds epoch 1 forever, today's single-process
// behaviour), and Etcd, a real lease service: a key per session bound to
// an etcd lease with a TTL; the epoch is the revision at which this
// holder created the key, so a takeover always has a higher epoch.
//
// Lease.Check never blocks and does no I/O: it is called on the session
// loop (kernel.Authority) and by the transport's writer for every frame
// (kernel/fence.Gate). The keep-alive and the watch that notice a loss
// run on goroutines the lease owns; Release stops them.
//
// It imports only kernel of this module.
package authority

import (
	"context"
	"errors"
	"fmt"

	"github.com/rspp/rspp/kernel"
)

// Errors of Check and Acquire.
var (
	// ErrLost: the lease is gone (expired at the lease service, taken
	// over, released). It wraps kernel.ErrStaleEpoch.
	ErrLost = fmt.Errorf("%w: placement lease lost", kernel.ErrStaleEpoch)
	// ErrExpired: the holder's own view of the lease ran past its TTL
	// without a renewal (e.g. the process was stopped); the lease service
	// may already have given the session to another holder.
	ErrExpired = fmt.Errorf("%w: placement lease expired", kernel.ErrStaleEpoch)
	// ErrAcquire: the lease could not be taken (held elsewhere until the
	// deadline, or the service is unreachable).
	ErrAcquire = errors.New("placement lease not acquired")
)

// Authority hands out placement leases.
type Authority interface {
	// Acquire takes session's lease, waiting (bounded by ctx and the
	// authority's acquire timeout) while another holder has it.
	Acquire(ctx context.Context, session string) (Lease, error)
	// Kind names the implementation ("local", "etcd").
	Kind() string
	// Close releases every lease still held and the connection.
	Close() error
}

// Lease is one held placement lease.
type Lease interface {
	Session() string
	// Epoch is the lease's epoch (> 0).
	Epoch() uint64
	// Check is nil while the lease is held; ErrLost or ErrExpired after.
	// It never blocks.
	Check() error
	// Current is the newest epoch known for the session: Epoch while
	// held, the new holder's once seen, 0 when lost to no known holder.
	Current() uint64
	// Release gives the lease up (idempotent) and stops its goroutines.
	Release()
}

// Kernel adapts a lease to kernel.Authority (and, for a lease service,
// kernel.EpochRequirer: node outputs must carry the epoch).
type Kernel struct {
	L      Lease
	Strict bool
}

// CurrentEpoch is the lease's epoch while held; after a loss the epoch
// that replaced it (0 if none is known), which differs from the session's.
func (k Kernel) CurrentEpoch(string) uint64 {
	if k.L.Check() == nil {
		return k.L.Epoch()
	}
	if cur := k.L.Current(); cur != k.L.Epoch() {
		return cur
	}
	return 0
}

// RequireEpoch implements kernel.EpochRequirer.
func (k Kernel) RequireEpoch() bool { return k.Strict }

// GateCheck adapts a lease to the transport gate's authority check: egress
// stamped with the lease's epoch passes only while the lease is held.
type GateCheck struct{ L Lease }

// CheckEpoch is nil when output of epoch may still go out.
func (g GateCheck) CheckEpoch(epoch uint64) error {
	if err := g.L.Check(); err != nil {
		return fmt.Errorf("session %s epoch %d: %w", g.L.Session(), g.L.Epoch(), err)
	}
	if epoch != 0 && epoch != g.L.Epoch() {
		return fmt.Errorf("%w: output epoch %d, lease epoch %d", kernel.ErrStaleEpoch, epoch, g.L.Epoch())
	}
	return nil
}
