package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	ok := "  isolation: off\n  kill_grace: 1s\n  drain_timeout: 10s\n"
	okp := "    instances: 2\n    restart: {intensity: 3, period: 10s, backoff: 10ms, backoff_max: 1s, jitter: 0.5, cooldown: 5s}\n    health_interval: 1s\n    health_timeout: 500ms\n    acquire_wait: 2s\n"
	if err := parse(t, ok, okp); err != nil {
		t.Fatalf("valid supervisor settings: %v", err)
	}
	for _, c := range []struct{ rt, prov, key string }{
		{"  isolation: maybe\n", "", "runtime.isolation"},
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
