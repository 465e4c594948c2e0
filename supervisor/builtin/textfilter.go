package builtin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
)

// textFilter rewrites the text passing through it: put between the llm
// and the tts, it changes what the agent says.
//
//	providers:
//	  filter:
//	    builtin: text-filter
//	    config: {replace: {"darn": "d**n"}, lowercase: false}
//
// Each text.delta and text.final is rewritten on its own: lowercased
// first (lowercase: true), then every replace key is replaced by its
// value (longest key first where keys overlap). A key split across two
// deltas is not seen in either; the text.final, which carries the whole
// reply and is what a tts speaks when it has one, is.
var textFilter = Builtin{
	Name: "text-filter", Kind: "custom", Version: "1.0.0",
	Accepts: []eventabi.Type{eventabi.TypeTextDelta, eventabi.TypeTextFinal},
	Emits:   []eventabi.Type{eventabi.TypeTextDelta, eventabi.TypeTextFinal},
	New:     newTextFilter,
}

// textFilterConfig is the config block of the text-filter builtin.
type textFilterConfig struct {
	Replace   map[string]string `json:"replace"`
	Lowercase bool              `json:"lowercase"`
}

// ErrBadFilter is the kind of a text-filter config error.
var ErrBadFilter = errors.New("bad text-filter config")

func newTextFilter(cfg externalnode.Config) (Factory, error) {
	var c textFilterConfig
	if err := cfg.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadFilter, err)
	}
	if len(c.Replace) == 0 && !c.Lowercase {
		return nil, fmt.Errorf("%w: node %q: give replace or lowercase: true (it would change nothing)", ErrBadFilter, cfg.NodeID)
	}
	keys := make([]string, 0, len(c.Replace))
	for k := range c.Replace {
		if k == "" {
			return nil, fmt.Errorf("%w: node %q: replace has an empty key", ErrBadFilter, cfg.NodeID)
		}
		keys = append(keys, k)
	}
	// strings.Replacer tries its pairs in argument order at each position:
	// longest first, so "darn it" wins over "darn".
	sort.Slice(keys, func(i, j int) bool {
		if len(keys[i]) != len(keys[j]) {
			return len(keys[i]) > len(keys[j])
		}
		return keys[i] < keys[j]
	})
	pairs := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		pairs = append(pairs, k, c.Replace[k])
	}
	f := &filter{lower: c.Lowercase, r: strings.NewReplacer(pairs...)}
	return func() Node { return f }, nil
}

// filter is stateless: one value serves every invocation.
type filter struct {
	lower bool
	r     *strings.Replacer
}

// Rewrite is what the filter makes of one text.
func (f *filter) Rewrite(s string) string {
	if f.lower {
		s = strings.ToLower(s)
	}
	return f.r.Replace(s)
}

func (f *filter) Init(context.Context, Config) error { return nil }

func (f *filter) OnEvent(_ context.Context, ev eventabi.Event, emit Emit) error {
	if ev.Text == nil {
		return nil
	}
	return emit(eventabi.Event{Type: ev.Type, Text: &eventabi.Text{Text: f.Rewrite(ev.Text.Text), Final: ev.Text.Final}})
}

func (f *filter) OnCancel(context.Context, string) error { return nil }
func (f *filter) Shutdown(context.Context) error         { return nil }
