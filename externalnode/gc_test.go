package externalnode

import (
	"runtime/debug"
	"strings"
	"testing"
)

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestGCPolicyFromEnvironment(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want gcPolicy
		err  string
	}{
		{"defaults", nil, gcPolicy{Percent: NodeGCPercent}, ""},
		{"envelope limit", map[string]string{MemoryLimitEnv: "1073741824"}, gcPolicy{Percent: NodeGCPercent, MemoryLimit: 966367641}, ""},
		{"operator GOGC wins", map[string]string{"GOGC": "50", MemoryLimitEnv: "1000"}, gcPolicy{MemoryLimit: 900}, ""},
		{"operator GOMEMLIMIT wins", map[string]string{"GOMEMLIMIT": "64MiB", MemoryLimitEnv: "1000"}, gcPolicy{Percent: NodeGCPercent}, ""},
		{"unreadable limit", map[string]string{MemoryLimitEnv: "1GiB"}, gcPolicy{Percent: NodeGCPercent}, MemoryLimitEnv},
		{"zero limit", map[string]string{MemoryLimitEnv: "0"}, gcPolicy{Percent: NodeGCPercent}, "positive"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := gcPolicyFrom(envOf(c.env))
			if got != c.want {
				t.Errorf("policy %+v, want %+v", got, c.want)
			}
			if c.err == "" && err != nil {
				t.Errorf("unexpected error: %v", err)
			}
			if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Errorf("error %v, want one naming %q", err, c.err)
			}
		})
	}
}

func TestGCPolicyApply(t *testing.T) {
	prevPercent := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	})
	gcPolicy{Percent: NodeGCPercent, MemoryLimit: 512 << 20}.apply()
	if got := debug.SetGCPercent(100); got != NodeGCPercent {
		t.Errorf("GOGC after apply: %d, want %d", got, NodeGCPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != 512<<20 {
		t.Errorf("memory limit after apply: %d, want %d", got, 512<<20)
	}
	// A zero policy leaves both alone.
	debug.SetGCPercent(77)
	gcPolicy{}.apply()
	if got := debug.SetGCPercent(100); got != 77 {
		t.Errorf("GOGC after a zero policy: %d, want 77 (untouched)", got)
	}
}
