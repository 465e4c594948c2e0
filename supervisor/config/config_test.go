package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parse(t *testing.T, extraRuntime, extraProvider string) error {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	y := "version: 1\nruntime:\n  tick_interval: 20ms\n" + extraRuntime + "providers:\n  p:\n    kind: tts\n    binary: " + self + "\n" + extraProvider +
		"pipeline:\n  nodes:\n    - {id: n, provider: p}\n  edges:\n    - {from: ingress, to: n}\n    - {from: n, to: egress}\n"
	_, err = Parse([]byte(y), filepath.Join(t.TempDir(), "c.yaml"))
	return err
}

func TestSupervisorFields(t *testing.T) {
	ok := "  isolation: off\n  kill_grace: 1s\n  drain_timeout: 10s\n  plugin_channel: mtls\n"
	okp := "    instances: 2\n    restart: {intensity: 3, period: 10s, backoff: 10ms, backoff_max: 1s, jitter: 0.5, cooldown: 5s}\n    health_interval: 1s\n    health_timeout: 500ms\n    acquire_wait: 2s\n"
	if err := parse(t, ok, okp); err != nil {
		t.Fatalf("valid supervisor settings: %v", err)
	}
	for _, c := range []struct{ rt, prov, key string }{
		{"  isolation: maybe\n", "", "runtime.isolation"},
		{"  plugin_channel: tls\n", "", "runtime.plugin_channel"},
		{"  kill_grace: -1s\n", "", "runtime.kill_grace"},
		{"", "    restart: {jitter: 2}\n", "providers.p.restart.jitter"},
		{"", "    restart: {intensity: -1}\n", "providers.p.restart.intensity"},
		{"", "    restart: {bogus: 1}\n", ""},
	} {
		err := parse(t, c.rt, c.prov)
		var ce *Error
		if !errors.As(err, &ce) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%q%q: %v, want a *config.Error", c.rt, c.prov, err)
			continue
		}
		if c.key != "" && ce.Key != c.key {
			t.Errorf("%q%q: key %q, want %q", c.rt, c.prov, ce.Key, c.key)
		}
		if c.key == "" && !strings.Contains(err.Error(), "bogus") {
			t.Errorf("unknown key not named: %v", err)
		}
	}
}

