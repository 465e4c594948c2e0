// Package replay tests `rspp replay` end to end on timelines recorded by
// the real runtime with real plugin processes (pocketsphinx, rules,
// espeak): OR-02 evidence and byte-for-byte resimulation of a `rspp
// chaos` run, and playback of a `rspp run` recording with the providers
// served from their recorded outputs.
//
// The chaos run lasts RSPP_REPLAY_CHAOS (default 12s) with a fault every
// 2 s; the full form of the must-show is
//
//	RSPP_REPLAY_CHAOS=60s go test ./test/replay -run Chaos -v
//
// (make replay-chaos).
package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/isolation"
	"github.com/rspp/rspp/kernel"
	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/wav"
)

var bins testenv.Bins

func TestMain(m *testing.M) {
	isolation.MaybeSandboxMain()
	os.Exit(testenv.RunWithBins(m, "rspp-replay-bin-", &bins))
}

// exampleConfig writes examples/<name> into dir pointing at the built
// binaries (binary overrides a provider's binary), the example grammar
// and the reply table replies.
func exampleConfig(t *testing.T, dir, name, replies string, binary map[string]string) string {
	t.Helper()
	root := testenv.MustModuleRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	for _, p := range testenv.Providers {
		path := bins.Provider[p]
		if b, ok := binary[p]; ok {
			path = b
		}
		cfg = strings.ReplaceAll(cfg, "../bin/providers/"+p, path)
	}
	cfg = strings.ReplaceAll(cfg, " grammar.jsgf", " "+filepath.Join(root, "examples", "grammar.jsgf"))
	cfg = strings.ReplaceAll(cfg, " replies.yaml", " "+replies)
	state, err := os.MkdirTemp("", "rr") // unix socket paths must stay short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	if strings.Contains(cfg, "\nruntime:\n") {
		cfg = strings.Replace(cfg, "\nruntime:\n", "\nruntime:\n  state_dir: "+state+"\n", 1)
	} else {
		cfg += "\nruntime:\n  state_dir: " + state + "\n"
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func exampleReplies(t *testing.T) string {
	return filepath.Join(testenv.MustModuleRoot(t), "examples", "replies.yaml")
}

// rspp runs the built rspp with args, bounded by limit.
func rspp(t *testing.T, limit time.Duration, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bins.RSPP, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("rspp %v did not finish within %v\nstdout:\n%s\nstderr:\n%s", args, limit, &stdout, &stderr)
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

func requireTools(t *testing.T) {
	t.Helper()
	speechtest.Require(t)
	for _, tool := range []string{"espeak-ng", "sox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make deps)", tool)
		}
	}
}

var evidenceLine = regexp.MustCompile(`evidence: (\d+) of (\d+) accepted turns complete \(([0-9.]+)%\) in (\d+) sessions`)

