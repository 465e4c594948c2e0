package kernel

import "time"

// Admission outcomes of a proposed turn.
const (
	Admit  = "admit"
	Defer  = "defer"
	Reject = "reject"
)

// TurnIntent is what the arbiter knows when speech proposes a turn.
type TurnIntent struct {
	SessionID string
	TenantID  string
	Epoch     uint64
	Attempt   int   // 0 first proposal, 1.. after defers
	NowNanos  int64 // kernel clock
	BargeIn   bool  // the proposal interrupts an agent turn
}

// Decision is an admission outcome. Defer re-proposes after RetryAfter
// (default 50 ms), at most MaxDefers times before it becomes a reject.
type Decision struct {
	Outcome    string // Admit, Defer or Reject; "" means Admit
	Reason     string
	RetryAfter time.Duration
}

// Admitter is the pre-turn admission policy (local resources, tenant quota).
// It must be deterministic given its inputs for replay to hold.
type Admitter interface {
	Admit(TurnIntent) Decision
}

// Authority reports the current lease epoch for a session. The kernel holds
// the epoch it was opened under (SessionConfig.Epoch); when the lease moved
// on, that epoch is stale and no new turn may open.
type Authority interface {
	CurrentEpoch(sessionID string) uint64
}

const (
	defaultDeferRetry = 50 * time.Millisecond
	// MaxDefers is how many times one intent may be deferred before the
	// arbiter turns it into a reject (never an endless wait).
	MaxDefers = 3
)

// AdmitterFunc adapts a function to Admitter.
type AdmitterFunc func(TurnIntent) Decision

func (f AdmitterFunc) Admit(in TurnIntent) Decision { return f(in) }
