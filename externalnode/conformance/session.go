package conformance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
)

// Correlation ids the checks stamp on every invocation they open; outputs
// must carry them back.
const (
	sessionID = "conformance-session"
	turnID    = "conformance-turn"
	nodeID    = "conformance-node"
)

// StartError says a node binary could not be started or failed the
// go-plugin handshake. Tail holds the last lines it wrote to stderr.
type StartError struct {
	Binary string
	Err    error
	Tail   string
}

func (e *StartError) Error() string {
	msg := fmt.Sprintf("start %s: %v", e.Binary, e.Err)
	if e.Tail != "" {
		msg += "\nnode stderr (tail):\n" + e.Tail
	}
	return msg
}

func (e *StartError) Unwrap() error { return e.Err }

// session is one started node binary with its private socket directory.
// close kills the node and removes the directory; it is safe to call twice.
type session struct {
	inst      *externalnode.Instance
	socketDir string
	stderr    *externalnode.Tail
	closeOnce sync.Once
}

// start launches binary with a private, short socket directory made in root
// ("" = the temp dir): unix socket paths must stay under 108 bytes.
func start(ctx context.Context, binary string, env []string, root string, timeout time.Duration) (*session, error) {
	dir, err := os.MkdirTemp(root, "rn")
	if err != nil {
		return nil, err
	}
	tail := &externalnode.Tail{Max: 4 << 10}
	inst, err := externalnode.Start(ctx, externalnode.StartConfig{
		Name:         "conformance",
		Binary:       binary,
		Env:          env,
		SocketDir:    dir,
		StartTimeout: timeout,
		Stderr:       tail,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name: "node", Output: tail, Level: hclog.Info,
		}),
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, &StartError{Binary: binary, Err: err, Tail: strings.TrimSpace(tail.String())}
	}
	return &session{inst: inst, socketDir: dir, stderr: tail}, nil
}

// close kills the node and removes the socket directory. It reports what
// the node left behind: a live process or socket files.
func (s *session) close() error {
	var err error
	s.closeOnce.Do(func() {
		pid := s.inst.Pid()
		s.inst.Kill()
		var problems []error
		if externalnode.ProcessAlive(pid) {
			problems = append(problems, fmt.Errorf("process %d still alive after Kill", pid))
		}
		left, _ := os.ReadDir(s.socketDir)
		for _, e := range left {
			problems = append(problems, fmt.Errorf("left behind in socket dir: %s", e.Name()))
		}
		if rmErr := os.RemoveAll(s.socketDir); rmErr != nil {
			problems = append(problems, rmErr)
		}
		err = errors.Join(problems...)
	})
	return err
}

// outcome is how one invocation ended, and what it emitted.
type outcome struct {
	Events []eventabi.Event
	Err    error
}

// invocation is one open call whose outputs are being collected.
type invocation struct {
	call      *externalnode.HostCall
	id        string
	done      chan outcome
	delivered chan struct{} // closed when the first input reached the plugin
	foreign   int64         // the instance's foreign-frame count at open
}

// open starts an invocation with the conformance correlation ids; onEvent,
// when set, sees each output as it arrives (from the reader goroutine).
func (s *session) open(id string, budget externalnode.OutputBudget, onEvent func(eventabi.Event)) (*invocation, error) {
	return s.openWith(id, budget, onEvent, nil)
}

// openDelivered is open that also counts the inputs delivered.
func (s *session) openDelivered(id string, budget externalnode.OutputBudget, onDelivered func(int)) (*invocation, error) {
	return s.openWith(id, budget, nil, onDelivered)
}

func (s *session) openWith(id string, budget externalnode.OutputBudget, onEvent func(eventabi.Event), onDelivered func(int)) (*invocation, error) {
	inv := &invocation{id: id, done: make(chan outcome, 1), delivered: make(chan struct{}), foreign: s.inst.ForeignFrames()}
	var evs []eventabi.Event // touched only by the instance's reader goroutine
	var firstDelivery sync.Once
	c, err := s.inst.Open(externalnode.OpenRequest{InvocationID: id, SessionID: sessionID, TurnID: turnID, NodeID: nodeID, Budget: budget}, externalnode.Handler{
		OnEvent: func(ev eventabi.Event) {
			evs = append(evs, ev)
			if onEvent != nil {
				onEvent(ev)
			}
		},
		OnEnd: func(err error) { inv.done <- outcome{Events: evs, Err: err} },
		OnDelivered: func(n int) {
			firstDelivery.Do(func() { close(inv.delivered) })
			if onDelivered != nil {
				onDelivered(n)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	inv.call = c
	return inv, nil
}

// send delivers inputs in order.
func (inv *invocation) send(inputs []eventabi.Event) error {
	for _, ev := range inputs {
		if err := inv.call.Send(ev); err != nil {
			return fmt.Errorf("send %s: %w", ev.Type, err)
		}
	}
	return nil
}

// wait returns the outcome, or a TimeoutError after d (the call is then
// abandoned so a late end cannot race with the caller).
func (inv *invocation) wait(d time.Duration) (outcome, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case o := <-inv.done:
		return o, nil
	case <-t.C:
		inv.call.Abandon()
		return outcome{}, &TimeoutError{What: "invocation " + inv.id, After: d}
	}
}

// TimeoutError says something the node had to do did not happen in time.
type TimeoutError struct {
	What  string
	After time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s did not end within %s", e.What, e.After)
}
