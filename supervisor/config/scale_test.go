package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func parseCfg(t *testing.T, top, provider string) (*Config, error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	y := "version: 1\n" + top + "providers:\n  p:\n    kind: tts\n    binary: " + self + "\n" + provider +
		"pipeline:\n  nodes:\n    - {id: n, provider: p}\n  edges:\n    - {from: ingress, to: n}\n    - {from: n, to: egress}\n"
	return Parse([]byte(y), filepath.Join(t.TempDir(), "c.yaml"))
}

func TestInstancesNumberOrMinMax(t *testing.T) {
	for _, c := range []struct {
		in       string
		min, max int
	}{
		{"", 1, 1},
		{"    instances: 3\n", 3, 3},
		{"    instances: {min: 1, max: 4}\n", 1, 4},
		{"    instances: {min: 2}\n", 2, 2},
		{"    instances: {min: 1, max: 3, scale_up_busy: 2, scale_down_idle: 5s}\n", 1, 3},
	} {
		cfg, err := parseCfg(t, "", c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		got := cfg.Providers["p"].Instances
		if got.Min != c.min || got.Max != c.max {
			t.Errorf("%q: min %d max %d, want %d %d", c.in, got.Min, got.Max, c.min, c.max)
		}
		if got.autoscaled() != (c.max > c.min) {
			t.Errorf("%q: autoscaled %v", c.in, got.autoscaled())
		}
	}
	for _, c := range []struct{ in, key, text string }{
		{"    instances: 0x\n", "", "number or {min, max}"},
		{"    instances: -1\n", "providers.p.instances", ""},
		{"    instances: {min: 3, max: 2}\n", "providers.p.instances.max", ""},
		{"    instances: {min: 1, max: 65}\n", "providers.p.instances.max", ""},
		{"    instances: {min: 1, most: 2}\n", "", "most"},
		{"    instances: {min: 1, max: 2, scale_up_busy: -1}\n", "providers.p.instances.scale_up_busy", ""},
		{"    instances: {min: 1, max: 2}\n    profile: tenant\n", "providers.p.instances", ""},
	} {
		_, err := parseCfg(t, "", c.in)
		var ce *Error
		if !errors.As(err, &ce) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v, want a *config.Error", c.in, err)
			continue
		}
		if c.key != "" && ce.Key != c.key {
			t.Errorf("%q: key %q, want %q (%v)", c.in, ce.Key, c.key, err)
		}
		if c.text != "" && !strings.Contains(err.Error(), c.text) {
			t.Errorf("%q: %v does not say %q", c.in, err, c.text)
		}
	}
}

func TestAdmissionKeys(t *testing.T) {
	ok := "admission:\n  max_sessions: 100\n  tenant_sessions: 10\n  tenant_turns: 2\n  memory_headroom: 0.1\n  cpu_headroom: 0.2\n  tenants: {acme: {sessions: 20, turns: 4}}\n"
	cfg, err := parseCfg(t, ok, "")
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Admission; a.MaxSessions != 100 || a.Tenants["acme"].Turns != 4 || a.CPUHeadroom != 0.2 {
		t.Fatalf("admission parsed as %+v", a)
	}
	for _, c := range []struct{ in, key string }{
		{"admission: {max_sessions: -1}\n", "admission.max_sessions"},
		{"admission: {tenant_turns: -2}\n", "admission.tenant_turns"},
		{"admission: {memory_headroom: 1.5}\n", "admission.memory_headroom"},
		{"admission: {cpu_headroom: -0.1}\n", "admission.cpu_headroom"},
		{"admission: {tenants: {acme: {sessions: -1}}}\n", "admission.tenants.acme"},
		{"admission: {max_session: 3}\n", ""},
	} {
		_, err := parseCfg(t, c.in, "")
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("%q: %v, want a *config.Error", c.in, err)
			continue
		}
		if c.key != "" && ce.Key != c.key {
			t.Errorf("%q: key %q, want %q", c.in, ce.Key, c.key)
		}
		if c.key == "" && !strings.Contains(err.Error(), "max_session") {
			t.Errorf("unknown key not named: %v", err)
		}
	}
}
