package kernel

import (
	"errors"
	"fmt"
)

// Kernel error kinds beyond the invocation kinds declared in api.go.
var (
	// ErrInvalidGraph is the umbrella kind of every GraphError.
	ErrInvalidGraph = errors.New("invalid graph")
	ErrUnknownNode  = errors.New("edge names an unknown node")
	ErrDuplicate    = errors.New("duplicate node or edge")
	ErrCycle        = errors.New("graph has a cycle")
	ErrNoProvider   = errors.New("node has no provider")
	ErrUnreachable  = errors.New("node not on a path from ingress to egress")
	ErrBadPolicy    = errors.New("invalid node or edge policy")

	// ErrConfig is a session configuration error other than the graph.
	ErrConfig = errors.New("invalid session config")
	// ErrStaleEpoch rejects input produced under an older authority epoch.
	ErrStaleEpoch = errors.New("stale authority epoch")
	// ErrFenced rejects output signals (output_accepted, playback_started)
	// and output of a scope after its egress fence.
	ErrFenced = errors.New("scope is fenced: output after cancel is invalid")
)

// GraphError says what is wrong with a graph and where. It matches both
// ErrInvalidGraph and its specific Kind with errors.Is.
type GraphError struct {
	Kind error  // ErrUnknownNode, ErrDuplicate, ErrCycle, ErrNoProvider, ErrUnreachable, ErrBadPolicy
	Node string // offending node id, if any
	Edge string // offending edge "from->to", if any
	Msg  string
}

func (e *GraphError) Error() string {
	where := ""
	if e.Node != "" {
		where += " node " + e.Node
	}
	if e.Edge != "" {
		where += " edge " + e.Edge
	}
	return fmt.Sprintf("kernel: %v: %v:%s: %s", ErrInvalidGraph, e.Kind, where, e.Msg)
}

func (e *GraphError) Unwrap() []error { return []error{ErrInvalidGraph, e.Kind} }
