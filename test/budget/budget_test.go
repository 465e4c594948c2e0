// Package budget tests RK-07 end to end: the real rspp binary, real
// plugin processes (pocketsphinx, rules, espeak), a budget rule per
// outcome; each crossing must be in the timeline with the rule that fired.
package budget

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/isolation"
	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/wav"
)

var bins testenv.Bins

func TestMain(m *testing.M) {
	isolation.MaybeSandboxMain()
	os.Exit(testenv.RunWithBins(m, "rspp-budget-bin-", &bins))
}

// result is one finished run.
type result struct {
	recs   []testenv.Record
	stdout string
	frames int64 // agent audio frames written
}

// run plays "hello there" (reply: "hello how can i help you") through
// the example pipeline at real time, with budgets appended to the config
// and a second TTS provider espeak2 (same binary, faster voice) available
// for a fallback.
func run(t *testing.T, budgets string) result {
	t.Helper()
	speechtest.Require(t)
	dir := t.TempDir()
	state, err := os.MkdirTemp("", "rb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	cfgPath, err := testenv.WriteConfig(dir, bins, testenv.ConfigOptions{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(raw), "providers:\n", "providers:\n  espeak2:\n    kind: tts\n    binary: "+bins.Provider["espeak"]+
		"\n    config:\n      rate: 220\n", 1) + budgets
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	pcm, err := speechtest.Synthesize(context.Background(), "hello there")
	if err != nil {
		t.Fatal(err)
	}
	in, out, tl := filepath.Join(dir, "in.wav"), filepath.Join(dir, "out.wav"), filepath.Join(dir, "timeline.jsonl")
	if err := wav.WriteFile(in, pcm); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.RSPP, "run", "--config", cfgPath, "--input", in, "--output", out, "--timeline", tl, "--realtime")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("rspp run: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	recs, err := testenv.ReadTimeline(tl)
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.CheckTerminals(recs); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	return result{recs: recs, stdout: stdout.String(), frames: (st.Size() - 44) / 640}
}

func (r result) find(typ string) []testenv.Record {
	var out []testenv.Record
	for _, rec := range r.recs {
		if rec.Type == typ {
			out = append(out, rec)
		}
	}
	return out
}

// fired is the one budget_exceeded record of rule.
func (r result) fired(t *testing.T, rule, outcome string) testenv.Record {
	t.Helper()
	var got []testenv.Record
	for _, rec := range r.find("budget_exceeded") {
		if rec.Attrs["rule"] == rule {
			got = append(got, rec)
		}
	}
	if len(got) != 1 || got[0].Attrs["outcome"] != outcome || got[0].TurnID == "" {
		t.Fatalf("budget_exceeded of %s: %+v\ntimeline: %v", rule, got, r.types())
	}
	return got[0]
}

func (r result) types() []string {
	var out []string
	for _, rec := range r.recs {
		out = append(out, rec.Type+"/"+rec.Reason)
	}
	return out
}

const replyText = "hello how can i help you"

// continue: the rules provider's call costs more than the rule allows;
// the crossing is recorded and the turn goes on to its whole reply.
func TestBudgetContinueWithRealPlugins(t *testing.T) {
	r := run(t, "budgets:\n  costs: {rules: 1, espeak: 2}\n  rules:\n"+
		"    - {name: llm-cost, scope: provider, target: rules, metric: cost, limit: 0.5, outcome: continue}\n")
	rec := r.fired(t, "llm-cost", "continue")
	if rec.Attrs["value"] != "1" || rec.Attrs["metric"] != "cost" || rec.Attrs["target"] != "rules" {
		t.Fatalf("record %+v", rec)
	}
	if len(r.find("turn_commit")) != 1 || !strings.Contains(r.stdout, "reply:      "+replyText) || r.frames < 50 {
		t.Fatalf("turn did not go on: %v\n%s (%d frames)", r.types(), r.stdout, r.frames)
	}
}

// degrade: the reply may have 10 characters; at the crossing the LLM's
// output is cut (its invocation ends there, as if finished) and the TTS
// speaks the shorter reply.
func TestBudgetDegradeTruncatesReplyWithRealPlugins(t *testing.T) {
	full := run(t, "")
	r := run(t, "budgets:\n  rules:\n"+
		"    - {name: short-reply, scope: node, target: llm, metric: chars, limit: 10, outcome: degrade}\n")
	rec := r.fired(t, "short-reply", "degrade")
	if rec.NodeID != "llm" || rec.Attrs["degrade"] != "truncate" || rec.Attrs["value"] != "14" {
		t.Fatalf("record %+v", rec)
	}
	truncated := false
	for _, e := range r.find("invocation_end") {
		truncated = truncated || e.NodeID == "llm" && strings.HasPrefix(e.Reason, "truncated: rule short-reply")
	}
	if !truncated || len(r.find("turn_commit")) != 1 {
		t.Fatalf("llm not cut or turn not committed: %v", r.types())
	}
	if r.frames == 0 || r.frames*10 > full.frames*7 {
		t.Fatalf("degraded reply %d frames, full reply %d: not shorter", r.frames, full.frames)
	}
	t.Logf("reply audio: %d frames degraded, %d in full", r.frames, full.frames)
}

// fallback: the TTS must produce its first output within 1 ms of its
// start, which espeak cannot (it waits for the reply); it is switched to
// espeak2, frozen at plan freeze, which speaks the reply.
func TestBudgetFallbackSwitchesProviderWithRealPlugins(t *testing.T) {
	r := run(t, "budgets:\n  rules:\n"+
		"    - {name: tts-late, scope: node, target: tts, metric: first_output, limit: 1ms, outcome: fallback, to: espeak2}\n")
	rec := r.fired(t, "tts-late", "fallback")
	if rec.Attrs["decision"] != "fallback" || !strings.HasPrefix(rec.Attrs["to"], "espeak2@") {
		t.Fatalf("record %+v", rec)
	}
	sw := r.find("provider_switch")
	if len(sw) != 1 || sw[0].Attrs["rule"] != "tts-late" || !strings.HasPrefix(sw[0].Attrs["from"], "espeak@") {
		t.Fatalf("provider_switch %+v", sw)
	}
	bound := false
	for _, s := range r.find("invocation_start") {
		bound = bound || s.NodeID == "tts" && strings.HasPrefix(s.Attrs["binding"], "espeak2@")
	}
	if !bound || len(r.find("turn_commit")) != 1 || r.frames < 30 {
		t.Fatalf("fallback did not speak: %v (%d frames)", r.types(), r.frames)
	}
}

// terminate: the turn may last 300 ms; a real utterance takes longer, so
// the turn aborts with the typed reason naming the rule, and nothing of
// it is spoken after the fence.
func TestBudgetTerminateAbortsTurnWithRealPlugins(t *testing.T) {
	r := run(t, "budgets:\n  rules:\n"+
		"    - {name: slow-turn, scope: turn, metric: total_time, limit: 300ms, outcome: terminate}\n")
	r.fired(t, "slow-turn", "terminate")
	ab := r.find("turn_abort")
	if len(ab) != 1 || !strings.HasPrefix(ab[0].Reason, "budget_exceeded: rule slow-turn: total_time") {
		t.Fatalf("abort %+v\n%v", ab, r.types())
	}
	if len(r.find("turn_commit")) != 0 || len(r.find("fence")) != 1 || r.frames != 0 {
		t.Fatalf("terminated turn went on: %v (%d frames)", r.types(), r.frames)
	}
}
