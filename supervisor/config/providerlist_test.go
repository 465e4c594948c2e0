package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func parseNodes(t *testing.T, node string) (*Config, error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	y := "version: 1\nproviders:\n" +
		"  espeak: {kind: tts, binary: " + self + "}\n" +
		"  flite: {kind: tts, binary: " + self + "}\n" +
		"  rules: {kind: llm, binary: " + self + "}\n" +
		"pipeline:\n  nodes:\n    - " + node + "\n  edges:\n    - {from: ingress, to: tts}\n    - {from: tts, to: egress}\n"
	return Parse([]byte(y), filepath.Join(t.TempDir(), "c.yaml"))
}

func TestProviderListReachesTheKernel(t *testing.T) {
	c, err := parseNodes(t, "{id: tts, provider: [espeak, flite], timeout: 5s}")
	if err != nil {
		t.Fatal(err)
	}
	n := c.Graph().Nodes[0]
	if n.Provider != "espeak" || !slices.Equal(n.Providers, []string{"espeak", "flite"}) || n.OnFailure != "fallback" {
		t.Fatalf("node spec %+v", n)
	}
	if !c.Replaceable("espeak") || !c.Replaceable("flite") || c.Replaceable("rules") {
		t.Errorf("replaceable: espeak %v flite %v rules %v", c.Replaceable("espeak"), c.Replaceable("flite"), c.Replaceable("rules"))
	}
}

func TestSingleProviderKeepsWorking(t *testing.T) {
	for _, node := range []string{"{id: tts, provider: espeak}", "{id: tts, provider: [espeak]}"} {
		c, err := parseNodes(t, node)
		if err != nil {
			t.Fatalf("%s: %v", node, err)
		}
		n := c.Graph().Nodes[0]
		if n.Provider != "espeak" || n.Providers != nil || n.OnFailure != "" {
			t.Errorf("%s: node spec %+v", node, n)
		}
		if c.Replaceable("espeak") {
			t.Errorf("%s: a node's only provider is not replaceable", node)
		}
	}
	c, err := parseNodes(t, "{id: tts, provider: [espeak, flite], on_failure: abort}")
	if err != nil || c.Graph().Nodes[0].OnFailure != "abort" {
		t.Fatalf("explicit on_failure must stay: %v", err)
	}
}

func TestProviderListErrors(t *testing.T) {
	for _, tc := range []struct{ node, key, says string }{
		{"{id: tts, provider: [espeak, nope]}", "pipeline.nodes[0].provider[1]", "unknown provider"},
		{"{id: tts, provider: [espeak, espeak]}", "pipeline.nodes[0].provider[1]", "twice"},
		{"{id: tts, provider: [espeak, rules]}", "pipeline.nodes[0].provider[1]", "kind llm"},
		{"{id: tts, provider: []}", "", "list is empty"},
		{"{id: tts, provider: [espeak, flite], bogus: 1}", "", "bogus"},
		{"{id: tts, provider: {a: b}}", "", "cannot unmarshal"},
	} {
		_, err := parseNodes(t, tc.node)
		var ce *Error
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want a *config.Error saying %q", tc.node, err, tc.says)
			continue
		}
		if tc.key != "" && ce.Key != tc.key {
			t.Errorf("%s: key %q, want %q", tc.node, ce.Key, tc.key)
		}
	}
}
