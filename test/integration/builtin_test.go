package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/wav"
)

// The example with a builtin text filter between llm and tts, through
// `rspp run`: the filter's rewrite is what the tts speaks (the agent's
// audio decodes as the rewritten reply), the timeline shows the filter's
// output, and the run starts no process beyond rspp and its three
// plugins.
func TestBuiltinFilterRewritesTheSpokenReply(t *testing.T) {
	speechtest.Require(t)
	root := testenv.MustModuleRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "examples", "voice-agent-filter.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r := newRunDirs(t)
	state := r.state
	cfg := strings.ReplaceAll(string(raw), "../bin/providers/", filepath.Join(bins.Dir, "providers")+"/")
	for _, f := range []string{"grammar.jsgf", "replies.yaml"} {
		cfg = strings.ReplaceAll(cfg, " "+f, " "+filepath.Join(root, "examples", f))
	}
	cfg += "\nruntime:\n  state_dir: " + state + "\n"
	r.cfg = filepath.Join(r.dir, "config.yaml")
	if err := os.WriteFile(r.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	pcm, err := speechtest.Synthesize(context.Background(), "what time is it")
	if err != nil {
		t.Fatal(err)
	}
	r.in, r.out, r.timeline = filepath.Join(r.dir, "in.wav"), filepath.Join(r.dir, "out.wav"), filepath.Join(r.dir, "timeline.jsonl")
	if err := wav.WriteFile(r.in, pcm); err != nil {
		t.Fatal(err)
	}
	r.start(t, "--realtime")
	// The user is still speaking: every provider is up.
	r.waitRecord(t, "turn_active", hasType("turn_active"))
	procs := testenv.ProcsUnder(bins.Dir)
	if code := r.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("rspp exit %d\nstdout:\n%s\nstderr:\n%s", code, &r.stdout, &r.stderr)
	}
	if len(procs) != 4 {
		t.Errorf("processes under the run's binaries: %v, want rspp and its 3 plugins", procs)
	}
	if out := r.stdout.String(); !strings.Contains(out, "it is time for tea") || !strings.Contains(out, "1 committed, 0 aborted") {
		t.Errorf("stdout:\n%s", out)
	}
	recs := r.records(t)
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Fatal(err)
	}
	finals := map[string]string{}
	for _, rec := range recs {
		if in := rec.Input; in != nil && in.Kind == kernel.InputNodeEvent && in.Event != nil && in.Event.Type == "text.final" {
			finals[in.Event.NodeID] = in.Event.Text.Text
		}
	}
	if finals["llm"] != "it is time to test" || finals["filter"] != "it is time for tea" {
		t.Fatalf("recorded text.final by node: %v", finals)
	}
	grammar := filepath.Join(r.dir, "heard.jsgf")
	if err := os.WriteFile(grammar, []byte("#JSGF V1.0;\ngrammar heard;\npublic <reply> = it is time to test | it is time for tea ;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	heard, err := speechtest.Decode(context.Background(), r.out, grammar)
	if err != nil {
		t.Fatal(err)
	}
	if heard != "it is time for tea" {
		t.Fatalf("agent audio decodes as %q, want the filtered reply", heard)
	}
	r.assertNothingLeft(t)
}
