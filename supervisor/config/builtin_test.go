package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// builtinConfig is a pipeline llm -> filter -> tts where filter is the
// given provider block.
func builtinConfig(t *testing.T, filter string) (*Config, error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	y := "version: 1\nproviders:\n  llm:\n    kind: llm\n    binary: " + self + "\n  tts:\n    kind: tts\n    binary: " + self + "\n  filter:\n" + filter +
		"pipeline:\n  nodes:\n    - {id: llm, provider: llm}\n    - {id: filter, provider: filter}\n    - {id: tts, provider: tts}\n" +
		"  edges:\n    - {from: ingress, to: llm}\n    - {from: llm, to: filter}\n    - {from: filter, to: tts}\n    - {from: tts, to: egress}\n"
	return Parse([]byte(y), filepath.Join(t.TempDir(), "c.yaml"))
}

func TestBuiltinProvider(t *testing.T) {
	c, err := builtinConfig(t, "    builtin: text-filter\n    config: {replace: {\"darn\": \"d**n\"}, lowercase: false}\n")
	if err != nil {
		t.Fatal(err)
	}
	p := c.Providers["filter"]
	if p.Kind != "custom" || p.Profile != "trusted" || p.BinaryPath != "" || string(p.ConfigJSON) != `{"lowercase":false,"replace":{"darn":"d**n"}}` {
		t.Fatalf("provider %+v", p)
	}
	if g := c.Graph(); g.Nodes[1].Kind != "custom" {
		t.Fatalf("the graph's filter node has kind %q, want the builtin's", g.Nodes[1].Kind)
	}
	if _, err := builtinConfig(t, "    builtin: text-filter\n    kind: custom\n    config: {lowercase: true}\n"); err != nil {
		t.Fatalf("a matching kind: %v", err)
	}
}

func TestBuiltinProviderErrors(t *testing.T) {
	self, _ := os.Executable()
	for _, c := range []struct{ block, key, says string }{
		{"    builtin: vad9000\n", "providers.filter.builtin", `unknown builtin "vad9000" (known: passthrough, text-filter)`},
		{"    builtin: text-filter\n    binary: " + self + "\n    config: {lowercase: true}\n", "providers.filter.binary", "give binary or builtin, not both"},
		{"    builtin: text-filter\n    kind: tts\n    config: {lowercase: true}\n", "providers.filter.kind", "serves kind custom"},
		{"    builtin: text-filter\n    instances: 2\n    config: {lowercase: true}\n", "providers.filter.instances", "does not apply"},
		{"    builtin: text-filter\n    profile: tenant\n    config: {lowercase: true}\n", "providers.filter.profile", "does not apply"},
		{"    builtin: text-filter\n    config: {replace: {a: b}, upper: true}\n", "providers.filter.config", `unknown field "upper"`},
		{"    builtin: text-filter\n", "providers.filter.config", "would change nothing"},
		{"    kind: custom\n", "providers.filter.binary", "or builtin: one of passthrough, text-filter"},
	} {
		_, err := builtinConfig(t, c.block)
		var ce *Error
		if !errors.As(err, &ce) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v, want a *config.Error", c.block, err)
			continue
		}
		if ce.Key != c.key || !strings.Contains(ce.Msg, c.says) {
			t.Errorf("%q: %s: %s, want key %s saying %q", c.block, ce.Key, ce.Msg, c.key, c.says)
		}
	}
}
