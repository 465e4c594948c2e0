package pool

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/isolation"
	"github.com/rspp/rspp/kernel"
)

// CrashKind classifies how an instance died.
type CrashKind string

const (
	CrashExit      CrashKind = "exit"      // the process exited by itself
	CrashSignal    CrashKind = "signal"    // killed by a signal it did not ask for (SIGKILL, SIGSEGV, ...)
	CrashStream    CrashKind = "stream"    // a stream broke while the process lived on
	CrashHandshake CrashKind = "handshake" // it never completed the go-plugin handshake
	CrashConfig    CrashKind = "config"    // its Configure refused the provider's config block (externalnode.ConfigError)
	CrashProtocol  CrashKind = "protocol"  // it violated the node protocol
	CrashHung      CrashKind = "hung"      // it did not stop within the kill grace (or failed health checks) and was killed
	CrashOOM       CrashKind = "oom"       // its envelope's memory limit OOM-killed it
	CrashPids      CrashKind = "pids"      // it hit its envelope's pids limit
	CrashFlood     CrashKind = "flood"     // it went on emitting after an output budget failure and its cancel (externalnode.FloodError)
)

// ErrHung: the supervisor killed an instance that stopped answering.
var ErrHung = errors.New("plugin stopped answering and was killed")

// CrashError is the typed outcome of a dead instance: its in-flight
// invocations end with it. errors.Is matches the kernel failure kind
// (ErrNodeCrashed, ErrProtocol, ErrResourceLimit, ErrNodeUnavailable) and
// the underlying cause (an *externalnode.ExitError, *isolation.LimitError,
// ErrHung).
type CrashError struct {
	Provider string
	Instance string
	Tenant   string
	Pid      int
	Kind     CrashKind
	Err      error
}

func (e *CrashError) Error() string {
	if e.Pid == 0 { // it never started: no pid to name
		return fmt.Sprintf("instance %s %s: %v", e.Instance, e.Kind, e.Err)
	}
	return fmt.Sprintf("instance %s (pid %d) %s: %v", e.Instance, e.Pid, e.Kind, e.Err)
}

func (e *CrashError) Unwrap() []error { return []error{e.Kind.kernelKind(), e.Err} }

// kernelKind is the kernel's failure taxonomy for a crash kind.
func (k CrashKind) kernelKind() error {
	switch k {
	case CrashProtocol:
		return kernel.ErrProtocol
	case CrashOOM, CrashPids, CrashFlood:
		return kernel.ErrResourceLimit
	case CrashHandshake, CrashConfig:
		return kernel.ErrNodeUnavailable
	}
	return kernel.ErrNodeCrashed
}

// configKind is CrashConfig for a node that refused its config block, else
// CrashHandshake (Configure never answered).
func configKind(err error) CrashKind {
	var ce *externalnode.ConfigError
	if errors.As(err, &ce) {
		return CrashConfig
	}
	return CrashHandshake
}

// classify names the kind of a death from what the host saw (cause) and
// what the envelope recorded (limit: env.Failure(), may be nil).
func classify(cause, limit error, hung bool) (CrashKind, error) {
	var le *isolation.LimitError
	switch {
	case hung:
		return CrashHung, fmt.Errorf("%w: %v", ErrHung, cause)
	case errors.As(limit, &le) && errors.Is(le, isolation.ErrOOM):
		return CrashOOM, limit
	case errors.As(limit, &le) && errors.Is(le, isolation.ErrPidsLimit):
		return CrashPids, limit
	}
	var ee *externalnode.ExitError
	var pe *externalnode.ProtocolError
	var fe *externalnode.FloodError
	switch {
	case errors.As(cause, &fe):
		return CrashFlood, cause
	case errors.As(cause, &ee) && ee.Signal != "":
		return CrashSignal, cause
	case errors.As(cause, &ee):
		return CrashExit, cause
	case errors.As(cause, &pe) && strings.Contains(pe.Msg, "stream broken"):
		return CrashStream, cause
	case errors.As(cause, &pe):
		return CrashProtocol, cause
	}
	return CrashStream, cause
}
