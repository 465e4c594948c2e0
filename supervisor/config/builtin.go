package config

import (
	"encoding/json"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/supervisor/builtin"
)

// validateBuiltin checks a provider served in process (builtin: NAME,
// supervisor/builtin) instead of by a plugin binary: the name must be a
// known builtin, the kind is the builtin's (a kind given must match it),
// the config block must be one the builtin takes, and nothing that only
// means something for a process (binary, instances, isolation, restart,
// health checks) may be set.
func (c *Config) validateBuiltin(key string, p *Provider) error {
	b, err := builtin.Lookup(p.Builtin)
	if err != nil {
		return c.errf(key+".builtin", "%v", err)
	}
	if p.Kind != "" && p.Kind != b.Kind {
		return c.errf(key+".kind", "builtin %s serves kind %s, got %q (leave kind out: it comes from the builtin)", b.Name, b.Kind, p.Kind)
	}
	p.Kind = b.Kind
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"binary", p.Binary != ""}, {"sha256", p.SHA256 != ""}, {"args", len(p.Args) > 0},
		{"instances", p.Instances != PoolSize{}}, {"start_timeout", p.StartTimeout != 0}, {"restart", p.Restart != Restart{}},
		{"health_interval", p.HealthInterval != 0}, {"health_timeout", p.HealthTimeout != 0}, {"acquire_wait", p.AcquireWait != 0},
		{"profile", p.Profile != "" && p.Profile != "trusted"}, {"tenant", p.Tenant != ""}, {"share", p.Share != ""},
		{"idle_timeout", p.IdleTimeout != 0}, {"limits", p.Limits != Limits{}}, {"read_paths", len(p.ReadPaths) > 0}, {"user", p.User != ""},
	} {
		if f.set {
			return c.errf(key+"."+f.name, "does not apply to builtin %s: a builtin runs inside the supervisor, trusted, with no process of its own (give binary or builtin, not both)", b.Name)
		}
	}
	p.Profile = "trusted"
	if err := c.validateBudget(key+".output_budget", p.OutputBudget); err != nil {
		return err
	}
	if p.Config != nil {
		if p.ConfigJSON, err = json.Marshal(p.Config); err != nil {
			return c.errf(key+".config", "cannot encode: %v", err)
		}
	}
	if _, err := b.New(externalnode.Config{NodeID: p.Name, Dir: c.Dir, Raw: p.ConfigJSON}); err != nil {
		return c.errf(key+".config", "%v", err)
	}
	return nil
}
