package builtin

import (
	"context"
	"fmt"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
)

// passthrough forwards every input unchanged (a tap point in a graph, or
// a stand-in while a real node is written). It takes no config.
var passthrough = Builtin{Name: "passthrough", Kind: "custom", Version: "1.0.0", New: newPassthrough}

func newPassthrough(cfg externalnode.Config) (Factory, error) {
	if len(cfg.Raw) > 0 && string(cfg.Raw) != "{}" {
		return nil, fmt.Errorf("builtin passthrough (node %q) takes no config, got %s", cfg.NodeID, cfg.Raw)
	}
	return func() Node { return forward{} }, nil
}

type forward struct{}

func (forward) Init(context.Context, Config) error { return nil }

func (forward) OnEvent(_ context.Context, ev eventabi.Event, emit Emit) error {
	// A fresh event of the same content: the ids are this node's.
	return emit(eventabi.Event{Type: ev.Type, Lane: ev.Lane, Text: ev.Text, Audio: ev.Audio, Control: ev.Control, MediaNanos: ev.MediaNanos})
}

func (forward) OnCancel(context.Context, string) error { return nil }
func (forward) Shutdown(context.Context) error         { return nil }
