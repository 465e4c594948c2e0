package ruleset

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/providers/internal/textin"
	"github.com/rspp/rspp/providers/internal/tool"
)

// Name is the provider's name.
const Name = "rules"

// Config is the provider's config block. Exactly one of Replies and Table
// gives the rules.
type Config struct {
	// Replies is a YAML file (see File), relative to the runtime config's
	// directory.
	Replies string `json:"replies"`
	// Table gives the rules inline.
	Table []Rule `json:"table"`
	// Default is the reply when nothing matches (inline tables only; a
	// replies file carries its own).
	Default string `json:"default"`
	// TokenDelayMS paces the streamed words (default 0: as fast as
	// possible), to mimic an LLM's token rate.
	TokenDelayMS int `json:"token_delay_ms"`
}

// ErrNotConfigured is returned by Invoke before a successful Configure.
var ErrNotConfigured = errors.New("rules: Invoke before Configure")

type settings struct {
	table *Table
	delay time.Duration
}

// Node is the LLM stand-in node. Invocations may run concurrently.
type Node struct {
	version string
	cur     atomic.Pointer[settings]
}

// New returns a Node reporting version.
func New(version string) *Node { return &Node{version: version} }

// Info implements externalnode.Node.
func (n *Node) Info() externalnode.Info {
	return externalnode.Info{
		Name:    Name,
		Kind:    "llm",
		Version: n.version,
		Accepts: []eventabi.Type{eventabi.TypeTranscriptFinal, eventabi.TypeTextDelta, eventabi.TypeTextFinal},
		Emits:   []eventabi.Type{eventabi.TypeTextDelta, eventabi.TypeTextFinal},
		Caps:    externalnode.Capabilities{Declared: true, StreamingOutput: true, Languages: []string{"en"}},
	}
}

// Configure implements externalnode.Node: it loads and checks the table.
func (n *Node) Configure(ctx context.Context, cfg externalnode.Config) error {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	if c.TokenDelayMS < 0 {
		return &tool.ConfigError{Field: "token_delay_ms", Reason: "must not be negative"}
	}
	var (
		t   *Table
		err error
	)
	switch {
	case c.Replies != "" && (c.Table != nil || c.Default != ""):
		return &tool.ConfigError{Field: "replies", Reason: "give either a replies file or an inline table (with default), not both"}
	case c.Replies != "":
		path := cfg.Path(c.Replies)
		if err := tool.CheckFile("replies", path, false); err != nil {
			return err
		}
		t, err = Load(path)
	case c.Table != nil:
		t, err = NewTable(c.Table, c.Default)
	default:
		return &tool.ConfigError{Field: "replies", Reason: "required (or an inline table)"}
	}
	if err != nil {
		return err
	}
	n.cur.Store(&settings{table: t, delay: time.Duration(c.TokenDelayMS) * time.Millisecond})
	return nil
}

// Invoke implements externalnode.Node: it reads the user's text until the
// inputs close, looks up the reply and streams it as one text.delta per
// word, then one text.final with the whole reply. The deltas concatenate to
// exactly the final text (each word but the last carries its trailing
// space).
func (n *Node) Invoke(ctx context.Context, call *externalnode.Call) error {
	st := n.cur.Load()
	if st == nil {
		return ErrNotConfigured
	}
	text, err := textin.Collect(ctx, call.Inputs())
	if err != nil {
		return err
	}
	words := strings.Fields(st.table.Reply(text))
	reply := strings.Join(words, " ")
	var tick *time.Ticker
	if st.delay > 0 {
		tick = time.NewTicker(st.delay)
		defer tick.Stop()
	}
	for i, w := range words {
		if tick != nil && i > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if i < len(words)-1 {
			w += " "
		}
		if err := call.EmitText(eventabi.TypeTextDelta, w, false); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return call.EmitText(eventabi.TypeTextFinal, reply, true)
}
