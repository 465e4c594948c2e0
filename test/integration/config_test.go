package integration

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/test/testenv"
)

// Bad config: exit 2, a message naming the key or file, and no plugin
// process started (nothing starts half-way).
func TestBadConfigExits2NamingTheKey(t *testing.T) {
	cases := []struct {
		name, from, to, wantKey string
	}{
		{"unknown key", "vad: {", "vad: {colour: blue, ", "colour"},
		{"missing binary", "/providers/espeak\n", "/providers/espeak-missing\n", "providers.espeak.binary"},
		{"bad value", "timeout: 15s}\n    - {id: llm", "timeout: soon}\n    - {id: llm", "soon"},
		{"unknown provider", "provider: rules", "provider: gpt", "pipeline.nodes[1].provider"},
		{"bad kind", "kind: tts", "kind: video", "providers.espeak.kind"},
		{"bad share", "kind: tts\n", "kind: tts\n    profile: tenant\n    share: everyone\n", "providers.espeak.share"},
		{"cycle", "{from: tts, to: egress}", "{from: tts, to: egress}\n    - {from: tts, to: stt}", "pipeline"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRun(t, "hello there", testenv.ConfigOptions{})
			raw, err := os.ReadFile(r.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(raw), c.from) {
				t.Fatalf("test config lacks %q", c.from)
			}
			if err := os.WriteFile(r.cfg, []byte(strings.Replace(string(raw), c.from, c.to, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			r.start(t)
			if code := r.wait(t, 20*time.Second); code != 2 {
				t.Fatalf("exit %d, want 2\nstderr:\n%s", code, &r.stderr)
			}
			msg := r.stderr.String()
			if !strings.Contains(msg, c.wantKey) || !strings.Contains(msg, "config.yaml") {
				t.Fatalf("message does not name %q and the file:\n%s", c.wantKey, msg)
			}
			if _, err := os.Stat(r.out); err == nil {
				t.Error("output file was created: something started")
			}
			r.assertNothingLeft(t)
		})
	}
}