// `rspp chaos` then `rspp replay --check` and `--mode resimulate` on its
// timeline: every accepted turn has its evidence, every session's
// resimulated timeline hash equals the recorded one; a timeline with an
// input removed fails the check naming the turn.
func TestChaosTimelineHasEvidenceAndResimulates(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run")
	}
	requireTools(t)
	dur := os.Getenv("RSPP_REPLAY_CHAOS")
	if dur == "" {
		dur = "12s"
	}
	d, err := time.ParseDuration(dur)
	if err != nil {
		t.Fatalf("RSPP_REPLAY_CHAOS=%q: %v", dur, err)
	}
	dir := t.TempDir()
	cfg := exampleConfig(t, dir, "voice-agent-ha.yaml", exampleReplies(t), nil)
	tl := filepath.Join(dir, "chaos.jsonl")
	out, errOut, code := rspp(t, d+3*time.Minute, "chaos", "--config", cfg, "--duration", dur, "--kill-every", "2s", "--timeline", tl)
	if code != 0 {
		t.Fatalf("chaos exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("chaos:\n%s", out)
	m := regexp.MustCompile(`faults injected: (\d+)`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" {
		t.Fatalf("no fault injected:\n%s", out)
	}
	opened := regexp.MustCompile(`turns opened: (\d+)`).FindStringSubmatch(out)

	out, errOut, code = rspp(t, 5*time.Minute, "replay", "--check", "--mode", "resimulate", tl)
	if code != 0 {
		t.Fatalf("replay exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("replay:\n%s", out)
	ev := evidenceLine.FindStringSubmatch(out)
	if ev == nil || ev[1] != ev[2] || ev[3] != "100.0" || ev[1] == "0" {
		t.Fatalf("evidence line wrong: %v\n%s", ev, out)
	}
	if opened == nil || opened[1] != ev[2] {
		t.Fatalf("chaos opened %v turns, replay --check saw %s", opened, ev[2])
	}
	sessions, _ := strconv.Atoi(ev[4])
	okLine := regexp.MustCompile(`(?m)^session \S+: recorded ([0-9a-f]{64}) resimulated ([0-9a-f]{64}) records \d+ inputs \d+ OK$`)
	lines := okLine.FindAllStringSubmatch(out, -1)
	if len(lines) != sessions || sessions == 0 {
		t.Fatalf("%d sessions resimulated OK of %d:\n%s", len(lines), sessions, out)
	}
	for _, l := range lines {
		if l[1] != l[2] {
			t.Fatalf("hash differs but reported OK: %s", l[0])
		}
	}
	if !strings.Contains(out, fmt.Sprintf("resimulate: %d of %d sessions reproduce", sessions, sessions)) {
		t.Fatalf("resimulate summary missing:\n%s", out)
	}

	// The check is not vacuous: remove one input of a turn and it fails,
	// naming that turn; resimulation of that session fails too.
	raw, err := os.ReadFile(tl)
	if err != nil {
		t.Fatal(err)
	}
	var kept [][]byte
	victim := ""
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var r kernel.TimelineRecord
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		if victim == "" && r.Input != nil && r.Input.Kind == kernel.InputNodeEvent {
			victim = r.SessionID
			continue
		}
		kept = append(kept, line)
	}
	if victim == "" {
		t.Fatal("chaos timeline has no recorded node output")
	}
	cut := filepath.Join(dir, "cut.jsonl")
	if err := os.WriteFile(cut, append(bytes.Join(kept, []byte("\n")), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code = rspp(t, 5*time.Minute, "replay", "--check", "--mode", "resimulate", cut)
	if code != 1 {
		t.Fatalf("replay of a timeline with a hole exited %d\n%s", code, out)
	}
	if !regexp.MustCompile(`missing evidence: session ` + regexp.QuoteMeta(victim) + ` turn \S+ \(level full\): \[inputs \d+\.\.\d+ not recorded`).MatchString(out) {
		t.Fatalf("check does not name the turn of session %s:\n%s", victim, out)
	}
	if !regexp.MustCompile(`(?m)^session ` + regexp.QuoteMeta(victim) + `: .* FAIL`).MatchString(out) {
		t.Fatalf("resimulation of session %s with a hole did not fail:\n%s", victim, out)
	}
}

var phrases = []string{"what time is it", "hello there", "tell me a joke"}

// recordRun runs `rspp run` on the phrases (silence between) through cfg and
// returns the timeline.
func recordRun(t *testing.T, dir, cfg string) string {
	t.Helper()
	var pcm []byte
	silence := make([]byte, 2*16000*3/2) // 1.5 s
	pcm = append(pcm, silence...)
	for _, p := range phrases {
		clip, err := speechtest.Synthesize(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		pcm = append(append(pcm, clip...), silence...)
	}
	in := filepath.Join(dir, "in.wav")
	if err := wav.WriteFile(in, pcm); err != nil {
		t.Fatal(err)
	}
	tl := filepath.Join(dir, "run.jsonl")
	out, errOut, code := rspp(t, 3*time.Minute, "run", "--config", cfg, "--input", in, "--output", filepath.Join(dir, "out.wav"), "--timeline", tl, "--realtime")
	if code != 0 {
		t.Fatalf("run exit %d\n%s\n%s", code, out, errOut)
	}
	return tl
}

// llmReplies are the replies (text.final of node llm) a timeline's
// recorded inputs say the kernel accepted, in order.
func llmReplies(t *testing.T, path string) []string {
	t.Helper()
	recs, err := testenv.ReadTimeline(path)
	if err != nil {
		t.Fatal(err)
	}
	llmInv := map[string]bool{}
	var out []string
	for _, r := range recs {
		if r.Type == "invocation_start" && r.NodeID == "llm" {
			llmInv[r.InvocationID] = true
		}
		in := r.Input
		if in != nil && in.Kind == kernel.InputNodeEvent && in.Verdict == "" && llmInv[in.Inv] &&
			in.Event.Type == eventabi.TypeTextFinal && in.Event.Text != nil {
			out = append(out, in.Event.Text.Text)
		}
	}
	return out
}

// `--mode playback` of a `rspp run` recording under the same example
// config, with every provider binary replaced by one that leaves a mark
// if it is ever started: the recorded replies come out again and no
// plugin process starts.
func TestPlaybackReproducesRepliesWithoutPlugins(t *testing.T) {
	requireTools(t)
	dir := t.TempDir()
	tl := recordRun(t, dir, exampleConfig(t, dir, "voice-agent.yaml", exampleReplies(t), nil))
	want := llmReplies(t, tl)
	if len(want) != len(phrases) {
		t.Fatalf("recording has replies %q for %d phrases", want, len(phrases))
	}
	mark := filepath.Join(dir, "started")
	trap := filepath.Join(dir, "trap")
	if err := os.WriteFile(trap, []byte("#!/bin/sh\necho \"$0\" >> "+mark+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pbDir := filepath.Join(dir, "pb")
	if err := os.Mkdir(pbDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := exampleConfig(t, pbDir, "voice-agent.yaml", exampleReplies(t), map[string]string{"pocketsphinx": trap, "rules": trap, "espeak": trap})
	played := filepath.Join(dir, "played.jsonl")
	out, errOut, code := rspp(t, 2*time.Minute, "replay", "--mode", "playback", "--config", cfg, "--timeline", played, tl)
	if code != 0 {
		t.Fatalf("playback exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("playback:\n%s", out)
	if _, err := os.Stat(mark); err == nil {
		b, _ := os.ReadFile(mark)
		t.Fatalf("playback started plugin processes: %s", b)
	}
	if !strings.Contains(out, "run for real: none") || !strings.Contains(out, "playback: 0 turns changed") {
		t.Fatalf("playback report:\n%s", out)
	}
	if got := llmReplies(t, played); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("played replies %q, recorded %q", got, want)
	}
}

// After a deliberate config change (another reply table) playback runs
// the changed provider for real and prints exactly the turns whose reply
// changed.
func TestPlaybackPrintsTurnsChangedByAnotherReplyTable(t *testing.T) {
	requireTools(t)
	dir := t.TempDir()
	tl := recordRun(t, dir, exampleConfig(t, dir, "voice-agent.yaml", exampleReplies(t), nil))
	raw, err := os.ReadFile(exampleReplies(t))
	if err != nil {
		t.Fatal(err)
	}
	const old, changed = "reply: hello how can i help you", "reply: goodbye and see you soon"
	if !bytes.Contains(raw, []byte(old)) {
		t.Fatalf("examples/replies.yaml has no %q", old)
	}
	// Where the plugin (sandboxed, another uid) may read it.
	pub, err := os.MkdirTemp("", "rr-replies")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pub) })
	if err := os.Chmod(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	replies := filepath.Join(pub, "other-replies.yaml")
	if err := os.WriteFile(replies, bytes.Replace(raw, []byte(old), []byte(changed), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	pbDir := filepath.Join(dir, "pb")
	if err := os.Mkdir(pbDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := exampleConfig(t, pbDir, "voice-agent.yaml", replies, nil)
	out, errOut, code := rspp(t, 2*time.Minute, "replay", "--mode", "playback", "--config", cfg, tl)
	if code != 0 {
		t.Fatalf("playback exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("playback:\n%s", out)
	if !strings.Contains(out, "run for real: rules") {
		t.Fatalf("the changed provider did not run for real:\n%s", out)
	}
	// "hello there" is the second phrase: turn 2, and only it.
	wantTurn := regexp.MustCompile(`(?m)^changed: session \S+ turn 2\n  llm: - text.final: "hello how can i help you"\n  llm: \+ text.final: "goodbye and see you soon"$`)
	if !wantTurn.MatchString(out) || strings.Count(out, "changed: session") != 1 || !strings.Contains(out, "playback: 1 turns changed") {
		t.Fatalf("playback did not print exactly turn 2 as changed:\n%s", out)
	}
}
