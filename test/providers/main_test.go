// Package providers runs the example pipeline with the real provider
// plugins of RK-08: the openai LLM against a local OpenAI-compatible
// server written for the test (openaitest), and a TTS provider list
// [espeak, flite] with espeak broken, to check what a user would hear and
// what the timeline says.
package providers

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"text/template"
	"time"

	"github.com/rspp/rspp/isolation"
	"github.com/rspp/rspp/providers/openai/openaitest"
	"github.com/rspp/rspp/providers/rules/ruleset"
	"github.com/rspp/rspp/providers/speechtest"
	"github.com/rspp/rspp/test/testenv"
	"github.com/rspp/rspp/transports/wav"
)

// providerBins are the plugins these tests run.
var providerBins = []string{"pocketsphinx", "rules", "espeak", "openai", "flite"}

var bins testenv.Bins

func TestMain(m *testing.M) {
	// In-process runtimes start plugins through the sandbox entry point,
	// which re-executes this binary.
	isolation.MaybeSandboxMain()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "rspp-providers-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil { // unprivileged plugin uids exec from here
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if bins, err = build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "building binaries:", err)
		return 1
	}
	code := m.Run()
	if left := testenv.ProcsUnder(dir); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "processes left behind: %v\n", left)
		code = 1
	}
	return code
}

func build(dir string) (testenv.Bins, error) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		return testenv.Bins{}, err
	}
	b := testenv.Bins{Dir: dir, RSPP: filepath.Join(dir, "rspp"), Provider: map[string]string{}}
	targets := map[string]string{b.RSPP: "./cmd/runtime"}
	for _, p := range providerBins {
		b.Provider[p] = filepath.Join(dir, "providers", p)
		targets[b.Provider[p]] = "./providers/" + p
	}
	for out, pkg := range targets {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return testenv.Bins{}, fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
		}
	}
	return b, nil
}

// requireFlite skips unless flite is installed (apt: flite).
func requireFlite(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("flite"); err != nil {
		t.Skip("flite not installed (apt-get install flite)")
	}
}

// pipeline shapes a config of the example pipeline (examples/voice-agent.yaml).
type pipeline struct {
	State    string
	Examples string
	Bins     testenv.Bins
	// LLM: "rules" or "openai" (then BaseURL, KeyEnv, the timeouts).
	LLM          string
	BaseURL      string
	KeyEnv       string
	StallTimeout string
	LLMTimeout   string
	// TTS is the tts node's provider: "espeak" or a YAML list; TTSExtra
	// more keys of the tts node (", requires: {...}").
	TTS, TTSExtra string
	// Espeak overrides espeak's plugin binary (broken on purpose);
	// EspeakEngine its espeak-ng program.
	Espeak, EspeakEngine string
	// EspeakCooldown is espeak's restart cooldown (default 60s): how soon
	// a failed start is tried again.
	EspeakCooldown string
}

var pipelineTmpl = template.Must(template.New("cfg").Parse(`version: 1
runtime:
  state_dir: {{.State}}
providers:
  pocketsphinx:
    kind: stt
    binary: {{index .Bins.Provider "pocketsphinx"}}
    config:
      grammar: {{.Examples}}/grammar.jsgf
  rules:
    kind: llm
    binary: {{index .Bins.Provider "rules"}}
    config:
      replies: {{.Examples}}/replies.yaml
  openai:
    kind: llm
    binary: {{index .Bins.Provider "openai"}}
    config:
      base_url: {{or .BaseURL "http://127.0.0.1:9/v1"}}
      model: test-model
      system_prompt: You are a voice agent. Answer in one short sentence.
{{- if .KeyEnv}}
      api_key_env: {{.KeyEnv}}
{{- end}}
      stall_timeout: {{or .StallTimeout "2s"}}
      backoff: 50ms
  espeak:
    kind: tts
    binary: {{or .Espeak (index .Bins.Provider "espeak")}}
    restart: {intensity: 2, period: 30s, backoff: 10ms, cooldown: {{or .EspeakCooldown "60s"}}}
{{- if .EspeakEngine}}
    config:
      binary: {{.EspeakEngine}}
{{- end}}
  flite:
    kind: tts
    binary: {{index .Bins.Provider "flite"}}
pipeline:
  nodes:
    - {id: stt, provider: pocketsphinx, timeout: 15s}
    - {id: llm, provider: {{or .LLM "rules"}}, timeout: {{or .LLMTimeout "15s"}}}
    - {id: tts, provider: {{or .TTS "espeak"}}, timeout: 15s{{.TTSExtra}}}
  edges:
    - {from: ingress, to: stt}
    - {from: stt, to: llm}
    - {from: llm, to: tts}
    - {from: tts, to: egress}
vad: {threshold_db: -40, min_speech: 60ms, hangover: 400ms}
`))

// writeConfig writes p into dir (a state dir of its own, short for unix
// socket paths) and returns the config's path.
func writeConfig(t *testing.T, dir string, p pipeline) string {
	t.Helper()
	state, err := os.MkdirTemp("", "rs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	p.State, p.Bins = state, bins
	p.Examples = filepath.Join(testenv.MustModuleRoot(t), "examples")
	var buf bytes.Buffer
	if err := pipelineTmpl.Execute(&buf, p); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// replyServer starts the local OpenAI-compatible endpoint answering with
// the example's reply table (so the spoken reply decodes with the
// example's replies grammar), at ~25 tokens a second.
func replyServer(t *testing.T) *openaitest.Server {
	t.Helper()
	table, err := ruleset.Load(filepath.Join(testenv.MustModuleRoot(t), "examples", "replies.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := openaitest.Start()
	if err != nil {
		t.Fatal(err)
	}
	s.Reply = table.Reply
	s.TokenDelay = 40 * time.Millisecond
	s.FirstTokenDelay = 150 * time.Millisecond
	t.Cleanup(s.Close)
	return s
}

// utterances writes a WAV of phrases spoken by espeak with 1.5 s of silence
// after each (the VAD's end of turn).
func utterances(t *testing.T, dir string, phrases ...string) string {
	t.Helper()
	var pcm []byte
	for _, p := range phrases {
		b, err := speechtest.Synthesize(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		pcm = append(pcm, b...)
		pcm = append(pcm, make([]byte, 16000*2*3/2)...)
	}
	path := filepath.Join(dir, "in.wav")
	if err := wav.WriteFile(path, pcm); err != nil {
		t.Fatal(err)
	}
	return path
}

// rsppRun runs `rspp run` on cfg and in; it returns stdout, stderr and the
// exit code, with the timeline and output WAV in dir.
func rsppRun(t *testing.T, dir, cfg, in string, env ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.RSPP, "run", "--config", cfg, "--input", in,
		"--output", filepath.Join(dir, "out.wav"), "--timeline", filepath.Join(dir, "timeline.jsonl"))
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("rspp run did not finish in time\nstdout:\n%s\nstderr:\n%s", &stdout, &stderr)
	}
	code := 0
	if err != nil {
		code = cmd.ProcessState.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

func timeline(t *testing.T, dir string) []testenv.Record {
	t.Helper()
	recs, err := testenv.ReadTimeline(filepath.Join(dir, "timeline.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func ofType(recs []testenv.Record, typ string) []testenv.Record {
	var out []testenv.Record
	for _, r := range recs {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}
