// Package ruleset is the engine of the rules provider: a local,
// deterministic stand-in for an LLM. It maps what the user said to a canned
// reply from a table (exact match, then substring match in table order, then
// a default) and streams the reply word by word like an LLM streams tokens.
//
// It exists so the walking skeleton and its tests run offline and
// reproducibly; it is not a language model and must never pretend to be one
// in anything a user reads (its Info says Name "rules").
package ruleset

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// Fallback is the reply when nothing matches and the table has no default.
const Fallback = "sorry, I did not understand"

// Rule maps a phrase to a reply.
type Rule struct {
	Match string `yaml:"match" json:"match"`
	Reply string `yaml:"reply" json:"reply"`
}

// File is the layout of a replies YAML file.
type File struct {
	Default string `yaml:"default"`
	Rules   []Rule `yaml:"rules"`
}

// RuleError says which rule of a table is unusable.
type RuleError struct {
	Index  int // 0-based position in the table
	Match  string
	Reason string
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("rules: rule %d (match %q): %s", e.Index, e.Match, e.Reason)
}

// ErrEmptyFile is returned by Parse for a document with no content.
var ErrEmptyFile = errors.New("rules: replies file is empty")

// Table is an immutable reply table, safe for concurrent use.
type Table struct {
	rules []Rule // Match normalised
	def   string
}

// NewTable checks and normalises rules. Every rule needs a match that is not
// empty after normalisation (it would match everything) and a reply; a
// match may appear only once.
func NewTable(rules []Rule, def string) (*Table, error) {
	t := &Table{def: def, rules: make([]Rule, 0, len(rules))}
	seen := make(map[string]bool, len(rules))
	for i, r := range rules {
		m := Normalize(r.Match)
		switch {
		case m == "":
			return nil, &RuleError{Index: i, Match: r.Match, Reason: "match is empty"}
		case strings.TrimSpace(r.Reply) == "":
			return nil, &RuleError{Index: i, Match: r.Match, Reason: "reply is empty"}
		case seen[m]:
			return nil, &RuleError{Index: i, Match: r.Match, Reason: "duplicate match"}
		}
		seen[m] = true
		t.rules = append(t.rules, Rule{Match: m, Reply: r.Reply})
	}
	return t, nil
}

// Parse reads a replies YAML document (see File); unknown keys are errors.
func Parse(b []byte) (*Table, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ErrEmptyFile
		}
		return nil, fmt.Errorf("rules: %w", err)
	}
	return NewTable(f.Rules, f.Default)
}

// Load reads and parses a replies YAML file; errors name the path.
func Load(path string) (*Table, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Reply returns the reply to text: the rule whose match equals the
// normalised text, else the first rule (in table order) whose match occurs
// in it as whole words, else the default, else Fallback.
func (t *Table) Reply(text string) string {
	in := Normalize(text)
	for _, r := range t.rules {
		if r.Match == in {
			return r.Reply
		}
	}
	padded := " " + in + " "
	for _, r := range t.rules {
		if strings.Contains(padded, " "+r.Match+" ") {
			return r.Reply
		}
	}
	if t.def != "" {
		return t.def
	}
	return Fallback
}

// Normalize lowercases s, drops punctuation other than apostrophes inside
// words, trims it and collapses runs of white space to one space.
func Normalize(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'':
			return unicode.ToLower(r)
		default:
			return ' '
		}
	}, s)
	return strings.Join(strings.Fields(s), " ")
}
