// Package fence is the transport side of the egress fence (RK-06): a Gate
// that a transport consults before it sends agent output or reports output
// signals. Once a turn is fenced, nothing of it passes: no audio frame, no
// text, no output_accepted or playback_started. It also drops output
// stamped with a stale authority epoch. It does no I/O and is safe for
// concurrent use (the runner fences, the transport's writer admits).
//
// It is the one egress fence of a session: supervisor.ServeConn makes a
// Gate per session and hands it to the playout (which fences it on the
// kernel's FenceEgress and admits each frame before pacing it out) and to
// the connection (transports.Binding.Gate: its writer admits each frame
// right before it goes on the wire).
//
// It imports only kernel and kernel/eventabi of this module.
package fence

import (
	"fmt"
	"sync"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
)

// ErrStaleEpoch is output produced under an older authority epoch.
var ErrStaleEpoch = kernel.ErrStaleEpoch

// Gate remembers fenced turns (bounded) and the current epoch.
type Gate struct {
	mu     sync.Mutex
	fenced kernel.FencedTurns
	epoch  uint64
	auth   EpochChecker // the session's lease (nil: none)
	stale  uint64       // refused by auth
}

// EpochChecker is the session's placement lease as the gate sees it:
// CheckEpoch is nil while output of epoch may still go out. It must not
// block (supervisor/authority.GateCheck).
type EpochChecker interface {
	CheckEpoch(epoch uint64) error
}

// SetAuthority makes the gate check every output against the session's
// lease: once the lease is lost, nothing more goes out.
func (g *Gate) SetAuthority(a EpochChecker) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.auth = a
}

// Stale counts what Admit refused because the lease was lost.
func (g *Gate) Stale() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stale
}

// NewGate remembers up to max fenced turns (0: 256).
func NewGate(max int) *Gate {
	if max <= 0 {
		max = 256
	}
	return &Gate{fenced: kernel.FencedTurns{Max: max}}
}

// Fence closes the gate for a turn, from now on.
func (g *Gate) Fence(turnID, reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fenced.Add(turnID, reason)
}

// SetEpoch raises the authority epoch; output of older epochs is dropped.
func (g *Gate) SetEpoch(epoch uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.epoch = max(g.epoch, epoch)
}

// Admit says whether ev (agent output or an output signal) may go out.
// Fenced or stale output returns a typed error (kernel.ErrFenced,
// ErrStaleEpoch, or the lease's).
func (g *Gate) Admit(ev *eventabi.Event) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if reason, ok := g.fenced.Reason(ev.TurnID); ok && ev.TurnID != "" {
		return fmt.Errorf("%w: turn %s (%s)", kernel.ErrFenced, ev.TurnID, reason)
	}
	if ev.Epoch != 0 && ev.Epoch < g.epoch {
		return fmt.Errorf("%w: epoch %d < %d", ErrStaleEpoch, ev.Epoch, g.epoch)
	}
	if g.auth != nil {
		if err := g.auth.CheckEpoch(ev.Epoch); err != nil {
			g.stale++
			return err
		}
	}
	return nil
}
