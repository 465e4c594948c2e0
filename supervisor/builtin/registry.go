package builtin

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
)

// Builtin is one node a config may name with `builtin: NAME`.
type Builtin struct {
	Name    string
	Kind    string // the provider kind it serves: stt, llm, tts or custom
	Version string // shows up in turn bindings
	// Accepts and Emits are its declared event types (empty: any), as a
	// plugin's Info declares them.
	Accepts, Emits []eventabi.Type
	// New checks the provider's config block (unknown fields refused) and
	// makes the factory of its nodes.
	New func(cfg externalnode.Config) (Factory, error)
}

// PoolKey is the pool key a builtin provider binds to: "builtin:" and
// the provider's name.
func PoolKey(provider string) string { return "builtin:" + provider }

// ErrUnknown is the kind of an unknown builtin name.
var ErrUnknown = errors.New("unknown builtin")

// UnknownError names the builtin asked for and the ones there are.
type UnknownError struct {
	Name  string
	Known []string
}

func (e *UnknownError) Error() string {
	return fmt.Sprintf("unknown builtin %q (known: %s)", e.Name, strings.Join(e.Known, ", "))
}

func (e *UnknownError) Unwrap() error { return ErrUnknown }

// registry is every builtin, by name.
var registry = map[string]Builtin{
	textFilter.Name:  textFilter,
	passthrough.Name: passthrough,
}

// Lookup returns the builtin called name, or an *UnknownError.
func Lookup(name string) (Builtin, error) {
	b, ok := registry[name]
	if !ok {
		return Builtin{}, &UnknownError{Name: name, Known: Names()}
	}
	return b, nil
}

// Names lists the builtins, sorted.
func Names() []string {
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
