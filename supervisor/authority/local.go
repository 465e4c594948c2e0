package authority

import (
	"context"
	"errors"
)

// Local is the in-process authority: one runtime owns every session it
// serves, each at epoch 1, for good. It keeps the single-process
// behaviour of a runtime without a lease service.
type Local struct{}

// NewLocal returns the in-process authority.
func NewLocal() Local { return Local{} }

func (Local) Kind() string { return "local" }
func (Local) Close() error { return nil }

// Acquire never waits: the session is this process's.
func (Local) Acquire(ctx context.Context, session string) (Lease, error) {
	if session == "" {
		return nil, errors.New("authority: empty session id")
	}
	return localLease{session: session}, nil
}

type localLease struct{ session string }

func (l localLease) Session() string { return l.session }
func (localLease) Epoch() uint64     { return 1 }
func (localLease) Check() error      { return nil }
func (localLease) Current() uint64   { return 1 }
func (localLease) Release()          {}
