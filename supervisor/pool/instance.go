package pool

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/isolation"
)

// State is where an instance is in its life.
type State int

const (
	Starting State = iota // process started, handshake/Configure in progress
	Ready                 // serving; Acquire may hand it out
	Draining              // finishing its open invocations; takes no new ones
	Stopped               // stopped on purpose
	Crashed               // died on its own or was killed as hung
)

func (s State) String() string {
	switch s {
	case Starting:
		return "starting"
	case Ready:
		return "ready"
	case Draining:
		return "draining"
	case Stopped:
		return "stopped"
	case Crashed:
		return "crashed"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// ErrBadTransition: a state change the instance state machine forbids.
var ErrBadTransition = errors.New("supervisor: invalid instance state transition")

// transitions lists the allowed moves; Stopped and Crashed are final.
var transitions = map[State][]State{
	Starting: {Ready, Crashed, Stopped},
	Ready:    {Draining, Crashed, Stopped},
	Draining: {Stopped, Crashed},
}

func canMove(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Instance is one plugin process as the supervisor tracks it.
type Instance struct {
	name     string
	provider string
	node     *externalnode.Instance
	env      *isolation.Envelope // nil without isolation
	scratch  string              // the instance's scratch dir ("" if none)
	started  time.Time

	// reserved counts acquires that picked this instance and whose open
	// has not reached it yet; served counts invocations opened on it.
	reserved atomic.Int32
	served   atomic.Int64

	mu      sync.Mutex
	state   State
	crash   *CrashError
	hung    bool      // killed by the supervisor for not answering
	endedAt time.Time // when it became Stopped or Crashed
}

// Name is the instance's name, e.g. "espeak#2.3" (pool key . sequence).
func (i *Instance) Name() string { return i.name }

// Node is the process boundary.
func (i *Instance) Node() *externalnode.Instance { return i.node }

// load is what the least-loaded pick compares: invocations open on the
// instance plus those on their way to it.
func (i *Instance) load() int { return i.node.OpenInvocations() + int(i.reserved.Load()) }

// Served counts invocations opened on the instance.
func (i *Instance) Served() int64 { return i.served.Load() }

// Pid is the plugin process id.
func (i *Instance) Pid() int { return i.node.Pid() }

// State is the current state.
func (i *Instance) State() State {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.state
}

// move changes state if the state machine allows it.
func (i *Instance) move(to State) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.moveLocked(to)
}

func (i *Instance) moveLocked(to State) error {
	if !canMove(i.state, to) {
		return fmt.Errorf("%w: %s -> %s (%s)", ErrBadTransition, i.state, to, i.name)
	}
	i.state = to
	if to == Stopped || to == Crashed {
		i.endedAt = time.Now()
	}
	return nil
}

// markHung flags the instance as killed for not answering; its death is
// then classified CrashHung. It returns false if it had already ended.
func (i *Instance) markHung() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.state == Stopped || i.state == Crashed {
		return false
	}
	i.hung = true
	return true
}

// isHung says whether the supervisor is killing it for not answering.
func (i *Instance) isHung() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.hung
}

// died records a death the supervisor did not ask for. It returns the
// typed crash, or nil when the instance was already stopped on purpose.
func (i *Instance) died() *CrashError {
	var limit error
	if i.env != nil {
		limit = i.env.Failure()
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.state == Stopped || i.state == Crashed {
		return i.crash
	}
	kind, err := classify(i.node.Err(), limit, i.hung)
	tenant := ""
	if i.env != nil {
		tenant = i.env.Tenant()
	}
	i.crash = &CrashError{Provider: i.provider, Instance: i.name, Tenant: tenant, Pid: i.node.Pid(), Kind: kind, Err: err}
	_ = i.moveLocked(Crashed)
	return i.crash
}

// outcome shapes an invocation's end error: if the instance crashed, the
// call fails with the instance's typed crash instead of whatever the
// stream said.
func (i *Instance) outcome(err error) error {
	if err == nil {
		return nil
	}
	select {
	case <-i.node.Done():
	default:
		return err // the plugin reported this invocation's failure itself
	}
	if c := i.died(); c != nil {
		return c
	}
	return err
}

// kill SIGKILLs the plugin's process group and its envelope.
func (i *Instance) kill() {
	if pid := i.node.Pid(); pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if i.env != nil {
		_ = i.env.Kill()
	}
}

// release reaps the process, removes its socket dir, its envelope and its
// scratch dir (the sandbox removes the latter too; without isolation only
// this does).
func (i *Instance) release() {
	i.node.Kill()
	if i.env != nil {
		_ = i.env.Close()
	}
	if i.scratch != "" {
		_ = os.RemoveAll(i.scratch)
	}
}

// Envelope is the instance's cgroup envelope, nil without isolation. The
// admission check reads its usage; the pool owns its life.
func (i *Instance) Envelope() *isolation.Envelope { return i.env }
