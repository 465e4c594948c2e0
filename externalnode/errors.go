package externalnode

import (
	"errors"
	"fmt"

	"github.com/rspp/rspp/kernel"
	rsppv1 "github.com/rspp/rspp/proto/rspp/v1"
)

// ErrInvalidInput is what a node returns (wrapped) from Invoke when its input
// was unusable; the host sees it as a node failure of kind invalid input.
var ErrInvalidInput = errors.New("invalid input")

// ExitError says a plugin process ended. It unwraps to kernel.ErrNodeCrashed.
type ExitError struct {
	Pid    int
	Code   int    // exit code, -1 when killed by a signal
	Signal string // e.g. "killed"; empty when it exited by itself
	Cause  error  // what the host saw first (stream error, wait error)
}

func (e *ExitError) Error() string {
	if e.Signal != "" {
		return fmt.Sprintf("plugin crashed (pid %d, signal: %s)", e.Pid, e.Signal)
	}
	if e.Code >= 0 {
		return fmt.Sprintf("plugin crashed (pid %d, exit status %d)", e.Pid, e.Code)
	}
	return fmt.Sprintf("plugin crashed (pid %d, %v)", e.Pid, e.Cause)
}

func (e *ExitError) Unwrap() error { return kernel.ErrNodeCrashed }

// InvocationError is a failure a plugin reported for one invocation.
type InvocationError struct {
	Kind    rsppv1.ErrorKind
	Message string
	// Code is the provider's own failure code (FailureCoder), "" if none.
	Code string
}

func (e *InvocationError) Error() string {
	return fmt.Sprintf("node reported %s: %s", e.Kind, e.Message)
}

// FailureCode implements kernel.FailureCoder.
func (e *InvocationError) FailureCode() string { return e.Code }

// Unwrap maps the wire kind onto the kernel's failure taxonomy.
func (e *InvocationError) Unwrap() error {
	switch e.Kind {
	case rsppv1.ErrorKind_ERROR_KIND_CANCELLED:
		return kernel.ErrCancelled
	case rsppv1.ErrorKind_ERROR_KIND_UNAVAILABLE:
		return kernel.ErrNodeUnavailable
	case rsppv1.ErrorKind_ERROR_KIND_PROTOCOL:
		return kernel.ErrProtocol
	default:
		return kernel.ErrNodeFailed
	}
}

// ProtocolError is a violation of the node protocol seen by the host
// (handshake, version, malformed or oversized frames).
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "node protocol: " + e.Msg }
func (e *ProtocolError) Unwrap() error { return kernel.ErrProtocol }

// toInvocationError shapes an author's Invoke error for the wire.
func toInvocationError(err error) *rsppv1.InvocationError {
	kind := rsppv1.ErrorKind_ERROR_KIND_INTERNAL
	switch {
	case errors.Is(err, ErrInvalidInput):
		kind = rsppv1.ErrorKind_ERROR_KIND_INVALID_INPUT
	case errors.Is(err, errCallCancelled), errors.Is(err, kernel.ErrCancelled):
		kind = rsppv1.ErrorKind_ERROR_KIND_CANCELLED
	}
	return &rsppv1.InvocationError{Kind: kind, Message: err.Error(), Code: kernel.FailureCode(err)}
}
