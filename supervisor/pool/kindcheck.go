package pool

import (
	"errors"
	"fmt"

	"github.com/rspp/rspp/externalnode"
)

// ErrKindMismatch: a node declares another kind than its provider's
// configured one (a `kind: custom` node configured as `kind: tts` would
// otherwise be handed TTS input silently).
var ErrKindMismatch = errors.New("node kind does not match the configured kind")

// KindMismatchError names the provider, the kind its config gives and the
// kind the node declared in Describe.
type KindMismatchError struct {
	Provider   string
	Configured string
	Declared   string
	Node       string // the node's own name from Info
}

func (e *KindMismatchError) Error() string {
	return fmt.Sprintf("provider %s is configured as kind %q, but its node %q declares kind %q", e.Provider, e.Configured, e.Node, e.Declared)
}

func (e *KindMismatchError) Unwrap() error { return ErrKindMismatch }

// checkKind compares what the node says it is with what the config says.
// An empty configured kind (pools built by hand, not from a config) is not
// checked.
func checkKind(provider, configured string, info externalnode.Info) error {
	if configured == "" || info.Kind == configured {
		return nil
	}
	return &KindMismatchError{Provider: provider, Configured: configured, Declared: info.Kind, Node: info.Name}
}
