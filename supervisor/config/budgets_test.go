package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rspp/rspp/kernel"
)

func loadWith(t *testing.T, block string) (*Config, error) {
	self, _ := os.Executable()
	y := "version: 1\nproviders:\n  p:\n    kind: tts\n    binary: " + self + "\n  q:\n    kind: tts\n    binary: " + self + "\n" +
		"pipeline:\n  nodes:\n    - {id: n, provider: p}\n  edges:\n    - {from: ingress, to: n}\n    - {from: n, to: egress}\n" + block
	return Parse([]byte(y), filepath.Join(t.TempDir(), "c.yaml"))
}

func TestBudgetsBlockReachesTheKernel(t *testing.T) {
	c, err := loadWith(t, `budgets:
  costs: {p: 2, q: 0.5}
  rules:
    - {name: slow, scope: turn, metric: total_time, limit: 1500ms, outcome: terminate}
    - {name: long, scope: node, target: n, metric: chars, limit: 80, outcome: degrade}
    - {name: late, scope: node, target: n, metric: first_output, limit: 800ms, outcome: fallback, to: q}
    - {scope: provider, target: p, metric: cost, limit: 3, outcome: continue}
`)
	if err != nil {
		t.Fatal(err)
	}
	b := c.KernelBudgets()
	if len(b.Rules) != 4 || b.Costs["p"] != 2 || b.Rules[0].Limit != 1.5 || b.Rules[1].Limit != 80 || b.Rules[2].To != "q" ||
		b.Rules[3].Name != "budgets.rules[3]" || b.Rules[1].Outcome != kernel.BudgetDegrade {
		t.Fatalf("budgets %+v", b)
	}
	for block, key := range map[string]string{
		"budgets:\n  costs: {nope: 1}\n": "budgets.costs.nope",
		"budgets:\n  costs: {p: -1}\n":   "budgets.costs.p",
		"budgets:\n  rules:\n    - {name: a, scope: node, target: zz, metric: cost, limit: 1, outcome: continue}\n":                                                              "budgets.rules[0]",
		"budgets:\n  rules:\n    - {name: a, scope: turn, metric: cost, limit: 1, outcome: fallback}\n":                                                                          "budgets.rules[0]",
		"budgets:\n  rules:\n    - {name: a, scope: provider, target: zz, metric: cost, limit: 1, outcome: continue}\n":                                                          "budgets.rules[0].target",
		"budgets:\n  rules:\n    - {name: a, scope: node, target: n, metric: cost, limit: 1, outcome: fallback, to: zz}\n":                                                       "budgets.rules[0].to",
		"budgets:\n  rules:\n    - {name: a, scope: turn, metric: cost, limit: lots, outcome: continue}\n":                                                                       "",
		"budgets:\n  rules:\n    - {name: a, scope: turn, metric: cost, limit: 1, outcome: continue}\n    - {name: a, scope: turn, metric: cost, limit: 1, outcome: continue}\n": "budgets.rules[1].name",
		"authority:\n  etcd: {endpoints: []}\n":                                       "authority.etcd.endpoints",
		"authority:\n  etcd: {endpoints: [\"nowhere\"]}\n":                            "authority.etcd.endpoints",
		"authority:\n  etcd: {endpoints: [\"http://127.0.0.1:2379\"], prefix: rel}\n": "authority.etcd.prefix",
	} {
		_, err := loadWith(t, block)
		var ce *Error
		if !errors.As(err, &ce) || key != "" && ce.Key != key || key == "" && !strings.Contains(err.Error(), "lots") {
			t.Errorf("%q: %v, want a *config.Error naming %q", block, err, key)
		}
	}
}

func TestAuthorityBlock(t *testing.T) {
	c, err := loadWith(t, "authority:\n  etcd: {endpoints: [\"http://127.0.0.1:2379\"], ttl: 3s, acquire_timeout: 10s}\n")
	if err != nil {
		t.Fatal(err)
	}
	if e := c.Authority.Etcd; e == nil || e.TTL != Duration(3*time.Second) || e.Endpoints[0] != "http://127.0.0.1:2379" {
		t.Fatalf("authority %+v", c.Authority.Etcd)
	}
	if c, err := loadWith(t, ""); err != nil || c.Authority.Etcd != nil {
		t.Fatalf("default authority: %v", err)
	}
}
