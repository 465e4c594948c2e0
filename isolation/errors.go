package isolation

import (
	"errors"
	"fmt"
)

// Sentinel error kinds. Match with errors.Is.
var (
	// ErrOOM: the kernel OOM-killed a process of the envelope because it
	// reached its memory limit.
	ErrOOM = errors.New("memory limit reached: OOM kill")
	// ErrPidsLimit: a fork or thread creation in the envelope failed at
	// pids.max.
	ErrPidsLimit = errors.New("pids limit reached")
	// ErrCPUThrottled: the envelope was held to its CPU quota. It is reported
	// in Stats and LimitError, never as a failure on its own.
	ErrCPUThrottled = errors.New("cpu quota throttled")
	// ErrUnsupported: this kernel or cgroup setup cannot provide what was
	// asked (a controller is missing, user namespaces are off, ...).
	ErrUnsupported = errors.New("isolation feature unsupported here")
	// ErrUnknownProfile: a profile name that is neither built in nor
	// configured.
	ErrUnknownProfile = errors.New("unknown isolation profile")
	// ErrInvalidProfile: a profile or override that cannot be applied
	// (user: root with a user namespace, a relative read path, ...).
	ErrInvalidProfile = errors.New("invalid isolation profile")
	// ErrChecksum: the plugin binary does not match SecureConfig.
	ErrChecksum = errors.New("plugin binary checksum mismatch")
	// ErrClosed: the envelope was already closed.
	ErrClosed = errors.New("envelope closed")
	// ErrSandboxSetup: the sandbox entry point could not apply its policy
	// and refused to exec the plugin.
	ErrSandboxSetup = errors.New("sandbox setup failed")
)

// LimitError attributes a limit hit to the instance (node) and tenant whose
// envelope it happened in. The supervisor treats it like a crash of that
// node; the timeline and metrics get Instance and Tenant from it.
type LimitError struct {
	Kind     error  // ErrOOM, ErrPidsLimit or ErrCPUThrottled
	Instance string // envelope instance name (node id + replica)
	Tenant   string // tenant the instance runs for, if any
	Count    uint64 // number of events of Kind seen in the envelope
	Detail   string // e.g. "memory.max=64MiB"
}

func (e *LimitError) Error() string {
	s := fmt.Sprintf("isolation: instance %q", e.Instance)
	if e.Tenant != "" {
		s += fmt.Sprintf(" (tenant %q)", e.Tenant)
	}
	s += fmt.Sprintf(": %v (x%d)", e.Kind, e.Count)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *LimitError) Unwrap() error { return e.Kind }
