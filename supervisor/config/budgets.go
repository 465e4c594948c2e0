package config

import (
	"fmt"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rspp/rspp/kernel"
)

// Budgets are the turn, node and provider budgets (RK-07): each rule
// bounds one metric of one scope and names the outcome of crossing it;
// costs give the abstract cost units of one call of each provider.
//
//	budgets:
//	  costs: {rules: 1, espeak: 2}
//	  rules:
//	    - {name: slow-turn, scope: turn, metric: total_time, limit: 20s, outcome: terminate}
//	    - {name: short-reply, scope: node, target: llm, metric: chars, limit: 200, outcome: degrade}
//	    - {name: tts-late, scope: node, target: tts, metric: first_output, limit: 800ms, outcome: fallback, to: flite}
//	    - {name: pricey, scope: provider, target: rules, metric: cost, limit: 3, outcome: continue}
type Budgets struct {
	Costs map[string]float64 `yaml:"costs"`
	Rules []BudgetRule       `yaml:"rules"`
}

// BudgetRule is one budget (kernel.BudgetRule).
type BudgetRule struct {
	Name    string      `yaml:"name"`
	Scope   string      `yaml:"scope"`  // turn, node, provider
	Target  string      `yaml:"target"` // node id or provider name
	Metric  string      `yaml:"metric"` // first_output, total_time, tokens, chars, audio_seconds, cost
	Limit   BudgetLimit `yaml:"limit"`  // a number, or a duration for time metrics ("800ms")
	Outcome string      `yaml:"outcome"`
	Degrade string      `yaml:"degrade"` // degrade: truncate (default) or binding
	To      string      `yaml:"to"`      // provider for degrade binding / fallback
}

// BudgetLimit is a limit in the metric's unit: seconds, count or cost
// units. YAML takes a number or a Go duration (seconds).
type BudgetLimit float64

func (l *BudgetLimit) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		*l = BudgetLimit(f)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: bad limit %q (want a number or a duration such as 800ms)", n.Line, s)
	}
	*l = BudgetLimit(d.Seconds())
	return nil
}

// KernelBudgets is the budgets block as the kernel wants it.
func (c *Config) KernelBudgets() kernel.Budgets {
	b := kernel.Budgets{Costs: c.Budgets.Costs}
	for i, r := range c.Budgets.Rules {
		name := r.Name
		if name == "" {
			name = fmt.Sprintf("budgets.rules[%d]", i)
		}
		b.Rules = append(b.Rules, kernel.BudgetRule{Name: name, Scope: r.Scope, Target: r.Target, Metric: r.Metric,
			Limit: float64(r.Limit), Outcome: r.Outcome, Degrade: r.Degrade, To: r.To})
	}
	return b
}

func (c *Config) validateBudgets() error {
	for p, v := range c.Budgets.Costs {
		if _, ok := c.Providers[p]; !ok {
			return c.errf("budgets.costs."+p, "unknown provider %q", p)
		}
		if v < 0 {
			return c.errf("budgets.costs."+p, "must not be negative, got %v", v)
		}
	}
	names := map[string]bool{}
	for i, r := range c.Budgets.Rules {
		key := fmt.Sprintf("budgets.rules[%d]", i)
		if r.Name != "" {
			if names[r.Name] {
				return c.errf(key+".name", "duplicate rule name %q", r.Name)
			}
			names[r.Name] = true
		}
		if r.Scope == kernel.BudgetScopeProvider {
			if _, ok := c.Providers[r.Target]; !ok {
				return c.errf(key+".target", "unknown provider %q", r.Target)
			}
		}
		if r.To != "" {
			if _, ok := c.Providers[r.To]; !ok {
				return c.errf(key+".to", "unknown provider %q", r.To)
			}
		}
		one := kernel.Budgets{Rules: c.KernelBudgets().Rules[i : i+1]}
		if err := kernel.ValidateBudgets(one, c.Graph().Nodes); err != nil {
			return c.errf(key, "%v", err)
		}
	}
	return nil
}
