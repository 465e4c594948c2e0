package supervisor_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel/eventabi"
	"github.com/rspp/rspp/supervisor"
	"github.com/rspp/rspp/supervisor/internal/testplugin"
	"github.com/rspp/rspp/supervisor/internal/testrt"
	"github.com/rspp/rspp/supervisor/session"
)

// builtinConfig writes stt -> llm -> filter -> tts: test plugins around a
// builtin text-filter.
func builtinConfig(t *testing.T, filterCfg string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("version: 1\nruntime:\n  state_dir: " + testplugin.ShortDir(t) + "\n  kill_grace: 500ms\nproviders:\n")
	for _, role := range []string{"stt", "llm", "tts"} {
		b.WriteString("  " + role + ":\n    kind: " + role + "\n    binary: " + self + "\n    args: [" + testplugin.Arg + ", " + role + "]\n    config: {role: " + role + "}\n")
	}
	b.WriteString("  filter:\n    builtin: text-filter\n    config: " + filterCfg + "\n")
	b.WriteString(`pipeline:
  nodes:
    - {id: stt, provider: stt, timeout: 10s}
    - {id: llm, provider: llm, timeout: 10s}
    - {id: filter, provider: filter, timeout: 10s}
    - {id: tts, provider: tts, timeout: 10s}
  edges:
    - {from: ingress, to: stt}
    - {from: stt, to: llm}
    - {from: llm, to: filter}
    - {from: filter, to: tts}
    - {from: tts, to: egress}
vad: {disabled: true}
`)
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type frames struct {
	mu sync.Mutex
	n  int
}

func (f *frames) Send(ev eventabi.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ev.Audio != nil {
		f.n++
	}
	return nil
}
func (f *frames) Fence(string, string) {}

// A builtin provider is served in process: its node rewrites the llm's
// reply on its way to the tts, no process or pool starts for it, status
// lists it as builtin, and upgrade / reload refuse it, typed.
func TestBuiltinProviderRunsInProcess(t *testing.T) {
	cfgPath := builtinConfig(t, `{replace: {"help": "assist"}}`)
	rt := testrt.Start(t, cfgPath, nil)
	b, ok := rt.Binding("filter")
	if !ok || b.Pool != "builtin:filter" || b.Version != "1.0.0" {
		t.Fatalf("filter binding %+v", b)
	}
	var (
		mu   sync.Mutex
		seen = map[string][]string{} // node -> text.final texts
	)
	out := &frames{}
	tl := &session.Collector{}
	s, err := rt.OpenSession(supervisor.SessionOptions{ID: "s1", Output: out, Timeline: tl, Observe: func(node string, ev eventabi.Event) {
		if ev.Type == eventabi.TypeTextFinal {
			mu.Lock()
			seen[node] = append(seen[node], ev.Text.Text)
			mu.Unlock()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []eventabi.Event{
		{Type: eventabi.TypeSpeechStart},
		{Type: eventabi.TypeAudioFrame, Audio: &eventabi.Audio{PCM: testplugin.Tone(20 * time.Millisecond), SampleRate: 16000, Channels: 1}},
		{Type: eventabi.TypeSpeechEnd},
	} {
		if err := s.Ingest(ev); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for !has(tl, "turn_close") {
		if time.Now().After(deadline) {
			t.Fatalf("turn never closed: %v", tl.Records())
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Close("done")
	if !has(tl, "turn_commit") {
		t.Fatalf("no commit: %v", tl.Records())
	}
	mu.Lock()
	llm, filter := strings.Join(seen["llm"], "|"), strings.Join(seen["filter"], "|")
	mu.Unlock()
	if llm != "hello how can i help you" || filter != "hello how can i assist you" {
		t.Fatalf("llm said %q, filter passed on %q", llm, filter)
	}
	out.mu.Lock()
	if out.n != 5 {
		t.Errorf("tts frames at egress %d, want 5", out.n)
	}
	out.mu.Unlock()
	for key, pids := range rt.Pids() {
		if strings.HasPrefix(key, "builtin:") || strings.HasPrefix(key, "filter") {
			t.Errorf("a process pool %s (pids %v) for the builtin", key, pids)
		}
	}
	if n := len(rt.StartedPids().Alive()); n != 3 {
		t.Errorf("%d plugin processes alive, want 3 (stt, llm, tts)", n)
	}
	found := false
	for _, st := range rt.Status() {
		if st.Key == "builtin:filter" {
			found = true
			if st.Builtin != "text-filter" || len(st.Pids) != 0 || st.Served["in-process"] != 1 || st.Scale.Load != 0 {
				t.Errorf("status %+v", st)
			}
		}
	}
	if !found {
		t.Errorf("status lists no builtin:filter: %+v", rt.Status())
	}
	if _, err := rt.Upgrade(context.Background(), "filter", cfgPath); !errors.Is(err, supervisor.ErrBuiltinFixed) || !errors.Is(err, supervisor.ErrUpgradeFailed) {
		t.Errorf("upgrade of a builtin: %v", err)
	}
	raw, _ := os.ReadFile(cfgPath)
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(string(raw), `"assist"`, `"aid"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Reload(context.Background()); !errors.Is(err, supervisor.ErrBuiltinFixed) || !strings.Contains(err.Error(), "filter") {
		t.Errorf("reload of a changed builtin: %v", err)
	}
}

func has(tl *session.Collector, typ string) bool {
	for _, r := range tl.Records() {
		if r.Type == typ {
			return true
		}
	}
	return false
}
