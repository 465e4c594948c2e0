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

func TestRequiresReachTheKernel(t *testing.T) {
	c, err := parseNodes(t, "{id: tts, provider: [espeak, flite], requires: {language: en-US, streaming_output: true}}")
	if err != nil {
		t.Fatal(err)
	}
	r := c.Graph().Nodes[0].Requires
	if r.Language != "en-US" || !r.StreamingOutput || r.SampleRate != AudioSampleRate {
		t.Fatalf("requirements %+v (a tts node requires the runtime's 16 kHz audio by default)", r)
	}
	for _, tc := range []struct{ node, key string }{
		{"{id: tts, provider: espeak, requires: {language: 'not a tag'}}", "pipeline.nodes[0].requires.language"},
		{"{id: tts, provider: espeak, requires: {sample_rate: 100}}", "pipeline.nodes[0].requires.sample_rate"},
	} {
		_, err := parseNodes(t, tc.node)
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != tc.key {
			t.Errorf("%s: %v, want a *config.Error on %s", tc.node, err, tc.key)
		}
	}
	if _, err := parseNodes(t, "{id: tts, provider: espeak, requires: {accent: posh}}"); err == nil || !strings.Contains(err.Error(), "accent") {
		t.Errorf("unknown requirement accepted: %v", err)
	}
}

// FuzzPipelineNode: any node text either parses or fails as a *config.Error;
// a list's first provider is always the node's provider.
func FuzzPipelineNode(f *testing.F) {
	for _, s := range []string{"{id: tts, provider: [espeak, flite]}", "{id: tts, provider: espeak}", "{id: tts, provider: []}",
		"{id: tts, provider: [espeak, flite], requires: {language: de}}", "{id: tts, provider: [[a]]}", "[1, 2]"} {
		f.Add(s)
	}
	self, err := os.Executable()
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, node string) {
		y := "version: 1\nproviders:\n  espeak: {kind: tts, binary: " + self + "}\n  flite: {kind: tts, binary: " + self + "}\n" +
			"pipeline:\n  nodes:\n    - " + node + "\n  edges:\n    - {from: ingress, to: tts}\n    - {from: tts, to: egress}\n"
		c, err := Parse([]byte(y), filepath.Join(dir, "c.yaml"))
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		for _, n := range c.Graph().Nodes {
			if len(n.Providers) > 0 && n.Providers[0] != n.Provider {
				t.Fatalf("list %v does not start with %s", n.Providers, n.Provider)
			}
		}
	})
}