func TestGraphFieldsReachTheKernel(t *testing.T) {
	self, _ := os.Executable()
	y := "version: 1\nproviders:\n  p:\n    kind: llm\n    binary: " + self + "\n" + `pipeline:
  nodes:
    - {id: a, provider: p, on_failure: branch, branch_to: b}
    - {id: b, provider: p}
    - {id: c, provider: p, join: select}
  edges:
    - {from: ingress, to: a}
    - {from: a, to: c, overflow: degrade, block_for: 10ms}
    - {from: b, to: c}
    - {from: c, to: egress}
`
	c, err := Parse([]byte(y), filepath.Join(t.TempDir(), "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	g := c.Graph()
	if g.Nodes[0].BranchTo != "b" || g.Nodes[0].OnFailure != "branch" || g.Nodes[2].Join != "select" || g.Edges[1].Overflow != "degrade" {
		t.Fatalf("graph %+v", g)
	}
	bad := strings.Replace(y, "join: select", "join: any", 1)
	var ce *Error
	if _, err := Parse([]byte(bad), filepath.Join(t.TempDir(), "c.yaml")); !errors.As(err, &ce) || ce.Key != "pipeline.nodes[2].join" {
		t.Fatalf("bad join: %v", err)
	}
	bad = strings.Replace(y, "overflow: degrade", "overflow: spill", 1)
	if _, err := Parse([]byte(bad), filepath.Join(t.TempDir(), "c.yaml")); !errors.As(err, &ce) || ce.Key != "pipeline.edges[1].overflow" {
		t.Fatalf("bad overflow: %v", err)
	}
	bad = strings.Replace(y, "branch_to: b", "branch_to: zz", 1)
	if _, err := Parse([]byte(bad), filepath.Join(t.TempDir(), "c.yaml")); !errors.As(err, &ce) || ce.Key != "pipeline" {
		t.Fatalf("unknown branch: %v", err)
	}
}

func TestOutputBudgetFields(t *testing.T) {
	self, _ := os.Executable()
	y := "version: 1\nproviders:\n  p:\n    kind: tts\n    binary: " + self + "\n    output_budget: {bytes_per_s: 2MiB, events_per_s: 100, max_event_bytes: 64KiB, max_bytes_in_flight: 4MiB}\n" +
		"pipeline:\n  nodes:\n    - {id: n, provider: p}\n  edges:\n    - {from: ingress, to: n}\n    - {from: n, to: egress}\n"
	cfg, err := Parse([]byte(y), filepath.Join(t.TempDir(), "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.NodeBudget("n")
	if b.BytesPerSecond != 2<<20 || b.EventsPerSecond != 100 || b.MaxEventBytes != 64<<10 || b.MaxBytesInFlight != 4<<20 {
		t.Fatalf("budget of node n = %+v", b)
	}
	for _, c := range []struct{ prov, key string }{
		{"    output_budget: {max_event_bytes: 2MiB}\n", "providers.p.output_budget.max_event_bytes"},
		{"    output_budget: {events_per_s: -1}\n", "providers.p.output_budget.events_per_s"},
		{"    output_budget: {bytes_per_s: 1KiB, max_event_bytes: 64KiB}\n", "providers.p.output_budget.bytes_per_s"},
		{"    output_budget: {bytes_per_s: lots}\n", ""},
	} {
		err := parse(t, "", c.prov)
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("%q: %v, want a *config.Error", c.prov, err)
			continue
		}
		if c.key != "" && ce.Key != c.key {
			t.Errorf("%q: key %q, want %q", c.prov, ce.Key, c.key)
		}
		if c.key == "" && !strings.Contains(err.Error(), `bad size "lots"`) {
			t.Errorf("bad size not named: %v", err)
		}
	}
}

func TestShareIsValidatedAndDefaultsToTenant(t *testing.T) {
	self, _ := os.Executable()
	load := func(prov string) (*Config, error) {
		y := "version: 1\nproviders:\n  p:\n    kind: tts\n    binary: " + self + "\n" + prov +
			"pipeline:\n  nodes:\n    - {id: n, provider: p}\n  edges:\n    - {from: ingress, to: n}\n    - {from: n, to: egress}\n"
		return Parse([]byte(y), filepath.Join(t.TempDir(), "c.yaml"))
	}
	c, err := load("    profile: tenant\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Providers["p"].Share; got != "tenant" {
		t.Fatalf("tenant profile share defaults to %q, want tenant", got)
	}
	if c, err = load("    profile: tenant\n    share: session\n    idle_timeout: 2s\n"); err != nil || c.Providers["p"].Share != "session" {
		t.Fatalf("share: session: %v", err)
	}
	if c, err = load(""); err != nil || c.Providers["p"].Share != "" {
		t.Fatalf("trusted provider: share %q, err %v; want no share", c.Providers["p"].Share, err)
	}
	for _, bad := range []string{"    profile: tenant\n    share: everyone\n", "    share: tenant\n", "    profile: tenant\n    idle_timeout: -1s\n"} {
		_, err := load(bad)
		var ce *Error
		want := "providers.p.share"
		if strings.Contains(bad, "idle_timeout") {
			want = "providers.p.idle_timeout"
		}
		if !errors.As(err, &ce) || ce.Key != want {
			t.Errorf("%q: %v, want a *config.Error naming %s", bad, err, want)
		}
	}
}

func TestIsolationFields(t *testing.T) {
	dir := t.TempDir()
	if err := parse(t, "", "    profile: tenant\n    read_paths: ["+dir+"]\n"); err != nil {
		t.Fatalf("tenant with a read path: %v", err)
	}
	if err := parse(t, "", "    user: root\n"); err != nil {
		t.Fatalf("trusted as root: %v", err)
	}
	for _, c := range []struct{ prov, key string }{
		{"    profile: tenant\n    user: root\n", "providers.p.user"},
		{"    user: nobody\n", "providers.p.user"},
		{"    read_paths: [/nonexistent/models]\n", "providers.p.read_paths[0]"},
		{"    read_paths: ['']\n", "providers.p.read_paths[0]"},
	} {
		err := parse(t, "", c.prov)
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != c.key {
			t.Errorf("%q: %v, want a *config.Error at %s", c.prov, err, c.key)
		}
	}
	self, _ := os.Executable()
	cfgDir := t.TempDir()
	if err := os.Mkdir(filepath.Join(cfgDir, "models"), 0o755); err != nil {
		t.Fatal(err)
	}
	y := "version: 1\nproviders:\n  p:\n    kind: tts\n    binary: " + self + "\n    read_paths: [models]\n" +
		"pipeline:\n  nodes:\n    - {id: n, provider: p}\n  edges:\n    - {from: ingress, to: n}\n    - {from: n, to: egress}\n"
	c, err := Parse([]byte(y), filepath.Join(cfgDir, "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Providers["p"].ReadPaths; len(got) != 1 || got[0] != filepath.Join(cfgDir, "models") {
		t.Fatalf("relative read path resolved to %v", got)
	}
}

// The transports block: a valid websocket block parses; each bad value
// is refused naming its key; unknown keys are refused.
func TestTransportsBlock(t *testing.T) {
	self, _ := os.Executable()
	load := func(block string) (*Config, error) {
		y := "version: 1\nproviders:\n  p:\n    kind: tts\n    binary: " + self + "\n" +
			"pipeline:\n  nodes:\n    - {id: n, provider: p}\n  edges:\n    - {from: ingress, to: n}\n    - {from: n, to: egress}\n" + block
		return Parse([]byte(y), filepath.Join(t.TempDir(), "c.yaml"))
	}
	c, err := load("transports:\n  websocket: {listen: \"127.0.0.1:8080\", allowed_origins: [\"localhost:*\"], max_sessions: 50, max_message_bytes: 32KiB, idle_timeout: 1m, ping_interval: 5s, send_queue: 100}\n")
	if err != nil {
		t.Fatal(err)
	}
	ws := c.Transports.WebSocket
	if ws.Listen != "127.0.0.1:8080" || ws.MaxSessions != 50 || ws.MaxMessageBytes != 32<<10 || ws.IdleTimeout != Duration(time.Minute) || ws.SendQueue != 100 || len(ws.AllowedOrigins) != 1 {
		t.Fatalf("parsed %+v", ws)
	}
	for block, key := range map[string]string{
		"transports:\n  websocket: {listen: nowhere}\n":        "transports.websocket.listen",
		"transports:\n  websocket: {max_sessions: -1}\n":       "transports.websocket.max_sessions",
		"transports:\n  websocket: {max_message_bytes: 100}\n": "transports.websocket.max_message_bytes",
		"transports:\n  websocket: {idle_timeout: -1s}\n":      "transports.websocket.idle_timeout",
		"transports:\n  websocket: {send_queue: -3}\n":         "transports.websocket.send_queue",
		"transports:\n  websocket: {bogus: 1}\n":               "",
	} {
		_, err := load(block)
		var ce *Error
		if !errors.As(err, &ce) || key != "" && ce.Key != key || key == "" && !strings.Contains(err.Error(), "bogus") {
			t.Errorf("%q: %v, want a *config.Error naming %q", block, err, key)
		}
	}
}
